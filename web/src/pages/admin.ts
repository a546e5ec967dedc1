/**
 * Administration (admins): users, groups, CI tokens (created and shown
 * once, revoked), policy rules, the configured immutable-tag, quota and
 * retention rules (read-only: they live in the config file), webhooks with
 * their delivery log and a test button, storage usage against quotas, GC
 * and retention (dry run, then run), and the audit log with filters.
 */
import type {
  AuditResponse,
  DeliveriesResponse,
  GcResponse,
  GroupInfo,
  NewToken,
  RetentionResponse,
  RuleInfo,
  RulesResponse,
  SessionResponse,
  TokenInfo,
  UsageResponse,
  UserInfo,
  WebhooksResponse,
  WebhookTestResponse,
} from '../../../src/api/pier-v1.js';
import { api, enc } from '../api.js';
import { bytes, when } from '../format.js';
import { ErrorLine, html, message, useEffect, useState } from '../ui.js';

/** Loads `path` and reloads on demand; errors become a line. */
function useLoad<T>(path: string): [T | null, string | null, () => Promise<void>] {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    api<T>('GET', path).then(
      (d) => (setData(d), setError(null)),
      (err: unknown) => setError(message(err)),
    );
  useEffect(() => {
    void load();
  }, [path]);
  return [data, error, load];
}

function value(e: Event): string {
  return (e.target as HTMLInputElement).value;
}

/** Runs a write, then `after`; a refusal becomes the returned message. */
async function act(fn: () => Promise<unknown>, after: () => Promise<void>): Promise<string | null> {
  try {
    await fn();
    await after();
    return null;
  } catch (err) {
    return message(err);
  }
}

export function AdminPage({ session }: { session: SessionResponse }) {
  if (!session.admin) return html`<h1 tabindex="-1">Administration</h1><p>Only administrators can see this page.</p>`;
  return html`
    <h1 tabindex="-1">Administration</h1>
    <${Users} /> <${Groups} /> <${Tokens} /> <${Policy} /> <${Rules} /> <${Webhooks} /> <${Usage} /> <${Maintenance} /> <${Audit} />
  `;
}

function Users() {
  const [data, error, load] = useLoad<{ users: UserInfo[] }>('/users');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [isAdmin, setIsAdmin] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const [who, setWho] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const change = async (e: Event) => {
    e.preventDefault();
    const user = who;
    const failed = await act(() => api('PUT', `/users/${enc(user)}/password`, { password: newPassword }), load);
    setErr(failed);
    setDone(failed ? null : `Password of ${user} changed; their sessions ended`);
    setNewPassword('');
  };
  const add = async (e: Event) => {
    e.preventDefault();
    setErr(await act(() => api('POST', '/users', { name, password, admin: isAdmin }), load));
    setName('');
    setPassword('');
  };
  return html`<section aria-labelledby="users-h" class="card">
    <h2 id="users-h">Users</h2>
    <${ErrorLine} error=${error ?? err} />
    <table><thead><tr><th scope="col">User</th><th scope="col">Admin</th><th scope="col">Groups</th><th scope="col">Created</th><th scope="col">Action</th></tr></thead>
      <tbody>${data?.users.map((u) => html`<tr><td>${u.name}</td><td>${u.admin ? 'yes' : 'no'}</td><td>${u.groups.join(', ')}</td><td>${when(u.createdAt)}</td>
        <td><button type="button" class="danger small" aria-label=${`Remove user ${u.name}`} onClick=${async () => setErr(await act(() => api('DELETE', `/users/${enc(u.name)}`), load))}>Remove</button></td></tr>`)}</tbody></table>
    <form class="toolbar" onSubmit=${add}>
      <label>New user name <input required value=${name} onInput=${(e: Event) => setName(value(e))} /></label>
      <label>New user password <input type="password" required value=${password} onInput=${(e: Event) => setPassword(value(e))} /></label>
      <label><input type="checkbox" checked=${isAdmin} onChange=${(e: Event) => setIsAdmin((e.target as HTMLInputElement).checked)} /> Admin</label>
      <button type="submit">Add user</button>
    </form>
    <form class="toolbar" onSubmit=${change}>
      <label>User whose password to change <input required value=${who} onInput=${(e: Event) => setWho(value(e))} /></label>
      <label>New password <input type="password" required autocomplete="new-password" value=${newPassword} onInput=${(e: Event) => setNewPassword(value(e))} /></label>
      <button type="submit">Change password</button>
    </form>
    ${done ? html`<p role="status">${done}</p>` : null}
  </section>`;
}

function Groups() {
  const [data, error, load] = useLoad<{ groups: GroupInfo[] }>('/groups');
  const [name, setName] = useState('');
  const [member, setMember] = useState('');
  const [group, setGroup] = useState('');
  const [err, setErr] = useState<string | null>(null);
  return html`<section aria-labelledby="groups-h" class="card">
    <h2 id="groups-h">Groups</h2>
    <${ErrorLine} error=${error ?? err} />
    <ul>${data?.groups.map((g) => html`<li><strong>${g.name}</strong>: ${g.members.join(', ') || 'no members'}
      <button type="button" class="danger small" aria-label=${`Remove group ${g.name}`} onClick=${async () => setErr(await act(() => api('DELETE', `/groups/${enc(g.name)}`), load))}>Remove</button></li>`)}</ul>
    <form class="toolbar" onSubmit=${async (e: Event) => (e.preventDefault(), setErr(await act(() => api('POST', '/groups', { name }), load)))}>
      <label>New group name <input required value=${name} onInput=${(e: Event) => setName(value(e))} /></label>
      <button type="submit">Add group</button>
    </form>
    <form class="toolbar" onSubmit=${async (e: Event) => (e.preventDefault(), setErr(await act(() => api('PUT', `/groups/${enc(group)}/members/${enc(member)}`), load)))}>
      <label>Group <input required value=${group} onInput=${(e: Event) => setGroup(value(e))} /></label>
      <label>Member <input required value=${member} onInput=${(e: Event) => setMember(value(e))} /></label>
      <button type="submit">Add member</button>
    </form>
  </section>`;
}

function Tokens() {
  const [data, error, load] = useLoad<{ tokens: TokenInfo[] }>('/tokens');
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState('');
  const [created, setCreated] = useState<NewToken | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    setErr(
      await act(async () => {
        setCreated(await api<NewToken>('POST', '/tokens', { name, scopes: scopes.split(/\s+/).filter((s) => s !== '') }));
      }, load),
    );
  };
  return html`<section aria-labelledby="tokens-h" class="card">
    <h2 id="tokens-h">CI tokens</h2>
    <${ErrorLine} error=${error ?? err} />
    ${created
      ? html`<div class="secret" role="status"><p>Token <strong>${created.name}</strong> created. Copy its secret now: it is shown only once.</p>
          <p><code data-testid="token-secret">${created.secret}</code></p></div>`
      : null}
    <table><thead><tr><th scope="col">Token</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col">Action</th></tr></thead>
      <tbody>${data?.tokens.map((t) => html`<tr><td>${t.name}</td><td>${t.scopes.join(' ')}</td><td>${when(t.createdAt)}</td><td>${when(t.lastUsedAt)}</td><td>${t.revokedAt ? `revoked ${when(t.revokedAt)}` : 'active'}</td>
        <td>${t.revokedAt ? null : html`<button type="button" class="danger small" aria-label=${`Revoke token ${t.name}`} onClick=${async () => setErr(await act(() => api('DELETE', `/tokens/${enc(t.name)}`), load))}>Revoke</button>`}</td></tr>`)}</tbody></table>
    <form class="toolbar" onSubmit=${create}>
      <label>Token name <input required value=${name} onInput=${(e: Event) => setName(value(e))} /></label>
      <label>Scopes <input required placeholder="repository:team/app:pull,push" value=${scopes} onInput=${(e: Event) => setScopes(value(e))} /></label>
      <button type="submit">Create token</button>
    </form>
  </section>`;
}

function Policy() {
  const [data, error, load] = useLoad<{ rules: RuleInfo[] }>('/policy');
  const [subject, setSubject] = useState('');
  const [repositories, setRepositories] = useState('');
  const [actions, setActions] = useState('pull');
  const [err, setErr] = useState<string | null>(null);
  const add = async (e: Event) => {
    e.preventDefault();
    setErr(await act(() => api('POST', '/policy', { subject, repositories, actions: actions.split(/[\s,]+/).filter((a) => a !== '') }), load));
  };
  return html`<section aria-labelledby="policy-h" class="card">
    <h2 id="policy-h">Policy rules</h2>
    <${ErrorLine} error=${error ?? err} />
    <table><thead><tr><th scope="col">Rule</th><th scope="col">Subject</th><th scope="col">Repositories</th><th scope="col">Actions</th><th scope="col">Action</th></tr></thead>
      <tbody>${data?.rules.map((r) => html`<tr><td>${r.origin}</td><td>${r.subject}</td><td>${r.repositories}</td><td>${r.actions.join(', ')}</td>
        <td>${r.origin.startsWith('config:') ? html`<span class="muted">config file</span>` : html`<button type="button" class="danger small" aria-label=${`Remove rule ${r.origin}`} onClick=${async () => setErr(await act(() => api('DELETE', `/policy/${enc(r.origin)}`), load))}>Remove</button>`}</td></tr>`)}</tbody></table>
    <form class="toolbar" onSubmit=${add}>
      <label>Subject <input required placeholder="user:alice, group:dev, anonymous" value=${subject} onInput=${(e: Event) => setSubject(value(e))} /></label>
      <label>Repositories <input required placeholder="team/**" value=${repositories} onInput=${(e: Event) => setRepositories(value(e))} /></label>
      <label>Actions <input required value=${actions} onInput=${(e: Event) => setActions(value(e))} /></label>
      <button type="submit">Add rule</button>
    </form>
  </section>`;
}

function Rules() {
  const [data, error] = useLoad<RulesResponse>('/rules');
  return html`<section aria-labelledby="rules-h" class="card">
    <h2 id="rules-h">Immutable tags, quotas and retention</h2>
    <p class="muted">These rules live in the configuration file; change them there.</p>
    <${ErrorLine} error=${error} />
    ${data
      ? html`<ul>
          ${data.immutableTags.map((r) => html`<li>Immutable: tags ${r.tags.join(', ')} in ${r.repository}${r.except.length ? ` except ${r.except.join(', ')}` : ''}</li>`)}
          ${data.quotas.map((q) => html`<li>Quota: ${q.namespace} at most ${bytes(q.limit)}</li>`)}
          ${data.retention.map((r) => html`<li>Retention in ${r.repository}: keep last ${r.keepLast ?? '—'}, days ${r.keepDays ?? '—'}${r.keep.length ? `, always ${r.keep.join(', ')}` : ''}</li>`)}
          ${data.immutableTags.length + data.quotas.length + data.retention.length === 0 ? html`<li>None configured.</li>` : null}
        </ul>`
      : null}
  </section>`;
}

function Webhooks() {
  const [data, error, load] = useLoad<WebhooksResponse>('/webhooks');
  const [log, setLog] = useState<DeliveriesResponse | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const showLog = async (name: string) => setLog(await api<DeliveriesResponse>('GET', `/webhooks/${enc(name)}/deliveries`));
  const test = async (name: string) => {
    try {
      const r = await api<WebhookTestResponse>('POST', `/webhooks/${enc(name)}/test`);
      setResult(`${name}: ${r.ok ? `delivered (${r.status ?? ''}) in ${r.ms} ms` : `failed: ${r.error ?? r.status ?? ''}`}`);
      await load();
      if (log?.name === name) await showLog(name);
    } catch (err) {
      setResult(message(err));
    }
  };
  return html`<section aria-labelledby="hooks-h" class="card">
    <h2 id="hooks-h">Webhooks</h2>
    <p class="muted">These webhooks live in the configuration file (<code>webhooks.endpoints</code>); change them there.</p>
    <${ErrorLine} error=${error} />
    ${result ? html`<p role="status">${result}</p>` : null}
    ${data && data.webhooks.length === 0 ? html`<p>No webhooks are configured.</p>` : null}
    <table><thead><tr><th scope="col">Name</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Delivered</th><th scope="col">Pending</th><th scope="col">Failed</th><th scope="col">Actions</th></tr></thead>
      <tbody>${data?.webhooks.map((w) => html`<tr><td>${w.name}</td><td>${w.url}</td><td>${w.events.join(', ')}</td><td>${w.delivered}</td><td>${w.pending}</td><td>${w.failed}</td>
        <td><button type="button" class="small" aria-label=${`Test webhook ${w.name}`} onClick=${() => test(w.name)}>Test</button>
            <button type="button" class="small" aria-label=${`Show deliveries of ${w.name}`} onClick=${() => showLog(w.name)}>Deliveries</button></td></tr>`)}</tbody></table>
    ${log
      ? html`<h3 id="deliveries-h">Deliveries of ${log.name}</h3><table aria-labelledby="deliveries-h"><thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Created</th><th scope="col">Error</th></tr></thead>
          <tbody>${log.deliveries.map((d) => html`<tr><td>${d.type}</td><td>${d.status}</td><td>${d.attempts}</td><td>${when(d.createdAt)}</td><td>${d.lastError ?? ''}</td></tr>`)}</tbody></table>`
      : null}
  </section>`;
}

function Usage() {
  const [data, error] = useLoad<UsageResponse>('/usage');
  return html`<section aria-labelledby="usage-h" class="card">
    <h2 id="usage-h">Storage usage</h2>
    <${ErrorLine} error=${error} />
    ${data
      ? html`<p>Total ${bytes(data.totalBytes)}</p>
          <table><thead><tr><th scope="col">Namespace</th><th scope="col">Used</th><th scope="col">Quota</th></tr></thead>
          <tbody>${data.namespaces.map((n) => html`<tr><td>${n.namespace}</td><td>${bytes(n.bytes)}</td><td>${n.limit === undefined ? 'none' : html`${bytes(n.limit)} <meter min="0" max=${n.limit} value=${n.bytes} aria-label=${`${n.namespace} quota used`}></meter>`}</td></tr>`)}</tbody></table>`
      : null}
  </section>`;
}

function Maintenance() {
  const [gc, setGc] = useState<GcResponse | null>(null);
  const [retention, setRetention] = useState<RetentionResponse | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const run = async (fn: () => Promise<void>) => setErr(await act(fn, async () => undefined));
  return html`<section aria-labelledby="gc-h" class="card">
    <h2 id="gc-h">Garbage collection and retention</h2>
    <${ErrorLine} error=${err} />
    <div class="toolbar">
      <button type="button" onClick=${() => run(async () => setGc(await api<GcResponse>('POST', '/gc?dryRun=1')))}>GC dry run</button>
      <button type="button" class="danger" disabled=${!gc?.dryRun} onClick=${() => run(async () => setGc(await api<GcResponse>('POST', '/gc')))}>Run GC</button>
      <button type="button" onClick=${() => run(async () => setRetention(await api<RetentionResponse>('POST', '/retention')))}>Retention dry run</button>
      <button type="button" class="danger" disabled=${!retention?.dryRun} onClick=${() => run(async () => setRetention(await api<RetentionResponse>('POST', '/retention?apply=1')))}>Apply retention</button>
    </div>
    ${gc ? html`<p role="status">GC ${gc.dryRun ? 'dry run' : 'run'}: ${gc.manifests.deleted} manifests and ${gc.blobs.deleted} blobs (${bytes(gc.blobs.bytesFreed)}) ${gc.dryRun ? 'would be' : 'were'} deleted, in ${gc.durationMs} ms.</p>` : null}
    ${retention ? html`<p role="status">Retention ${retention.dryRun ? 'dry run' : 'run'}: ${retention.deleted.length} tags ${retention.dryRun ? 'would be' : 'were'} deleted${retention.deleted.length ? `: ${retention.deleted.map((d) => `${d.repository}:${d.tag}`).join(', ')}` : ''}; ${retention.kept} kept.</p>` : null}
  </section>`;
}

function Audit() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [repository, setRepository] = useState('');
  const [filter, setFilter] = useState('');
  const [before, setBefore] = useState<number[]>([]);
  const path = `/audit?limit=100${filter}${before.length ? `&before=${before[before.length - 1]!}` : ''}`;
  const [data, error] = useLoad<AuditResponse>(path);
  const apply = (e: Event) => {
    e.preventDefault();
    setFilter(`&actor=${enc(actor.trim())}&action=${enc(action.trim())}&repository=${enc(repository.trim())}`);
    setBefore([]);
  };
  return html`<section aria-labelledby="audit-h" class="card">
    <h2 id="audit-h">Audit log</h2>
    <form class="toolbar" onSubmit=${apply}>
      <label>Actor <input value=${actor} onInput=${(e: Event) => setActor(value(e))} /></label>
      <label>Action <input value=${action} placeholder="push, delete, login…" onInput=${(e: Event) => setAction(value(e))} /></label>
      <label>Repository <input value=${repository} onInput=${(e: Event) => setRepository(value(e))} /></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorLine} error=${error} />
    <table class="audit" aria-label="Audit entries"><thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">From</th><th scope="col">Action</th><th scope="col">Repository</th><th scope="col">Target</th><th scope="col">Outcome</th></tr></thead>
      <tbody>${data?.entries.map((e) => html`<tr key=${e.id}><td>${when(e.at)}</td><td>${e.actor}</td><td>${e.ip ?? ''}</td><td>${e.action}</td><td>${e.repository ?? ''}</td><td>${e.target ?? ''}</td><td>${e.outcome}</td></tr>`)}</tbody></table>
    <nav class="pager" aria-label="Audit pages">
      <button type="button" disabled=${before.length === 0} onClick=${() => setBefore(before.slice(0, -1))}>Newer entries</button>
      <button type="button" disabled=${!data || data.next === null} onClick=${() => data?.next != null && setBefore([...before, data.next])}>Older entries</button>
    </nav>
  </section>`;
}
