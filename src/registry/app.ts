/**
 * The registry's HTTP application: one Fastify instance that dispatches
 * `/v2/...` to the routes, turns every error into the spec's JSON error
 * body, logs one line per request, and serves /metrics and /healthz.
 *
 * Request bodies are never parsed by Fastify: uploads stream from the raw
 * request into the blob store, manifests are read with a size limit.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { RequestError } from './request-errors.js';
import { ConnectionGuard } from './connections.js';
import { Call, type RegistryDeps } from './context.js';
import { toOciError } from './http-errors.js';
import { drainFor } from './http.js';
import { matchRoute } from './router.js';
import { blobRoute } from './routes/blobs.js';
import { catalogRoute, referrersRoute, tagsRoute } from './routes/listings.js';
import { manifestRoute } from './routes/manifests.js';
import { pierApiRoute } from './routes/pier-api.js';
import { uploadRoute, uploadsRoute } from './routes/uploads.js';
import { resolveSession, sessionRoute } from './routes/session.js';
import { registerWebUi } from './routes/ui.js';

declare module 'fastify' {
  interface FastifyRequest {
    call?: Call;
  }
}

async function dispatch(call: Call, pathname: string): Promise<void> {
  const route = matchRoute(pathname);
  if (!route) throw new RequestError('ERR_NO_ENDPOINT', `no such API endpoint ${pathname}`);
  switch (route.kind) {
    case 'base': {
      call.principal = await call.deps.gate.require(call.identity(), { base: true });
      call.reply.code(200).header('content-type', 'application/json').header('content-length', 2);
      await call.reply.send(call.req.method === 'HEAD' ? undefined : '{}');
      return;
    }
    case 'catalog':
      return catalogRoute(call);
    case 'tags':
      return tagsRoute(call, route.name);
    case 'manifest':
      return manifestRoute(call, route.name, route.reference);
    case 'blob':
      return blobRoute(call, route.name, route.digest);
    case 'uploads':
      return uploadsRoute(call, route.name);
    case 'upload':
      return uploadRoute(call, route.name, route.id);
    case 'referrers':
      return referrersRoute(call, route.name, route.digest);
  }
}

/** How long an error answer waits for the rest of an unread request body (lingering close). */
const LINGER_MS = 1000;

/** The `reason` label of a storage refusal: below the configured minimum, or the device was full. */
function storageReason(cause: unknown): 'min_free' | 'full' {
  return (cause as { code?: unknown } | undefined)?.code === 'ERR_STORAGE_LOW' ? 'min_free' : 'full';
}

/** The route's kind, for metric labels (never the raw path: names are unbounded). */
function routeLabel(pathname: string): string {
  return matchRoute(pathname)?.kind ?? 'other';
}

export interface AppOptions {
  /** Serve HTTPS with this PEM certificate and key (`tls.cert`, `tls.key`). */
  https?: { cert: Buffer; key: Buffer };
}

/** The schema compilers' factory: routes with a Fastify schema are a programming error here. */
function noSchemas(): never {
  throw new Error('Pier routes declare no Fastify schema (validate at the edge instead)');
}

export function buildApp(deps: RegistryDeps, logger: FastifyBaseLogger | false, options: AppOptions = {}): FastifyInstance {
  // Fastify types an HTTPS instance apart; the routes only use what both share.
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    loggerInstance: logger === false ? undefined : logger,
    // One access-log line per request comes from the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: deps.config.connections.idleTimeout * 1000,
    // No limit on a whole request (uploads are long); src/registry/connections.ts
    // times out headers, idle connections and stalled bodies instead.
    requestTimeout: 0,
    routerOptions: { maxParamLength: 1000 },
    // Pier's routes declare no Fastify schema (requests are parsed at the edge
    // by src/oci, src/registry/request-errors.ts): without this, Fastify loads
    // Ajv and fast-json-stringify (~100 modules) at start for nothing.
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
    genReqId: (() => {
      let n = 0;
      return () => (++n).toString(36);
    })(),
  });
  const guard = new ConnectionGuard(app.server, deps.config.connections, {
    onCount: (delta) => deps.metrics.connections.inc(delta),
    onClose: (reason) => deps.metrics.connectionsClosed.inc({ reason }),
  });
  app.addHook('onClose', async () => guard.stop());
  if (guard.max < deps.config.connections.max) {
    app.log.warn({ configured: deps.config.connections.max, max: guard.max }, 'connections.max lowered to fit the open-file limit');
  }
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.addHook('onRequest', async (_req, reply) => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
  });

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.url.indexOf('?');
    let pathname = q === -1 ? req.url : req.url.slice(0, q);
    if (pathname.includes('%')) {
      try {
        pathname = decodeURIComponent(pathname);
      } catch {
        throw new RequestError('ERR_PATH_ENCODING', 'malformed percent-encoding in path');
      }
    }
    const call = new Call(deps, req, reply, new URLSearchParams(q === -1 ? '' : req.url.slice(q + 1)));
    req.call = call;
    if (pathname.startsWith('/pier/')) {
      await resolveSession(call, pathname);
      if (!(await sessionRoute(call, pathname))) await pierApiRoute(call, pathname);
    } else await dispatch(call, pathname);
  };
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', handler });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', handler });
  // Pier's own JSON API (docs/api.md): history, rollback, GC, retention, usage, webhooks, administration.
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE'], url: '/pier/v1/*', handler });

  // 200 while the database answers, so a load balancer keeps the replica
  // for pulls; low storage (uploads refused) is reported in the body.
  app.get('/healthz', async (_req, reply) => {
    await deps.service.repositoryExists('healthz-probe' as never);
    const low = (await deps.space?.status())?.filter((v) => v.low) ?? [];
    const body = low.length === 0 ? { status: 'ok' } : { status: 'degraded', storage: 'low', uploads: 'refused', volumes: low.map(({ name, free, minFree }) => ({ name, free, minFree })) };
    return reply.code(200).header('content-type', 'application/json').send(JSON.stringify(body));
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  // The web UI: static files at / and /assets/ (routes/ui.ts).
  registerWebUi(app);

  app.setNotFoundHandler(async (req, reply) => {
    const err = toOciError(new RequestError('ERR_NO_ROUTE', `no such endpoint ${req.method} ${req.url.split('?')[0] ?? ''}`));
    return reply.code(404).header('content-type', 'application/json').send(JSON.stringify(err.toBody()));
  });

  app.setErrorHandler(async (error, req, reply) => {
    const oci = toOciError(error);
    if (oci.status >= 500) req.log.error({ err: oci.cause ?? oci }, 'request failed');
    if (oci.status === 507) deps.metrics.storageRefusals.inc({ reason: storageReason(oci.cause) });
    // A request whose body was not read cannot be followed on the same
    // connection: read on briefly so the answer is not lost to a reset.
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !(await drainFor(req.raw, LINGER_MS))) reply.header('connection', 'close');
    for (const [k, v] of Object.entries(oci.headers)) reply.header(k, v);
    const body = JSON.stringify(oci.toBody());
    reply.code(oci.status).header('content-type', 'application/json').header('content-length', Buffer.byteLength(body));
    if (oci.status === 401 && !reply.hasHeader('www-authenticate')) reply.header('www-authenticate', 'Basic realm="pier"');
    return reply.send(req.method === 'HEAD' ? undefined : body);
  });

  app.addHook('onRequestAbort', async (req) => {
    deps.metrics.requests.inc({ method: req.method, route: routeLabel(req.url.split('?')[0] ?? ''), status: 'aborted' });
    req.log.info({ method: req.method, url: req.url, status: 'aborted', in: req.call?.bytesIn ?? 0, user: req.call?.principal?.name, ip: req.ip, agent: req.headers['user-agent'] }, 'request');
  });

  app.addHook('onResponse', async (req, reply) => {
    const pathname = req.url.split('?')[0] ?? '';
    const route = routeLabel(pathname);
    const status = reply.statusCode;
    const ms = reply.elapsedTime;
    const out = Number(reply.getHeader('content-length') ?? 0);
    const bytesIn = req.call?.bytesIn ?? 0;
    deps.metrics.requests.inc({ method: req.method, route, status });
    deps.metrics.duration.observe({ method: req.method, route }, ms / 1000);
    deps.metrics.bytesReceived.inc(bytesIn);
    if (req.method !== 'HEAD') deps.metrics.bytesSent.inc(out);
    req.log.info(
      { method: req.method, url: req.url, status, ms: Math.round(ms * 10) / 10, in: bytesIn, out: req.method === 'HEAD' ? 0 : out, user: req.call?.principal?.name, ip: req.ip, agent: req.headers['user-agent'] },
      'request',
    );
  });
  return app;
}
