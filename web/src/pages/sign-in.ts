/** The sign-in form: the registry's own user name and password; a session cookie on success. */
import type { SessionResponse } from '../../../src/api/pier-v1.js';
import { api } from '../api.js';
import { ErrorLine, html, message, useState } from '../ui.js';

export function SignInPage({ onSignedIn }: { onSignedIn: () => Promise<void> }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api<SessionResponse>('POST', '/session', { username, password });
      await onSignedIn();
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };
  return html`
    <h1 tabindex="-1">Sign in</h1>
    <form class="card narrow" onSubmit=${submit}>
      <label for="username">Username</label>
      <input id="username" name="username" autocomplete="username" required value=${username} onInput=${(e: Event) => setUsername((e.target as HTMLInputElement).value)} />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required value=${password} onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)} />
      <${ErrorLine} error=${error} />
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
  `;
}
