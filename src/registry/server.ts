/**
 * Starts a registry from a configuration: opens the stores, builds the app,
 * listens, and runs the upload janitor. `close()` stops accepting, lets
 * in-flight requests finish (up to `shutdownTimeout`), then closes stores.
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { FsBlobStore } from '../store/blob/fs/fs-blob-store.js';
import { openSqliteDatabase } from '../store/meta/sql/sqlite.js';
import { SqlMetaStore } from '../store/meta/sql/sql-meta-store.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import type { LifecycleTables } from '../lifecycle/schema.js';
import type { BlobStore } from '../store/blob/blob-store.js';
import type { MetaStore } from '../store/meta/meta-store.js';
import { readFile } from 'node:fs/promises';
import { createAuthGate } from '../auth/setup.js';
import type { AuthGate } from '../auth/gate.js';
import { openGate, type AccessGate } from './access.js';
import { buildApp } from './app.js';
import { registerAuditHook } from './audit-hook.js';
import { registerTokenRoute } from './routes/token.js';
import type { RegistryConfig } from './config.js';
import { createMetrics } from './metrics.js';

export interface RunningRegistry {
  /** `http://host:port` */
  url: string;
  /** `host:port` as clients name the registry. */
  host: string;
  app: FastifyInstance;
  blobs: BlobStore;
  meta: MetaStore;
  lifecycle: Lifecycle;
  log: Logger;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Defaults to a pino logger at the configured level on stdout. */
  logger?: Logger;
  /** Replaces the gate built from the config's accounts and policy (src/auth/setup.ts). */
  gate?: AccessGate;
}

export async function startRegistry(config: RegistryConfig, options: StartOptions = {}): Promise<RunningRegistry> {
  const log = options.logger ?? pino({ level: config.log.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
  const blobs = await FsBlobStore.open(config.storage.path);
  const db = await openSqliteDatabase(config.database.path, { synchronous: config.database.synchronous });
  const meta = new SqlMetaStore(db);
  const metrics = createMetrics();
  let authGate: AuthGate | undefined;
  let https: { cert: Buffer; key: Buffer } | undefined;
  try {
    if (!options.gate) authGate = await createAuthGate(config, db, log);
    if (config.tls) https = { cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) };
  } catch (err) {
    authGate?.stop();
    await meta.close();
    await blobs.close();
    throw err;
  }
  const gate = options.gate ?? authGate ?? openGate;
  const lifecycle = await Lifecycle.start({ db: db.withTables<LifecycleTables>(), meta, blobs, config, log, openAccess: gate === openGate });
  const app = buildApp({ config, blobs, meta, gate, metrics, lifecycle }, log, https ? { https } : {});
  if (authGate) {
    registerTokenRoute(app, authGate, { refreshTtl: config.auth.refreshTtl });
    registerAuditHook(app, authGate.store, log);
  }
  const colon = config.listen.lastIndexOf(':');
  const host = config.listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(config.listen.slice(colon + 1));
  try {
    await app.listen({ host, port });
  } catch (err) {
    authGate?.stop();
    await app.close();
    await lifecycle.close();
    await meta.close();
    await blobs.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw Object.assign(new Error(`cannot listen on ${config.listen}: address already in use`), { code: 'ERR_LISTEN' });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw Object.assign(new Error(`cannot listen on ${config.listen}: no such local address`), { code: 'ERR_LISTEN' });
    throw err;
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const url = `${https ? 'https' : 'http'}://${hostForUrl}:${actualPort}`;
  log.info({ url, data: config.data }, 'listening');

  const janitor = startJanitor(config, blobs, meta, log);
  let closing: Promise<void> | undefined;
  return {
    url,
    host: `${hostForUrl}:${actualPort}`,
    app,
    blobs,
    meta,
    lifecycle,
    log,
    close() {
      closing ??= (async () => {
        clearInterval(janitor);
        authGate?.stop();
        const force = setTimeout(() => app.server.closeAllConnections(), config.shutdownTimeout * 1000);
        try {
          await app.close();
        } finally {
          clearTimeout(force);
          await lifecycle.close();
          await meta.close();
          await blobs.close();
        }
      })();
      return closing;
    },
  };
}

/** Expires upload sessions idle for longer than `uploads.maxAge`, and orphaned upload files. */
function startJanitor(config: RegistryConfig, blobs: BlobStore, meta: MetaStore, log: Logger): NodeJS.Timeout {
  const every = Math.max(1, Math.min(config.uploads.maxAge / 4, 600)) * 1000;
  const sweep = async () => {
    const before = new Date(Date.now() - config.uploads.maxAge * 1000);
    let expired = 0;
    // Idle means no byte written since `before`: a slow upload that is still moving survives.
    const idle = new Set(await blobs.staleUploads(before));
    for (const id of await meta.uploadsStartedBefore(before)) {
      const gone = await blobs.uploadInfo(id).then(() => false, () => true);
      if (!idle.has(id) && !gone) continue;
      await blobs.cancelUpload(id);
      await meta.deleteUpload(id);
      idle.delete(id);
      expired++;
    }
    // Files with no session row: left by a crash between creating the file and recording it.
    for (const id of idle) {
      if ((await meta.uploadRepository(id)) === undefined) {
        await blobs.cancelUpload(id);
        expired++;
      }
    }
    if (expired > 0) log.info({ expired }, 'expired stale uploads');
  };
  const timer = setInterval(() => {
    sweep().catch((err: unknown) => log.error({ err }, 'upload janitor failed'));
  }, every);
  timer.unref();
  return timer;
}
