/**
 * Pier's own JSON API under /pier/v1 (documented in docs/api.md): tag
 * history and rollback, admin deletes of immutable tags, storage usage,
 * GC, retention and webhooks. Errors use the same JSON body as /v2.
 *
 * Rights: history needs pull on the repository, rollback push, tag delete
 * the delete right (plus admin to override immutability); usage, GC,
 * retention and webhooks need an admin (see src/lifecycle/lifecycle.ts).
 *
 * Administration (users, groups, tokens, policy rules) needs an admin too;
 * every change is written to the audit log with who made it and from where,
 * and the gate reloads at once so the next request sees it. While the
 * registry has no account it is open (on loopback only), so the first admin
 * can be added from the same machine.
 */
import { Digest } from '../../oci/digest.js';
import { RequestError } from '../request-errors.js';
import { parseManifestReference, parseTag, type RepositoryName } from '../../oci/reference.js';
import type { VulnDbState } from '../../supply/supply.js';
import type { ScanResponse, VulnDbRecordsResponse, VulnDbResponse, DeleteTagResponse, DeliveriesResponse, GcResponse, GroupInfo, ImportResponse, NewToken, RetentionResponse, RollbackResponse, RuleInfo, TagHistoryResponse, TokenInfo, UsageResponse, UserInfo, WebhookTestResponse, WebhooksResponse } from '../../api/pier-v1.js';
import { addPolicyRule, addUser, changePassword, createAccessToken, describeToken, importHtpasswd } from '../../auth/accounts.js';
import { storedRules, type AuthStore } from '../../auth/store.js';
import type { RollbackTarget } from '../../lifecycle/history.js';
import type { Call } from '../context.js';
import { readBody } from '../http.js';
import { BROWSE_ROUTES } from './browse-api.js';

const MAX_BODY = 64 * 1024;
/** A batch of OSV records (the CLI sends a few MiB at a time). */
const MAX_RECORDS_BODY = 32 * 1024 * 1024;

type Handler = (call: Call, m: RegExpExecArray) => Promise<unknown>;

const ROUTES: [string, RegExp, Handler][] = [
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/tags\/([^/]+)\/history$/, history],
  ['POST', /^\/pier\/v1\/repositories\/(.+)\/tags\/([^/]+)\/rollback$/, rollback],
  ['DELETE', /^\/pier\/v1\/repositories\/(.+)\/tags\/([^/]+)$/, deleteTag],
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/scans\/([^/]+)$/, getScan],
  ['POST', /^\/pier\/v1\/repositories\/(.+)\/scans\/([^/]+)$/, scanNow],
  ['GET', /^\/pier\/v1\/vulndb$/, vulnDb],
  ['POST', /^\/pier\/v1\/vulndb\/records$/, vulnDbRecords],
  ['POST', /^\/pier\/v1\/vulndb\/imports$/, vulnDbImport],
  ['GET', /^\/pier\/v1\/usage$/, usage],
  ['POST', /^\/pier\/v1\/gc$/, gc],
  ['POST', /^\/pier\/v1\/retention$/, retention],
  ['GET', /^\/pier\/v1\/webhooks$/, webhooks],
  ['GET', /^\/pier\/v1\/webhooks\/([^/]+)\/deliveries$/, deliveries],
  ['POST', /^\/pier\/v1\/webhooks\/([^/]+)\/test$/, testWebhook],
  ['GET', /^\/pier\/v1\/users$/, listUsers],
  ['POST', /^\/pier\/v1\/users$/, createUser],
  ['POST', /^\/pier\/v1\/users\/import$/, importUsers],
  ['DELETE', /^\/pier\/v1\/users\/([^/]+)$/, removeUser],
  ['PUT', /^\/pier\/v1\/users\/([^/]+)\/password$/, setPassword],
  ['PUT', /^\/pier\/v1\/users\/([^/]+)\/admin$/, setAdmin],
  ['GET', /^\/pier\/v1\/groups$/, listGroups],
  ['POST', /^\/pier\/v1\/groups$/, createGroup],
  ['DELETE', /^\/pier\/v1\/groups\/([^/]+)$/, removeGroup],
  ['PUT', /^\/pier\/v1\/groups\/([^/]+)\/members\/([^/]+)$/, addMember],
  ['DELETE', /^\/pier\/v1\/groups\/([^/]+)\/members\/([^/]+)$/, removeMember],
  ['GET', /^\/pier\/v1\/tokens$/, listTokens],
  ['POST', /^\/pier\/v1\/tokens$/, createToken],
  ['DELETE', /^\/pier\/v1\/tokens\/([^/]+)$/, revokeToken],
  ['GET', /^\/pier\/v1\/policy$/, listRules],
  ['POST', /^\/pier\/v1\/policy$/, createRule],
  ['DELETE', /^\/pier\/v1\/policy\/([^/]+)$/, removeRule],
  // The web UI's reads (browse-api.ts).
  ...BROWSE_ROUTES,
];

export async function pierApiRoute(call: Call, pathname: string): Promise<void> {
  let pathMatched = false;
  for (const [method, pattern, handler] of ROUTES) {
    const m = pattern.exec(pathname);
    if (!m) continue;
    pathMatched = true;
    if (method !== call.req.method) continue;
    const body = Buffer.from(JSON.stringify(await handler(call, m)));
    call.reply.code(200).header('content-type', 'application/json').header('content-length', body.length);
    await call.reply.send(body);
    return;
  }
  if (pathMatched) throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${call.req.method} is not supported on ${pathname}`);
  throw new RequestError('ERR_NO_ENDPOINT', `no such API endpoint ${pathname}`);
}

async function admin(call: Call, what: string) {
  const principal = await call.deps.gate.require(call.identity(), { base: true });
  call.principal = principal;
  call.deps.lifecycle.requireAdmin(principal, what);
  return principal;
}

async function jsonBody(call: Call, limit = MAX_BODY): Promise<Record<string, unknown>> {
  const raw = await readBody(call.req.raw, limit, () => new RequestError('ERR_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`));
  call.bytesIn += raw.length;
  if (raw.length === 0) return {};
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new RequestError('ERR_BAD_REQUEST', 'the request body must be a JSON object');
}

function flag(call: Call, name: string): boolean {
  const v = call.query.get(name);
  return v !== null && v !== 'false' && v !== '0';
}

async function history(call: Call, m: RegExpExecArray): Promise<TagHistoryResponse> {
  const { name } = await call.repository(m[1]!, ['pull']);
  const tag = parseTag(m[2]!);
  const limit = Math.min(Math.max(Number(call.query.get('limit') ?? 1000) || 1000, 1), 10_000);
  const h = await call.deps.lifecycle.history.history(name, tag, limit);
  return {
    repository: name,
    tag,
    current: h.current ?? null,
    changes: h.changes.map((c) => ({ ...c, at: c.at.toISOString() })),
    versions: h.versions.map((v) => ({ ...v, since: v.since.toISOString(), until: v.until?.toISOString() })),
  };
}

async function rollback(call: Call, m: RegExpExecArray): Promise<RollbackResponse> {
  const { name, principal } = await call.repository(m[1]!, ['pull', 'push']);
  const tag = parseTag(m[2]!);
  const body = await jsonBody(call);
  let target: RollbackTarget;
  if (body.to !== undefined) {
    if (typeof body.to !== 'string') throw new RequestError('ERR_DIGEST_PARAM', '"to" must be a digest string');
    target = { to: Digest.parse(body.to).toString() };
  } else {
    const steps = body.steps ?? 1;
    if (typeof steps !== 'number') throw new RequestError('ERR_BAD_REQUEST', '"steps" must be a number');
    target = { steps };
  }
  return (await call.deps.service.rollback(name, tag, target, call.actor(principal)));
}

async function deleteTag(call: Call, m: RegExpExecArray): Promise<DeleteTagResponse> {
  const { name, principal } = await call.repository(m[1]!, ['delete']);
  if (!call.deps.config.deletes) throw new RequestError('ERR_DELETES_DISABLED', 'deletes are disabled on this registry');
  const tag = parseTag(m[2]!);
  const override = call.query.get('override') === 'immutable';
  if (!(await call.deps.service.deleteTag(name, tag, principal, override, call.actor(principal)))) {
    throw new RequestError('ERR_MANIFEST_UNKNOWN', `tag ${tag} unknown to repository ${name}`);
  }
  return { repository: name, tag, deleted: true };
}

async function usage(call: Call): Promise<UsageResponse> {
  await admin(call, 'reading storage usage');
  return (await call.deps.lifecycle.usage.report());
}

async function gc(call: Call): Promise<GcResponse> {
  await admin(call, 'garbage collection');
  return call.deps.lifecycle.runGc(flag(call, 'dryRun'));
}

async function retention(call: Call): Promise<RetentionResponse> {
  await admin(call, 'retention');
  // A dry run unless `apply` is asked for: deleting tags is never a default.
  return (await call.deps.lifecycle.runRetention(!flag(call, 'apply')));
}

async function webhooks(call: Call): Promise<WebhooksResponse> {
  await admin(call, 'reading webhooks');
  const { endpoints } = call.deps.config.webhooks;
  const out = [];
  for (const e of endpoints) {
    const state = await call.deps.lifecycle.webhooks.deliveries(e.name, 0);
    out.push({ name: e.name, url: e.url, events: e.events, repository: e.repository.source, signed: e.secret !== undefined, pending: state.pending, failed: state.failed, delivered: state.delivered });
  }
  return { webhooks: out };
}

async function deliveries(call: Call, m: RegExpExecArray): Promise<DeliveriesResponse> {
  await admin(call, 'reading webhook deliveries');
  const limit = Math.min(Math.max(Number(call.query.get('limit') ?? 50) || 50, 1), 1000);
  return { name: m[1]!, ...(await call.deps.lifecycle.webhooks.deliveries(m[1]!, limit)) };
}

async function testWebhook(call: Call, m: RegExpExecArray): Promise<WebhookTestResponse> {
  const principal = await admin(call, 'testing a webhook');
  const result = await call.deps.lifecycle.webhooks.test(m[1]!, principal.name);
  return { name: m[1]!, ok: result.ok, status: result.status ?? null, error: result.error ?? null, ms: result.ms, event: result.event };
}

// ---- administration: users, groups, tokens, policy

/** The account store, for an admin; UNSUPPORTED on a registry built without accounts (a custom gate). */
async function accountsFor(call: Call, what: string): Promise<{ store: AuthStore }> {
  const principal = await admin(call, what);
  const accounts = call.deps.accounts;
  if (!accounts) throw new RequestError('ERR_NO_ACCOUNTS', 'this registry runs without accounts');
  // The store records each change in the audit log, in the change's own transaction, as this admin.
  return { store: accounts.store.as({ name: principal.name, ip: call.req.ip }) };
}

/** Makes the gate see a change before the response goes out. */
async function changed(call: Call): Promise<void> {
  await call.deps.accounts!.refresh();
}

function field(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') throw new RequestError('ERR_BAD_REQUEST', `"${name}" must be a non-empty string`);
  return v;
}

function optional<T>(body: Record<string, unknown>, name: string, type: 'string' | 'number' | 'boolean'): T | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== type) throw new RequestError('ERR_BAD_REQUEST', `"${name}" must be a ${type}`);
  return v as T;
}

function strings(body: Record<string, unknown>, name: string): string[] {
  const v = body[name];
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw new RequestError('ERR_BAD_REQUEST', `"${name}" must be a list of strings`);
  return v;
}

async function listUsers(call: Call): Promise<{ users: UserInfo[] }> {
  const { store } = await accountsFor(call, 'listing users');
  return { users: (await store.listUsers()).map((u) => ({ name: u.name, admin: u.admin, groups: u.groups, createdAt: u.createdAt.toISOString() })) };
}

async function createUser(call: Call) {
  const { store } = await accountsFor(call, 'adding a user');
  const body = await jsonBody(call);
  const name = field(body, 'name');
  const isAdmin = optional<boolean>(body, 'admin', 'boolean') ?? false;
  await addUser(store, name, field(body, 'password'), { admin: isAdmin });
  await changed(call);
  return { name, admin: isAdmin };
}

async function importUsers(call: Call): Promise<ImportResponse> {
  const { store } = await accountsFor(call, 'importing users');
  const body = await jsonBody(call);
  const result = await importHtpasswd(store, field(body, 'htpasswd'), { update: optional<boolean>(body, 'update', 'boolean') ?? false });
  if (result.added.length + result.updated.length > 0) await changed(call);
  return result;
}

async function removeUser(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'removing a user');
  await store.removeUser(m[1]!);
  await call.deps.web.sessions?.signOutEverywhere(m[1]!);
  await changed(call);
  return { name: m[1]!, removed: true };
}

async function setPassword(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, "changing a user's password");
  await changePassword(store, m[1]!, field(await jsonBody(call), 'password'));
  await call.deps.web.sessions?.signOutEverywhere(m[1]!);
  await changed(call);
  return { name: m[1]! };
}

async function setAdmin(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'making a user an admin');
  const value = optional<boolean>(await jsonBody(call), 'admin', 'boolean');
  if (value === undefined) throw new RequestError('ERR_BAD_REQUEST', '"admin" must be true or false');
  await store.setAdmin(m[1]!, value);
  await changed(call);
  return { name: m[1]!, admin: value };
}

async function listGroups(call: Call): Promise<{ groups: GroupInfo[] }> {
  const { store } = await accountsFor(call, 'listing groups');
  return { groups: await store.listGroups() };
}

async function createGroup(call: Call) {
  const { store } = await accountsFor(call, 'adding a group');
  const name = field(await jsonBody(call), 'name');
  await store.addGroup(name);
  await changed(call);
  return { name };
}

async function removeGroup(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'removing a group');
  await store.removeGroup(m[1]!);
  await changed(call);
  return { name: m[1]!, removed: true };
}

async function addMember(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'adding a group member');
  await store.addMember(m[1]!, m[2]!);
  await changed(call);
  return { group: m[1]!, user: m[2]! };
}

async function removeMember(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'removing a group member');
  await store.removeMember(m[1]!, m[2]!);
  await changed(call);
  return { group: m[1]!, user: m[2]! };
}

async function listTokens(call: Call): Promise<{ tokens: TokenInfo[] }> {
  const { store } = await accountsFor(call, 'listing tokens');
  return { tokens: (await store.listTokens()).map(describeToken) };
}

async function createToken(call: Call): Promise<NewToken> {
  const { store } = await accountsFor(call, 'creating a token');
  const body = await jsonBody(call);
  const name = field(body, 'name');
  const { secret, expiresAt } = await createAccessToken(store, {
    name,
    scopes: strings(body, 'scopes'),
    expiresIn: optional<number>(body, 'expiresIn', 'number'),
    owner: optional<string>(body, 'owner', 'string'),
  });
  await changed(call);
  return { name, secret, expiresAt: expiresAt?.toISOString() ?? null };
}

async function revokeToken(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'revoking a token');
  await store.revokeToken(m[1]!);
  await changed(call);
  return { name: m[1]!, revoked: true };
}

async function listRules(call: Call): Promise<{ rules: RuleInfo[] }> {
  const { store } = await accountsFor(call, 'listing policy rules');
  const rules = [...call.deps.config.policy, ...(await storedRules(store))];
  return { rules: rules.map((r) => ({ origin: r.origin, subject: r.subject, repositories: r.repositories, actions: r.actions })) };
}

async function createRule(call: Call): Promise<{ id: number; subject: string; repositories: string; actions: string[] }> {
  const { store } = await accountsFor(call, 'adding a policy rule');
  const body = await jsonBody(call);
  const subject = field(body, 'subject');
  const repositories = field(body, 'repositories');
  const actions = strings(body, 'actions');
  const id = await addPolicyRule(store, subject, repositories, actions);
  await changed(call);
  return { id, subject, repositories, actions };
}

async function removeRule(call: Call, m: RegExpExecArray) {
  const { store } = await accountsFor(call, 'removing a policy rule');
  const id = Number(m[1]);
  if (!Number.isSafeInteger(id)) throw new RequestError('ERR_BAD_REQUEST', `rule ${m[1]!} is from the configuration file; only rules added through the API or pier policy can be removed`);
  await store.removeRule(id);
  await changed(call);
  return { id, removed: true };
}

// ---- scans and the vulnerability database

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function vulnDbResponse(call: Call, s: VulnDbState): VulnDbResponse {
  return {
    generation: s.generation,
    ...(s.importedAt !== undefined ? { importedAt: iso(s.importedAt)! } : {}),
    ...(s.databaseDate !== undefined ? { databaseDate: iso(s.databaseDate)! } : {}),
    records: s.records,
    stale: s.stale,
    maxAgeSeconds: call.deps.config.scanning.maxDatabaseAge,
  };
}

/** The digest a scan route names: a digest, or the manifest a tag points at now (read without the serve policies). */
async function scanTarget(call: Call, m: RegExpExecArray): Promise<{ name: RepositoryName; digest: Digest }> {
  const { name } = await call.repository(m[1]!, ['pull']);
  const reference = parseManifestReference(m[2]!);
  const digest = reference.kind === 'digest' ? reference.digest : await call.deps.service.resolveTag(name, reference.tag);
  if (!digest) throw new RequestError('ERR_MANIFEST_UNKNOWN', `manifest ${m[2]!} unknown to repository ${name}`);
  return { name, digest };
}

async function scanResponse(call: Call, r: Awaited<ReturnType<Call['deps']['supply']['report']>>): Promise<ScanResponse> {
  return {
    repository: r.repository,
    digest: r.digest,
    status: r.status,
    ...(r.source !== undefined ? { source: r.source } : {}),
    ...(r.error !== undefined ? { error: r.error } : {}),
    counts: r.counts,
    findings: r.findings,
    packages: r.packages,
    inventoryErrors: r.inventoryErrors,
    ...(r.os ? { os: r.os } : {}),
    ...(r.sbom !== undefined ? { sbom: r.sbom } : {}),
    ...(r.scannedAt !== undefined ? { scannedAt: iso(r.scannedAt)! } : {}),
    ...(r.matchedAt !== undefined ? { matchedAt: iso(r.matchedAt)! } : {}),
    database: vulnDbResponse(call, await call.deps.supply.state()),
  };
}

async function getScan(call: Call, m: RegExpExecArray): Promise<ScanResponse> {
  const { name, digest } = await scanTarget(call, m);
  return scanResponse(call, await call.deps.supply.report(name, digest.toString()));
}

async function scanNow(call: Call, m: RegExpExecArray): Promise<ScanResponse> {
  const { name, digest } = await scanTarget(call, m);
  const r = await call.deps.supply.scanNow(name, digest);
  if (!r) throw new RequestError('ERR_MANIFEST_UNKNOWN', `manifest ${digest.toString()} unknown to repository ${name}`);
  return scanResponse(call, r);
}

async function vulnDb(call: Call): Promise<VulnDbResponse> {
  await call.deps.gate.require(call.identity(), { base: true });
  return vulnDbResponse(call, await call.deps.supply.state());
}

async function vulnDbRecords(call: Call): Promise<VulnDbRecordsResponse> {
  await admin(call, 'importing a vulnerability database');
  const body = await jsonBody(call, MAX_RECORDS_BODY);
  if (!Array.isArray(body.records)) throw new RequestError('ERR_BAD_REQUEST', '"records" must be a list of OSV records');
  return call.deps.supply.importRecords(body.records as unknown[]);
}

async function vulnDbImport(call: Call): Promise<VulnDbResponse> {
  const principal = await admin(call, 'importing a vulnerability database');
  const body = await jsonBody(call);
  const date = typeof body.databaseDate === 'string' ? Date.parse(body.databaseDate) : NaN;
  if (Number.isNaN(date)) throw new RequestError('ERR_BAD_REQUEST', '"databaseDate" must be an ISO 8601 time');
  const records = optional<number>(body, 'records', 'number') ?? 0;
  return vulnDbResponse(call, await call.deps.supply.finishImport({ databaseDate: date, records, actor: principal.name }));
}
