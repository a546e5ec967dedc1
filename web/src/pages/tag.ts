/**
 * A tag: its history as a timeline with one-click rollback to any kept
 * version, a diff between any two versions, and the current manifest's
 * layers, config and referrers (grouped by artifact type).
 */
import type { DiffResponse, ManifestResponse, RightsResponse, RollbackResponse, SessionResponse, TagHistoryResponse } from '../../../src/api/pier-v1.js';
import { api, enc, repoPath } from '../api.js';
import { bytes, short, when } from '../format.js';
import { PullCommands } from './pull-commands.js';
import { CopyButton, ErrorLine, href, html, message, useEffect, useState } from '../ui.js';

export function TagPage({ name, tag }: { name: string; tag: string; session: SessionResponse }) {
  const [history, setHistory] = useState<TagHistoryResponse | null>(null);
  const [manifest, setManifest] = useState<ManifestResponse | null>(null);
  const [rights, setRights] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [diff, setDiff] = useState<DiffResponse | null>(null);
  const base = `/repositories/${repoPath(name)}`;
  const load = async () => {
    try {
      const [h, r] = await Promise.all([api<TagHistoryResponse>('GET', `${base}/tags/${enc(tag)}/history`), api<RightsResponse>('GET', `${base}/rights`)]);
      // The version pickers get their defaults with the history they list, before the page shows
      // them: set after the manifest's fetch, they would undo a choice made meanwhile.
      const versions = h.versions.map((v) => v.digest);
      setTo(h.current ?? versions[0] ?? '');
      setFrom(versions.find((d) => d !== h.current) ?? '');
      setHistory(h);
      setRights(r.rights);
      setManifest(h.current ? await api<ManifestResponse>('GET', `${base}/manifests/${h.current}`) : null);
    } catch (err) {
      setError(message(err));
    }
  };
  useEffect(() => {
    void load();
  }, [name, tag]);
  if (error) return html`<h1 tabindex="-1">${name}:${tag}</h1><${ErrorLine} error=${error} />`;
  if (!history) return html`<h1 tabindex="-1">${name}:${tag}</h1><p>Loading…</p>`;

  const canRollback = rights.includes('push');
  const rollback = async (digest: string) => {
    try {
      const r = await api<RollbackResponse>('POST', `${base}/tags/${enc(tag)}/rollback`, { to: digest });
      setNotice(`Rolled ${tag} back to ${short(r.to)}`);
      setDiff(null);
      await load();
    } catch (err) {
      setNotice(`Rollback failed: ${message(err)}`);
    }
  };
  const compare = async (e: Event) => {
    e.preventDefault();
    try {
      setDiff(await api<DiffResponse>('GET', `${base}/diff?from=${enc(from)}&to=${enc(to)}`));
    } catch (err) {
      setNotice(`Diff failed: ${message(err)}`);
    }
  };
  const versionLabel = (d: string) => `${short(d)}${d === history.current ? ' (current)' : ''}`;
  return html`
    <p class="crumbs"><a href=${href('r/', name)}>${name}</a></p>
    <h1 tabindex="-1">${name}:${tag}</h1>
    ${notice ? html`<p role="status">${notice}</p>` : null}
    ${history.current
      ? html`<p>Current digest <code>${history.current}</code> <${CopyButton} text=${history.current} label="Copy the current digest" /></p>
          <section aria-labelledby="pull-h"><h2 id="pull-h">Pull</h2><${PullCommands} name=${name} tag=${tag} digest=${history.current} /></section>`
      : html`<p>This tag is deleted; its history is below.</p>`}
    <section aria-labelledby="timeline-h">
      <h2 id="timeline-h">History</h2>
      <ol class="timeline">
        ${history.changes.map(
          (c) => html`<li key=${c.id}>
            <span class=${`action ${c.action}`}>${c.action}</span>
            <span>${c.oldDigest ? html`<code>${short(c.oldDigest)}</code> → ` : null}${c.newDigest ? html`<code>${short(c.newDigest)}</code>` : '(deleted)'}</span>
            <span class="muted">by ${c.actor}, ${when(c.at)}</span>
          </li>`,
        )}
      </ol>
      <h3>Versions</h3>
      <table>
        <thead><tr><th scope="col">Digest</th><th scope="col">Since</th><th scope="col">Until</th><th scope="col">Kept</th>${canRollback ? html`<th scope="col">Action</th>` : null}</tr></thead>
        <tbody>
          ${history.versions.map(
            (v) => html`<tr key=${v.digest + v.since}>
              <td><code>${short(v.digest)}${v.until ? '' : ' (current)'}</code></td><td>${when(v.since)}</td><td>${v.until ? when(v.until) : 'now'}</td><td>${v.kept ? 'yes' : 'no (GC may remove it)'}</td>
              ${canRollback
                ? html`<td>${v.digest !== history.current && v.kept ? html`<button type="button" aria-label=${`Roll back ${tag} to ${short(v.digest)}`} onClick=${() => rollback(v.digest)}>Roll back</button>` : null}</td>`
                : null}
            </tr>`,
          )}
        </tbody>
      </table>
    </section>
    ${history.versions.length > 1
      ? html`<section aria-labelledby="diff-h">
          <h2 id="diff-h">Compare versions</h2>
          <form class="toolbar" onSubmit=${compare}>
            <label for="diff-from">From</label> <select id="diff-from" value=${from} onChange=${(e: Event) => setFrom((e.target as HTMLSelectElement).value)}>${[...new Set(history.versions.map((v) => v.digest))].map((d) => html`<option value=${d}>${versionLabel(d)}</option>`)}</select>
            <label for="diff-to">To</label> <select id="diff-to" value=${to} onChange=${(e: Event) => setTo((e.target as HTMLSelectElement).value)}>${[...new Set(history.versions.map((v) => v.digest))].map((d) => html`<option value=${d}>${versionLabel(d)}</option>`)}</select>
            <button type="submit">Compare</button>
          </form>
          ${diff ? html`<${DiffView} diff=${diff} />` : null}
        </section>`
      : null}
    ${manifest ? html`<${ManifestView} m=${manifest} />` : null}
  `;
}

function DiffView({ diff }: { diff: DiffResponse }) {
  const layer = (l: { digest: string; size: number }) => html`<li><code>${short(l.digest)}</code> ${bytes(l.size)}</li>`;
  return html`<div class="card diff" aria-live="polite">
    <p>Size ${bytes(diff.size.from)} → ${bytes(diff.size.to)}; platforms ${diff.platforms.from.join(', ') || '—'} → ${diff.platforms.to.join(', ') || '—'}</p>
    <h3>Layers added (${diff.layersAdded.length})</h3>
    <ul class="layers-added">${diff.layersAdded.map(layer)}</ul>
    <h3>Layers removed (${diff.layersRemoved.length})</h3>
    <ul class="layers-removed">${diff.layersRemoved.map(layer)}</ul>
    <h3>Config changes (${diff.config.length})</h3>
    ${diff.config.length
      ? html`<table><thead><tr><th scope="col">Field</th><th scope="col">From</th><th scope="col">To</th></tr></thead><tbody>${diff.config.map((c) => html`<tr><td>${c.field}</td><td><code>${c.from ?? '—'}</code></td><td><code>${c.to ?? '—'}</code></td></tr>`)}</tbody></table>`
      : html`<p>None.</p>`}
  </div>`;
}

function ManifestView({ m }: { m: ManifestResponse }) {
  return html`
    <section aria-labelledby="manifest-h">
      <h2 id="manifest-h">Manifest</h2>
      <p>${m.kind === 'index' ? 'Index' : 'Image'} · ${m.mediaType} · ${bytes(m.size)} · ${m.platforms.join(', ') || 'no platform'}</p>
      ${m.manifests.length
        ? html`<table><thead><tr><th scope="col">Image</th><th scope="col">Platform</th><th scope="col">Size</th></tr></thead><tbody>${m.manifests.map((c) => html`<tr><td><code>${short(c.digest)}</code></td><td>${c.platform ?? '—'}</td><td>${bytes(c.size)}</td></tr>`)}</tbody></table>`
        : null}
      ${m.layers.length
        ? html`<h3>Layers</h3><table><thead><tr><th scope="col">#</th><th scope="col">Digest</th><th scope="col">Media type</th><th scope="col">Size</th></tr></thead><tbody>${m.layers.map((l, i) => html`<tr><td>${i + 1}</td><td><code>${short(l.digest)}</code></td><td>${l.mediaType}</td><td>${bytes(l.size)}</td></tr>`)}</tbody></table>`
        : null}
      ${m.config ? html`<h3>Config</h3><pre class="config" tabindex="0" aria-label="Config document">${m.config.document === null ? `${m.config.mediaType}, ${bytes(m.config.size)}` : JSON.stringify(m.config.document, null, 2)}</pre>` : null}
      <h3>Referrers</h3>
      ${m.referrers.length
        ? m.referrers.map((g) => html`<h4>${g.artifactType}</h4><ul>${g.manifests.map((r) => html`<li><code>${short(r.digest)}</code> ${bytes(r.size)}</li>`)}</ul>`)
        : html`<p>No signatures, SBOMs or attestations refer to this manifest.</p>`}
    </section>
  `;
}
