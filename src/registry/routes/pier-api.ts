/**
 * Pier's own JSON API under /pier/v1 (documented in docs/api.md): tag
 * history and rollback, admin deletes of immutable tags, storage usage,
 * GC, retention and webhooks. Errors use the same JSON body as /v2.
 *
 * Rights: history needs pull on the repository, rollback push, tag delete
 * the delete right (plus admin to override immutability); usage, GC,
 * retention and webhooks need an admin (see src/lifecycle/lifecycle.ts).
 */
import { Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { parseTag } from '../../oci/reference.js';
import type { DeleteTagResponse, DeliveriesResponse, GcResponse, RetentionResponse, RollbackResponse, TagHistoryResponse, UsageResponse, WebhookTestResponse, WebhooksResponse } from '../../api/pier-v1.js';
import type { RollbackTarget } from '../../lifecycle/history.js';
import type { Call } from '../context.js';
import { readBody } from '../http.js';

const MAX_BODY = 64 * 1024;

type Handler = (call: Call, m: RegExpExecArray) => Promise<unknown>;

const ROUTES: [string, RegExp, Handler][] = [
  ['GET', /^\/pier\/v1\/repositories\/(.+)\/tags\/([^/]+)\/history$/, history],
  ['POST', /^\/pier\/v1\/repositories\/(.+)\/tags\/([^/]+)\/rollback$/, rollback],
  ['DELETE', /^\/pier\/v1\/repositories\/(.+)\/tags\/([^/]+)$/, deleteTag],
  ['GET', /^\/pier\/v1\/usage$/, usage],
  ['POST', /^\/pier\/v1\/gc$/, gc],
  ['POST', /^\/pier\/v1\/retention$/, retention],
  ['GET', /^\/pier\/v1\/webhooks$/, webhooks],
  ['GET', /^\/pier\/v1\/webhooks\/([^/]+)\/deliveries$/, deliveries],
  ['POST', /^\/pier\/v1\/webhooks\/([^/]+)\/test$/, testWebhook],
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
  if (pathMatched) throw new OciError('UNSUPPORTED', `${call.req.method} is not supported on ${pathname}`);
  throw new OciError('NAME_UNKNOWN', `no such API endpoint ${pathname}`, { status: 404 });
}

async function admin(call: Call, what: string) {
  const principal = await call.deps.gate.require(call.identity(), { base: true });
  call.principal = principal;
  call.deps.lifecycle.requireAdmin(principal, what);
  return principal;
}

async function jsonBody(call: Call): Promise<Record<string, unknown>> {
  const raw = await readBody(call.req.raw, MAX_BODY, () => new OciError('SIZE_INVALID', `request body exceeds ${MAX_BODY} bytes`, { status: 413 }));
  call.bytesIn += raw.length;
  if (raw.length === 0) return {};
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new OciError('UNSUPPORTED', 'the request body must be a JSON object', { status: 400 });
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
    if (typeof body.to !== 'string') throw new OciError('DIGEST_INVALID', '"to" must be a digest string');
    target = { to: Digest.parse(body.to).toString() };
  } else {
    const steps = body.steps ?? 1;
    if (typeof steps !== 'number') throw new OciError('UNSUPPORTED', '"steps" must be a number', { status: 400 });
    target = { steps };
  }
  return (await call.deps.service.rollback(name, tag, target, call.actor(principal)));
}

async function deleteTag(call: Call, m: RegExpExecArray): Promise<DeleteTagResponse> {
  const { name, principal } = await call.repository(m[1]!, ['delete']);
  if (!call.deps.config.deletes) throw new OciError('UNSUPPORTED', 'deletes are disabled on this registry');
  const tag = parseTag(m[2]!);
  const override = call.query.get('override') === 'immutable';
  if (!(await call.deps.service.deleteTag(name, tag, principal, override, call.actor(principal)))) {
    throw new OciError('MANIFEST_UNKNOWN', `tag ${tag} unknown to repository ${name}`);
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
