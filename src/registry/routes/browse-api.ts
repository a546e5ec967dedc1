/**
 * The /pier/v1 endpoints the web UI reads (docs/api.md, types in
 * src/api/pier-v1.ts): repositories with search, sort and pages; a
 * repository's tags with their details and the viewer's rights; one
 * manifest with layers, config and referrers; the diff of two manifests;
 * the audit log and the configured rules (admins).
 *
 * Every list holds only what the viewer may pull: a repository the viewer
 * may not pull is answered exactly like one that does not exist.
 */
import type { AuditResponse, DiffResponse, ManifestResponse, RepositoriesResponse, RepositorySort, RightsResponse, RulesResponse, TagSort, TagsResponse } from '../../api/pier-v1.js';
import { ANONYMOUS, type Principal } from '../../auth/access.js';
import { AuthError } from '../../auth/errors.js';
import { Digest } from '../../oci/digest.js';
import { RequestError } from '../request-errors.js';
import type { Call } from '../context.js';

type Handler = (call: Call, m: RegExpExecArray) => Promise<unknown>;

export const BROWSE_ROUTES: [string, RegExp, Handler][] = [
  ['GET', /^\/pier\/v1\/repositories$/, repositories],
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/tags\/details$/, tags],
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/rights$/, rights],
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/manifests\/(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, manifest],
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/diff$/, diff],
  ['GET', /^\/pier\/v1\/audit$/, audit],
  ['GET', /^\/pier\/v1\/rules$/, rules],
];

/** Who is asking: anonymous when the request has no credentials (bad credentials are refused). */
async function viewer(call: Call): Promise<Principal> {
  try {
    return await call.deps.gate.require(call.identity(), { base: true });
  } catch (err) {
    if (err instanceof AuthError && err.code === 'ERR_UNAUTHENTICATED') return ANONYMOUS;
    throw err;
  }
}

const SORTS: RepositorySort[] = ['name', 'pushed', 'size'];
const MAX_PAGE = 1000;

function int(call: Call, name: string, fallback: number, max: number): number {
  const raw = call.query.get(name);
  const n = raw === null ? fallback : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new RequestError('ERR_BAD_REQUEST', `"${name}" must be a whole number`);
  return Math.min(n, max);
}

/** `?order=`, defaulting to ascending for names and descending for the rest. */
function orderOf(call: Call, sort: string): 'asc' | 'desc' {
  const order = call.query.get('order') ?? (sort === 'name' ? 'asc' : 'desc');
  if (order !== 'asc' && order !== 'desc') throw new RequestError('ERR_BAD_REQUEST', '"order" must be asc or desc');
  return order;
}

async function repositories(call: Call): Promise<RepositoriesResponse> {
  const principal = await viewer(call);
  const q = (call.query.get('q') ?? '').trim().toLowerCase();
  const sort = (call.query.get('sort') ?? 'name') as RepositorySort;
  if (!SORTS.includes(sort)) throw new RequestError('ERR_BAD_REQUEST', `"sort" must be one of ${SORTS.join(', ')}`);
  const order = orderOf(call, sort);
  const offset = int(call, 'offset', 0, Number.MAX_SAFE_INTEGER);
  const limit = int(call, 'limit', 50, MAX_PAGE);
  call.principal = principal;
  // What the viewer may pull, as patterns: the database filters, sorts and pages.
  const names = await call.deps.gate.pullable(principal);
  const page = await call.deps.web.views.repositories({ q, sort, order, offset, limit, names });
  return {
    total: page.total,
    offset,
    repositories: page.items.map((r) => ({ name: r.name, tags: r.tags, bytes: r.bytes, pushedAt: r.pushedAt === null ? null : new Date(r.pushedAt).toISOString() })),
  };
}

const TAG_SORTS: TagSort[] = ['pushed', 'name'];

async function tags(call: Call, m: RegExpExecArray): Promise<TagsResponse> {
  const { name, principal } = await call.repository(m[1]!, ['pull']);
  const sort = (call.query.get('sort') ?? 'pushed') as TagSort;
  if (!TAG_SORTS.includes(sort)) throw new RequestError('ERR_BAD_REQUEST', `"sort" must be one of ${TAG_SORTS.join(', ')}`);
  const order = orderOf(call, sort);
  const offset = int(call, 'offset', 0, Number.MAX_SAFE_INTEGER);
  const limit = int(call, 'limit', 100, MAX_PAGE);
  const page = await call.deps.web.views.tags(name, { sort, order, offset, limit });
  if (!page) throw new RequestError('ERR_REPOSITORY_UNKNOWN', `repository ${name} not known to registry`, { detail: { name } });
  return { repository: name, rights: await call.deps.gate.rights(principal, name), total: page.total, offset, tags: page.items };
}

async function rights(call: Call, m: RegExpExecArray): Promise<RightsResponse> {
  const { name, principal } = await call.repository(m[1]!, ['pull']);
  return { repository: name, rights: await call.deps.gate.rights(principal, name) };
}

async function manifest(call: Call, m: RegExpExecArray): Promise<ManifestResponse> {
  const { name } = await call.repository(m[1]!, ['pull']);
  const view = await call.deps.web.views.manifest(name, Digest.parse(m[2]!));
  if (!view) throw new RequestError('ERR_MANIFEST_UNKNOWN', `manifest ${m[2]!} unknown to repository ${name}`);
  return view;
}

async function diff(call: Call, m: RegExpExecArray): Promise<DiffResponse> {
  const { name } = await call.repository(m[1]!, ['pull']);
  const from = call.query.get('from');
  const to = call.query.get('to');
  if (from === null || to === null) throw new RequestError('ERR_DIGEST_PARAM', 'a diff needs ?from=DIGEST&to=DIGEST');
  const out = await call.deps.web.views.diff(name, Digest.parse(from), Digest.parse(to));
  if (!out) throw new RequestError('ERR_MANIFEST_UNKNOWN', `${from} or ${to} is unknown to repository ${name}`);
  return out;
}

async function admin(call: Call, what: string): Promise<void> {
  const principal = await call.deps.gate.require(call.identity(), { base: true });
  call.principal = principal;
  call.deps.lifecycle.requireAdmin(principal, what);
}

async function audit(call: Call): Promise<AuditResponse> {
  await admin(call, 'reading the audit log');
  const accounts = call.deps.accounts;
  if (!accounts) throw new RequestError('ERR_NO_ACCOUNTS', 'this registry runs without accounts');
  const actor = call.query.get('actor') || undefined;
  const action = call.query.get('action') || undefined;
  const repository = call.query.get('repository') || undefined;
  const limit = Math.max(1, int(call, 'limit', 100, 1000));
  const before = call.query.get('before') === null ? undefined : int(call, 'before', 0, Number.MAX_SAFE_INTEGER);
  // One more than asked: whether an older page exists.
  const found = await accounts.store.list({ limit: limit + 1, actor, action, repository, before });
  const entries = found.slice(0, limit);
  return {
    next: found.length > limit ? entries[entries.length - 1]!.id : null,
    entries: entries.map((e) => ({ id: e.id, at: e.at.toISOString(), actor: e.actor, ip: e.ip ?? null, action: e.action, repository: e.repository ?? null, target: e.target ?? null, outcome: e.outcome })),
  };
}

async function rules(call: Call): Promise<RulesResponse> {
  await admin(call, 'reading the configured rules');
  const c = call.deps.config;
  return {
    immutableTags: c.tags.immutable.map((r) => ({ repository: r.repository.source, tags: r.tags.map((p) => p.source), except: r.except.map((p) => p.source) })),
    quotas: c.quotas.map((q) => ({ namespace: q.namespace.source, limit: q.limit })),
    retention: c.retention.rules.map((r) => ({ repository: r.repository.source, keepLast: r.keepLast ?? null, keepDays: r.keepDays ?? null, keep: r.keep.map((p) => p.source) })),
  };
}
