/**
 * Starts a registry from a configuration: opens the stores, builds the app,
 * listens, and runs the upload janitor. `close()` stops accepting, lets
 * in-flight requests finish (up to `shutdownTimeout`), then closes stores.
 *
 * The server's composition root (test/architecture.test.ts names it): the
 * one place that chooses adapters (the fs or S3 blob store; SQLite with the
 * in-process coordinator, or PostgreSQL with the SQL coordinator and the
 * signing keys in the database), builds the
 * repository service over them, and subscribes audit, metrics and webhooks
 * to its events.
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import { openGate, type AccessGate } from '../auth/access.js';
import { PierError } from '../oci/pier-error.js';
import type { AuthGate } from '../auth/gate.js';
import { createAuthGate } from '../auth/setup.js';
import type { AuditLog } from '../auth/store.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { DomainEvents } from '../service/events.js';
import { RepositoryService } from '../service/repository-service.js';
import { SignatureVerifier } from '../service/signatures.js';
import { TrustPolicy } from '../service/trust-policy.js';
import type { BlobStore } from '../store/blob/blob-store.js';
import { FsBlobStore } from '../store/blob/fs/fs-blob-store.js';
import { SqlUploadStateStore } from '../store/meta/sql/sql-upload-state-store.js';
import { InProcessCoordinator } from '../store/coordinator/in-process.js';
import type { MetaStore } from '../store/meta/meta-store.js';
import { SqlAccountStore } from '../store/meta/sql/sql-account-store.js';
import { SqlLifecycleStore } from '../store/meta/sql/sql-lifecycle-store.js';
import { SqlMetaStore } from '../store/meta/sql/sql-meta-store.js';
import { SqlQuotaLedger } from '../store/meta/sql/sql-quota-ledger.js';
import type { QuotaLedger } from '../store/meta/quota-ledger.js';
import { openDatabase } from '../store/meta/sql/open.js';
import type { Database } from '../store/meta/sql/schema.js';
import { SqlCoordinator } from '../store/meta/sql/sql-coordinator.js';
import { SqlSigningKeyStore } from '../store/meta/sql/sql-signing-key-store.js';
import type { Coordinator } from '../store/coordinator/coordinator.js';
import { loadStoredKeySet } from '../auth/keys.js';
import type { Kysely } from 'kysely';
import { buildApp } from './app.js';
import { embeddedAdapters, type RegistryConfig } from './config.js';
import { createMetrics, registerDiskSpaceMetrics, type Metrics } from './metrics.js';
import { DiskSpace } from '../store/disk-space.js';
import path from 'node:path';
import { registerAuditHook } from './audit-hook.js';
import { registerTokenRoute } from './routes/token.js';
import { WebSessions } from '../auth/sessions.js';
import { immutableRule } from '../lifecycle/rules.js';
import { ImageViews } from '../service/image-view.js';
import { SqlBrowseStore } from '../store/meta/sql/sql-browse-store.js';
import { SqlSessionStore } from '../store/meta/sql/sql-session-store.js';
import { SqlSupplyStore } from '../store/meta/sql/sql-supply-store.js';
import { Scanner, SCANNER_ACTOR } from '../supply/scanner.js';
import { GENERATOR_ANNOTATION, CYCLONEDX_MEDIA_TYPE } from '../supply/sbom.js';
import { Supply } from '../supply/supply.js';
import { VulnerabilityPolicy } from '../supply/policy.js';
import type { ServePolicy } from '../service/serve-policy.js';
import type { RepositoryName } from '../oci/reference.js';
import type { AuditLog as AuditSink } from '../auth/store.js';
import { packageVersion } from '../shared/package-root.js';

/** The registry cannot listen on its address. */
export class ListenError extends PierError {
  readonly code = 'ERR_LISTEN';
}

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
  const { storage, database } = embeddedAdapters(config);
  const space = new DiskSpace(
    [
      ...(storage.type === 'fs' ? [{ name: 'storage', path: storage.path }] : []),
      ...(database.type === 'sqlite' ? [{ name: 'database', path: path.dirname(database.path) }] : []),
    ],
    storage.minFree,
  );
  const db: Kysely<Database> = await openDatabase(database);
  let blobs: BlobStore;
  try {
    // S3 upload sessions keep their state in the database, so any replica continues them.
    // The AWS SDK (~25 MB resident) is loaded only for an S3 store.
    blobs = storage.type === 'fs' ? await FsBlobStore.open(storage.path, { space, ...(storage.accelRedirect ? { accelRedirect: storage.accelRedirect } : {}) }) : await (await import('../store/blob/s3/s3-blob-store.js')).S3BlobStore.open(storage, new SqlUploadStateStore(db));
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const meta = new SqlMetaStore(db);
  const metrics = createMetrics();
  registerDiskSpaceMetrics(metrics, space);
  // SQLite: one process, so claims, locks, leases and counters live in it. PostgreSQL: replicas share them as rows.
  const sqlCoordinator = database.type === 'postgres' ? new SqlCoordinator(db) : undefined;
  const coordinator: Coordinator = sqlCoordinator ?? new InProcessCoordinator();
  // SQLite: keys in the auth.keys folder. PostgreSQL: in the database, so every replica has the same.
  const keys = database.type === 'postgres' ? () => loadStoredKeySet(new SqlSigningKeyStore(db), config.auth.keys) : undefined;
  const closeStores = async () => {
    await sqlCoordinator?.close().catch((err: unknown) => log.warn({ err }, 'giving back coordinator rows failed'));
    await meta.close();
    await blobs.close();
  };
  let authGate: AuthGate | undefined;
  let https: { cert: Buffer; key: Buffer } | undefined;
  try {
    if (!options.gate) {
      authGate = await createAuthGate({ auth: config.auth, policy: config.policy, listen: config.listen, data: config.data, https: config.tls !== undefined }, new SqlAccountStore(db), coordinator, log, keys);
    }
    if (config.tls) https = { cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) };
  } catch (err) {
    authGate?.stop();
    await closeStores();
    throw err;
  }
  const gate = options.gate ?? authGate ?? openGate;
  try {
    await reconcileUploads(blobs, meta, log);
  } catch (err) {
    authGate?.stop();
    await closeStores();
    throw err;
  }
  const events = new DomainEvents((err, event) => log.error({ err, event: event.type }, 'an event listener failed'));
  // Retention deletes tags through the service (tags: below), so its deletions are announced too.
  const quotaLedger = new SqlQuotaLedger(db);
  const lifecycle = await Lifecycle.start({
    store: new SqlLifecycleStore(db),
    meta,
    tags: { moveTag: (repository, tag, move) => service.moveTag(repository, tag, move) },
    blobs,
    coordinator,
    config,
    log,
    openAccess: gate === openGate,
    quotaLedger,
    reservationTtlMs: config.uploads.maxAge * 1000,
  });
  const audit: AuditSink = authGate?.store ?? new SqlAccountStore(db);
  const supplyStore = new SqlSupplyStore(db);
  // The version the SBOM names as its tool: Pier's package.json.
  let PIER_VERSION = '0.0.0';
  try {
    PIER_VERSION = packageVersion();
  } catch {
    // Run from somewhere without Pier's package.json: the SBOM names 0.0.0.
  }
  const vulnerabilityPolicy = new VulnerabilityPolicy(config.scanning.policies, supplyStore, (e) => {
    log.info({ repository: e.repository, reference: e.reference, digest: e.digest, outcome: e.outcome, note: e.note }, 'vulnerability policy');
    audit.record({ at: new Date(), actor: SCANNER_ACTOR, ip: undefined, action: 'pull-policy', repository: e.repository, target: `${e.reference}@${e.digest}: ${e.note}`, outcome: e.outcome }).catch((err: unknown) => log.error({ err }, 'writing the audit log failed'));
  });
  const servePolicies: ServePolicy[] = [
    new TrustPolicy(config.signatures.trust, new SignatureVerifier({ meta, blobs })),
    {
      // The vulnerability policy (src/supply/policy.ts) behind the same hook; it records its own warnings.
      check: async ({ repository, tag, manifest }) => {
        const d = await vulnerabilityPolicy.check(repository, tag, manifest.digest.toString());
        return d.allow ? { outcome: 'allow' } : { outcome: 'deny', policy: 'vulnerability', reason: 'findings', message: d.reason };
      },
    },
  ];
  const service: RepositoryService = new RepositoryService({
    meta,
    blobs,
    lifecycle,
    access: gate,
    events,
    options: { automaticMount: config.uploads.automaticMount, deleteIndexChildren: config.manifests.deleteIndexChildren },
    servePolicies,
  });
  const scanner = new Scanner({
    store: supplyStore,
    registry: {
      openBlob: (digest) => blobs.open(digest),
      manifest: async (repository, digest) => {
        const m = await meta.getManifest(repository as RepositoryName, digest);
        return m && { mediaType: m.mediaType, content: m.content };
      },
      referrers: (repository, subject) => meta.listReferrers(repository as RepositoryName, subject),
      indexesOf: (repository, digest) => meta.indexesReferencing(repository as RepositoryName, digest),
      writeSbom: (repository, subject, document) =>
        service.putGeneratedReferrer(repository as RepositoryName, subject, { artifactType: CYCLONEDX_MEDIA_TYPE, content: document, annotations: { [GENERATOR_ANNOTATION]: 'pier' } }, { name: SCANNER_ACTOR }),
    },
    coordinator,
    webhooks: { plan: (type, repository, eventId, payload) => lifecycle.webhooks.plan(type, repository, eventId, payload), nudge: () => lifecycle.webhooks.nudge() },
    settings: { enabled: config.scanning.enabled, sbom: config.scanning.sbom },
    version: PIER_VERSION,
    log,
    onLayerRead: () => metrics.scannerLayerReads.inc(),
  });
  const supply = new Supply(supplyStore, scanner, config.scanning);
  // Every change is audited, whatever gate runs (the open one included).
  subscribe(events, { metrics, lifecycle, audit, log });
  events.on('manifest-pushed', () => scanner.nudge());
  const accounts = authGate ? { store: authGate.store, refresh: () => authGate.refresh() } : undefined;
  const browse = new SqlBrowseStore(db);
  const web = {
    views: new ImageViews(service, browse, (repository, tag) => immutableRule(config.tags.immutable, repository, tag) !== undefined),
    // Sessions live in the database, so every replica answers a signed-in browser.
    sessions: authGate ? new WebSessions(new SqlSessionStore(db), authGate) : undefined,
  };
  const app = buildApp({ config, service, gate, metrics, lifecycle, space, accounts, web, supply }, log, https ? { https } : {});
  if (authGate) registerTokenRoute(app, authGate, { refreshTtl: config.auth.refreshTtl });
  const colon = config.listen.lastIndexOf(':');
  const host = config.listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(config.listen.slice(colon + 1));
  try {
    await app.listen({ host, port });
  } catch (err) {
    authGate?.stop();
    await app.close();
    await scanner.close();
    await lifecycle.close();
    await closeStores();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ListenError(`cannot listen on ${config.listen}: address already in use`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ListenError(`cannot listen on ${config.listen}: no such local address`);
    throw err;
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const url = `${https ? 'https' : 'http'}://${hostForUrl}:${actualPort}`;
  log.info({ url, data: config.data }, 'listening');

  const janitor = startJanitor(config, blobs, meta, quotaLedger, log);
  scanner.start();
  const db0 = await supply.state();
  if (db0.generation > 0 && db0.stale) log.warn({ databaseDate: new Date(db0.databaseDate ?? 0).toISOString(), maxAge: config.scanning.maxDatabaseAge }, 'the vulnerability database is older than scanning.maxDatabaseAge; import a newer one (pier vulndb import)');
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
          await scanner.close();
          await lifecycle.close();
          await closeStores();
        }
      })();
      return closing;
    },
  };
}

/**
 * The consumers of the service's events: metrics count, the webhook queue
 * wakes up (it reads tag_history itself), and the audit log records every
 * change made through the registry API with who and from where.
 */
function subscribe(events: DomainEvents, to: { metrics: Metrics; lifecycle: Lifecycle; audit: AuditLog; log: Logger }): void {
  const { metrics, lifecycle, audit, log } = to;
  events.on('blob-committed', () => metrics.blobsCommitted.inc());
  events.on('manifest-pushed', () => metrics.manifestsPushed.inc());
  const wake = () => lifecycle.webhooks.nudge();
  events.on('manifest-pushed', wake);
  for (const type of ['serve-refused', 'serve-warned'] as const) {
    events.on(type, (e) => {
      metrics.servePolicy.inc({ policy: e.policy, outcome: type === 'serve-refused' ? 'deny' : 'warn', reason: e.reason });
      log.warn({ repository: e.repository, tag: e.tag, digest: e.digest, policy: e.policy, reason: e.reason, user: e.actor?.name }, e.message);
    });
  }
  events.on('manifest-deleted', wake);
  events.on('tag-changed', wake);
  registerAuditHook(events, audit, log);
}

/**
 * Crash leftovers, at start: upload files without a session (the process
 * died between creating the file and recording it) are removed, and
 * sessions without a file are ended. Sessions with a file stay: a client
 * resumes them across a restart.
 */
export async function reconcileUploads(blobs: BlobStore, meta: MetaStore, log: Logger): Promise<void> {
  const everything = new Date(Date.now() + 86_400_000);
  const sessions = new Set(await meta.uploadsStartedBefore(everything));
  let files = 0;
  let ended = 0;
  for (const id of await blobs.staleUploads(everything)) {
    if (sessions.has(id)) {
      sessions.delete(id);
      continue;
    }
    await blobs.cancelUpload(id);
    files++;
  }
  for (const id of sessions) {
    if (await blobs.uploadInfo(id).then(() => true, () => false)) continue;
    await meta.deleteUpload(id);
    ended++;
  }
  if (files + ended > 0) log.info({ removedFiles: files, endedSessions: ended }, 'reconciled uploads left by a crash');
}

/** Expires upload sessions idle for longer than `uploads.maxAge`, orphaned upload files, and stale quota reservations. */
function startJanitor(config: RegistryConfig, blobs: BlobStore, meta: MetaStore, quotas: QuotaLedger, log: Logger): NodeJS.Timeout {
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
      await quotas.release(id);
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
    // Reservations of writers that crashed (or replicas that died) before releasing them.
    const reservations = await quotas.sweep(before);
    if (expired > 0 || reservations > 0) log.info({ expired, reservations }, 'expired stale uploads');
  };
  const timer = setInterval(() => {
    sweep().catch((err: unknown) => log.error({ err }, 'upload janitor failed'));
  }, every);
  timer.unref();
  return timer;
}
