/**
 * A repository: its tags, a page at a time (the server sorts all of them
 * by push time or name and sends one page), each with digest, platforms,
 * size, push and pull times and the immutable badge; multi-select delete
 * (the selection is kept across pages) behind a confirmation that names
 * every tag; pull commands for docker, podman and pier.
 *
 * Rows are plain: one delegated click handler serves every copy button,
 * times are formatted without Intl, and the table's layout is fixed, so a
 * page is cheap to render however many tags the repository has.
 *
 * Render time: `pier:tags-data` is marked when a page of tags arrives and
 * `pier:tags-rendered` (a measure from it) once the table is on screen;
 * the browser tests read them.
 */
import type { SessionResponse, TagInfo, TagSort, TagsResponse } from '../../../src/api/pier-v1.js';
import { api, enc, repoPath } from '../api.js';
import { bytes, short, when } from '../format.js';
import { PullCommands } from './pull-commands.js';
import { ErrorLine, href, html, message, useEffect, useRef, useState } from '../ui.js';

const SIZES = [25, 100, 250];

function perPage(): number {
  const stored = Number(localStorage.getItem('pier.tagsPerPage'));
  return SIZES.includes(stored) ? stored : 100;
}

export function RepositoryPage({ name, session }: { name: string; session: SessionResponse }) {
  const [data, setData] = useState<TagsResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [sort, setSort] = useState<TagSort>('pushed');
  const [size, setSize] = useState(perPage());
  const [page, setPage] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const load = () =>
    api<TagsResponse>('GET', `/repositories/${repoPath(name)}/tags/details?sort=${sort}&offset=${page * size}&limit=${size}`).then(
      (d) => {
        performance.clearMarks();
        performance.clearMeasures();
        performance.mark('pier:tags-data');
        setData(d);
      },
      (err: unknown) => setError(message(err)),
    );
  useEffect(() => {
    void load();
  }, [name, sort, size, page]);
  useEffect(() => {
    if (data && performance.getEntriesByName('pier:tags-data').length > 0 && performance.getEntriesByName('pier:tags-rendered').length === 0) {
      // Preact runs effects after the next frame, so the table has been laid out and painted.
      performance.measure('pier:tags-rendered', 'pier:tags-data');
    }
  }, [data]);
  useEffect(() => {
    if (confirming) dialog.current?.showModal();
    else dialog.current?.close();
  }, [confirming]);

  if (error) return html`<h1 tabindex="-1">${name}</h1><${ErrorLine} error=${error} />`;
  if (!data) return html`<h1 tabindex="-1">${name}</h1><p>Loading…</p>`;

  const canDelete = data.rights.includes('delete') && session.deletes;
  const pages = Math.max(1, Math.ceil(data.total / size));
  const shown = data.tags;
  const toggle = (tag: string) => {
    const next = new Set(selected);
    if (next.has(tag)) next.delete(tag);
    else next.add(tag);
    setSelected(next);
  };
  const remove = async () => {
    const tags = [...selected].sort();
    const failed: string[] = [];
    for (const tag of tags) {
      try {
        await api('DELETE', `/repositories/${repoPath(name)}/tags/${enc(tag)}`);
      } catch (err) {
        failed.push(`${tag}: ${message(err)}`);
      }
    }
    setConfirming(false);
    setSelected(new Set());
    setNotice(failed.length ? `Not deleted: ${failed.join('; ')}` : `Deleted ${tags.join(', ')}`);
    await load();
  };
  // One handler for every copy button of the table (each button carries its digest and tag).
  const copy = (e: Event) => {
    const button = (e.target as HTMLElement).closest<HTMLElement>('button[data-digest]');
    if (!button) return;
    const { digest = '', tag = '' } = button.dataset;
    void navigator.clipboard?.writeText(digest).then(() => setNotice(`Copied the digest of ${tag}`));
  };
  const latest = shown[0];
  return html`
    <h1 tabindex="-1">${name}</h1>
    <p class="muted">${data.total} ${data.total === 1 ? 'tag' : 'tags'}</p>
    ${latest ? html`<section aria-labelledby="pull-h"><h2 id="pull-h">Pull ${name}:${latest.name}</h2><${PullCommands} name=${name} tag=${latest.name} digest=${latest.digest} /></section>` : null}
    <section aria-labelledby="tags-h">
      <h2 id="tags-h">Tags</h2>
      <div class="toolbar">
        <label for="tag-sort">Sort tags by</label>
          <select id="tag-sort" value=${sort} onChange=${(e: Event) => (setSort((e.target as HTMLSelectElement).value as TagSort), setPage(0))}>
            <option value="pushed">Pushed at</option>
            <option value="name">Name</option>
          </select>
        <label for="tag-page-size">Tags per page</label>
          <select id="tag-page-size" value=${String(size)} onChange=${(e: Event) => {
            const v = Number((e.target as HTMLSelectElement).value);
            localStorage.setItem('pier.tagsPerPage', String(v));
            setSize(v);
            setPage(0);
          }}>
            ${SIZES.map((s) => html`<option value=${String(s)}>${s}</option>`)}
          </select>
        ${canDelete ? html`<button type="button" class="danger" disabled=${selected.size === 0} onClick=${() => setConfirming(true)}>Delete selected tags (${selected.size})</button>` : null}
      </div>
      ${notice ? html`<p role="status">${notice}</p>` : null}
      <table class="tags">
        <thead>
          <tr>
            ${canDelete ? html`<th scope="col" class="c-select"><span class="sr-only">Select</span></th>` : null}
            <th scope="col" class="c-tag">Tag</th><th scope="col" class="c-digest">Digest</th><th scope="col">Platforms</th><th scope="col" class="c-size">Size</th>
            <th scope="col" class="c-time">Pushed at</th><th scope="col">Pushed by</th><th scope="col" class="c-time">Last pulled</th>
          </tr>
        </thead>
        <tbody onClick=${copy}>
          ${shown.map((t: TagInfo) => html`
            <tr key=${t.name}>
              ${canDelete ? html`<td><input type="checkbox" aria-label=${`Select ${t.name}`} checked=${selected.has(t.name)} onChange=${() => toggle(t.name)} /></td>` : null}
              <td><a href=${href('r/', name, ':', t.name)}>${t.name}</a>${t.immutable ? html` <span class="badge">immutable</span>` : null}</td>
              <td><code title=${t.digest}>${short(t.digest)}</code> <button type="button" class="small" aria-label=${`Copy digest of ${t.name}`} data-digest=${t.digest} data-tag=${t.name}>Copy</button></td>
              <td>${t.platforms.join(', ') || '—'}</td>
              <td>${bytes(t.size)}</td>
              <td>${when(t.pushedAt)}</td>
              <td>${t.pushedBy ?? '—'}</td>
              <td>${when(t.lastPulledAt)}</td>
            </tr>`)}
        </tbody>
      </table>
      <nav class="pager" aria-label="Tag pages">
        <button type="button" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous page</button>
        <span>Page ${page + 1} of ${pages}</span>
        <button type="button" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)}>Next page</button>
      </nav>
    </section>
    <dialog ref=${dialog} aria-labelledby="confirm-h" onClose=${() => setConfirming(false)}>
      <h2 id="confirm-h">Delete ${selected.size} ${selected.size === 1 ? 'tag' : 'tags'} from ${name}?</h2>
      <p>These tags will be deleted: <strong>${[...selected].sort().join(', ')}</strong>. Their history is kept.</p>
      <div class="toolbar">
        <button type="button" class="danger" onClick=${remove}>Delete</button>
        <button type="button" onClick=${() => setConfirming(false)}>Cancel</button>
      </div>
    </dialog>
  `;
}
