/** The repository list: search by name, sort by name, last push or size, and pages. */
import type { RepositoriesResponse, RepositorySort } from '../../../src/api/pier-v1.js';
import { api, enc } from '../api.js';
import { bytes, when } from '../format.js';
import { ErrorLine, href, html, message, useEffect, useState } from '../ui.js';

const PAGE = 50;

export function RepositoriesPage() {
  const [q, setQ] = useState('');
  const [sort, setSort] = useState<RepositorySort>('name');
  const [offset, setOffset] = useState(0);
  const [data, setData] = useState<RepositoriesResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      api<RepositoriesResponse>('GET', `/repositories?q=${enc(q)}&sort=${sort}&offset=${offset}&limit=${PAGE}`).then(
        (d) => live && (setData(d), setError(null)),
        (err: unknown) => live && setError(message(err)),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [q, sort, offset]);
  const pages = data ? Math.max(1, Math.ceil(data.total / PAGE)) : 1;
  const page = Math.floor(offset / PAGE) + 1;
  return html`
    <h1 tabindex="-1">Repositories</h1>
    <div class="toolbar">
      <label>Search repositories <input type="search" value=${q} onInput=${(e: Event) => (setQ((e.target as HTMLInputElement).value), setOffset(0))} /></label>
      <label for="repo-sort">Sort by</label>
        <select id="repo-sort" value=${sort} onChange=${(e: Event) => (setSort((e.target as HTMLSelectElement).value as RepositorySort), setOffset(0))}>
          <option value="name">Name</option>
          <option value="pushed">Last push</option>
          <option value="size">Size</option>
        </select>
    </div>
    <${ErrorLine} error=${error} />
    ${data
      ? html`
          <p class="muted" aria-live="polite">${data.total} ${data.total === 1 ? 'repository' : 'repositories'}</p>
          <table>
            <thead><tr><th scope="col">Name</th><th scope="col">Tags</th><th scope="col">Size</th><th scope="col">Last push</th></tr></thead>
            <tbody>
              ${data.repositories.map(
                (r) => html`<tr key=${r.name}><td><a href=${href('r/', r.name)}>${r.name}</a></td><td>${r.tags}</td><td>${bytes(r.bytes)}</td><td>${when(r.pushedAt)}</td></tr>`,
              )}
            </tbody>
          </table>
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous page</button>
            <span>Page ${page} of ${pages}</span>
            <button type="button" disabled=${page >= pages} onClick=${() => setOffset(offset + PAGE)}>Next page</button>
          </nav>
        `
      : html`<p>Loading…</p>`}
  `;
}
