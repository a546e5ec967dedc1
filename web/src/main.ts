/**
 * The registry's web UI: a shell (header, navigation, sign-in state) and a
 * hash router over the pages. Everything it shows comes from /pier/v1 on
 * this origin; it offers only what the viewer's rights allow, and the
 * server checks every request again.
 *
 *   #/                     repositories
 *   #/sign-in              the sign-in form
 *   #/r/NAME               a repository
 *   #/r/NAME:TAG           a tag
 *   #/admin                administration (admins)
 */
import { render } from 'preact';
import type { SessionResponse } from '../../src/api/pier-v1.js';
import { api, loadSession, setCsrf } from './api.js';
import { AdminPage } from './pages/admin.js';
import { RepositoriesPage } from './pages/repositories.js';
import { RepositoryPage } from './pages/repository.js';
import { SignInPage } from './pages/sign-in.js';
import { TagPage } from './pages/tag.js';
import { html, message, useEffect, useState } from './ui.js';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const [session, setSession] = useState<SessionResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refresh = () =>
    loadSession().then(
      (s) => {
        setCsrf(s.csrf);
        setSession(s);
      },
      (err: unknown) => setError(message(err)),
    );
  useEffect(() => {
    void refresh();
  }, []);
  // Moves focus to the new page's heading, so keyboard and screen-reader users land on it.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [hash, session]);

  if (error) return html`<main><h1 tabindex="-1">Pier</h1><p class="error" role="alert">${error}</p></main>`;
  if (!session) return html`<main aria-busy="true"><p>Loading…</p></main>`;

  const signOut = async () => {
    await api('DELETE', '/session');
    await refresh();
    location.hash = '#/';
  };
  const route = decodeURIComponent(hash.replace(/^#\/?/, ''));
  let page;
  if (route === 'sign-in') {
    page = html`<${SignInPage} onSignedIn=${async () => {
      await refresh();
      location.hash = '#/';
    }} />`;
  } else if (route.startsWith('r/')) {
    const ref = route.slice(2);
    const colon = ref.lastIndexOf(':');
    page = colon === -1 ? html`<${RepositoryPage} key=${ref} name=${ref} session=${session} />` : html`<${TagPage} key=${ref} name=${ref.slice(0, colon)} tag=${ref.slice(colon + 1)} session=${session} />`;
  } else if (route === 'admin') {
    page = html`<${AdminPage} session=${session} />`;
  } else {
    page = html`<${RepositoriesPage} />`;
  }
  return html`
    <header class="top">
      <a class="brand" href="#/">Pier</a>
      <nav aria-label="Main">
        <a href="#/">Repositories</a>
        ${session.admin && !session.open ? html`<a href="#/admin">Admin</a>` : null}
      </nav>
      <div class="who">
        ${session.user
          ? html`<span>Signed in as <strong>${session.user}</strong></span> <button type="button" onClick=${signOut}>Sign out</button>`
          : session.open
            ? html`<span>Open registry (no accounts yet)</span>`
            : html`<a class="button" href="#/sign-in">Sign in</a>`}
      </div>
    </header>
    <main>${page}</main>
  `;
}

render(html`<${App} />`, document.getElementById('app')!);
