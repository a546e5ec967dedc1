/**
 * Lifecycle management in one object: tag history and rollback,
 * immutable tags, retention, online GC, storage accounting and quotas,
 * webhooks. The registry's routes call the small {@link LifecycleHooks}
 * at the points where a push or delete commits; the /pier/v1 API
 * (src/registry/routes/pier-api.ts) calls the services.
 *
 * Admin hook: a principal is an admin if the auth module marks it
 * (`principal.admin === true`), if its name is in `lifecycle.admins`, or
 * if the registry runs with the open gate (no access control: everyone
 * may do everything). Admins may run GC and retention, read usage and
 * webhook logs, and delete an immutable tag through the /pier/v1 API.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Digest } from '../oci/digest.js';
import type { RepositoryName, Tag } from '../oci/reference.js';
import type { BlobStore } from '../store/blob/blob-store.js';
import type { Coordinator, Release } from '../store/coordinator/coordinator.js';
import type { LifecycleStore } from '../store/meta/lifecycle-store.js';
import type { MetaStore, TagWriter } from '../store/meta/meta-store.js';
import type { QuotaLedger } from '../store/meta/quota-ledger.js';
import type { LifecycleConfig } from './config.js';
import { LifecycleError } from './errors.js';
import { GarbageCollector, type GcReport } from './gc.js';
import { TagHistory } from './history.js';
import { PullRecorder } from './pulls.js';
import { Retention, type RetentionReport } from './retention.js';
import { immutableRule } from './rules.js';
import { StorageAccounting } from './usage.js';
import { WebhookDispatcher } from './webhooks.js';

/** What the registry's routes call. Each is one line at its call site. */
export interface LifecycleHooks {
  /**
   * The body of an upload to `repository`, passed on only as its bytes are
   * reserved against the namespace quota under `holder` (the upload id;
   * `offset` bytes so far, `declared` the Content-Length if any). Reading
   * it fails with ERR_QUOTA_EXCEEDED before a chunk that would pass the
   * quota. Release the reservation with {@link releaseReservation} once
   * the blob is linked or the upload ends.
   */
  meterUpload(repository: RepositoryName, holder: string, body: Readable, offset: number, declared: number | undefined): Readable;
  /**
   * Before a mount links `digest` (`size` bytes) into `repository`:
   * reserves it against the namespace quota (nothing if the namespace
   * stores it already) or throws ERR_QUOTA_EXCEEDED. Release after linking.
   */
  reserveBlob(repository: RepositoryName, holder: string, digest: Digest, size: number): Promise<void>;
  /** Drops a reservation (its bytes are linked, so counted as stored, or abandoned). */
  releaseReservation(holder: string): Promise<void>;
  /**
   * Holds GC off `digest` while a push makes it visible (commit an upload,
   * link it, mount it). Call the returned function when linked (or failed).
   */
  claimBlob(digest: Digest): Promise<Release>;
  /**
   * Before a manifest PUT commits: refuses moving an immutable tag and
   * passing a quota. Call the returned function after the commit (or its
   * failure).
   */
  beforeManifestPut(repository: RepositoryName, digest: Digest, tags: Tag[], size: number): Promise<Release>;
  /** Before a DELETE of a tag or manifest: refuses if it would delete an immutable tag. */
  checkDelete(repository: RepositoryName, reference: { tag: Tag } | { digest: Digest }): Promise<void>;
  /** A manifest was pulled by tag (for retention's pull age). */
  pulled(repository: RepositoryName, tag: Tag): void;
}

export interface PrincipalLike {
  name: string;
  admin?: boolean;
}

export interface LifecycleOptions {
  /** GC, usage, retention, pull and webhook queries. */
  store: LifecycleStore;
  meta: MetaStore;
  /** Writes retention's deletions: the repository service's, so they are announced like any tag change. */
  tags: TagWriter;
  blobs: BlobStore;
  /** Claims for GC, immutable-tag locks, leases for the schedules and webhook delivery. */
  coordinator: Coordinator;
  config: LifecycleConfig;
  log: Logger;
  /** Where quota reservations are kept (the metadata store's, so they hold across replicas). */
  quotaLedger: QuotaLedger;
  /** Reservations untouched this long (ms; `uploads.maxAge`) are a crashed writer's and stop counting. */
  reservationTtlMs: number;
  /** True when the registry has no access control (the open gate): everyone is admin. */
  openAccess: boolean;
}

export class Lifecycle implements LifecycleHooks {
  readonly history: TagHistory;
  readonly gc: GarbageCollector;
  readonly retention: Retention;
  readonly usage: StorageAccounting;
  readonly webhooks: WebhookDispatcher;
  readonly pulls: PullRecorder;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly config: LifecycleConfig;
  private readonly log: Logger;
  private scheduled: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: LifecycleOptions) {
    const { store, meta, tags, blobs, coordinator, config, log } = options;
    this.config = config;
    this.log = log;
    this.history = new TagHistory(meta, config.history);
    this.gc = new GarbageCollector(store, blobs, coordinator, { gracePeriod: config.gc.gracePeriod, history: config.history }, log);
    this.retention = new Retention(store, tags, config.retention.rules, config.tags.immutable, log);
    this.usage = new StorageAccounting(store, config.quotas, options.quotaLedger, options.reservationTtlMs);
    this.webhooks = new WebhookDispatcher(store, coordinator, config.webhooks, log);
    this.pulls = new PullRecorder(store, log);
  }

  /** Starts the webhook queue and the GC and retention schedules. */
  static async start(options: LifecycleOptions): Promise<Lifecycle> {
    const lifecycle = new Lifecycle(options);
    await lifecycle.webhooks.start();
    const { gc, retention } = options.config;
    if (retention.schedule > 0 && retention.rules.length > 0) lifecycle.every(retention.schedule, 'retention', () => lifecycle.retention.run({ dryRun: false }));
    if (gc.schedule > 0) lifecycle.every(gc.schedule, 'garbage collection', () => lifecycle.gc.run());
    return lifecycle;
  }

  /** Runs `job` every `seconds` in the replica that holds its lease (the only one, embedded). */
  private every(seconds: number, what: string, job: () => Promise<unknown>): void {
    const lease = `schedule:${what}`;
    const run = async () => {
      if (await this.options.coordinator.acquireLease(lease, seconds * 1000 * 2)) await job();
    };
    const timer = setInterval(() => {
      this.scheduled = this.scheduled.then(run).catch((err: unknown) => this.log.error({ err }, `scheduled ${what} failed`));
    }, seconds * 1000);
    timer.unref();
    this.timers.push(timer);
  }

  isAdmin(principal: PrincipalLike): boolean {
    return this.options.openAccess || principal.admin === true || this.config.lifecycle.admins.includes(principal.name);
  }

  requireAdmin(principal: PrincipalLike, what: string): void {
    if (!this.isAdmin(principal)) throw new LifecycleError('ERR_NOT_ADMIN', `${what} needs an admin; ${principal.name} is not one`);
  }

  // ---- hooks

  meterUpload(repository: RepositoryName, holder: string, body: Readable, offset: number, declared: number | undefined): Readable {
    return this.usage.meter(repository, holder, body, offset, declared);
  }

  reserveBlob(repository: RepositoryName, holder: string, digest: Digest, size: number): Promise<void> {
    return this.usage.reserve(repository, holder, size, digest.toString());
  }

  releaseReservation(holder: string): Promise<void> {
    return this.usage.release(holder);
  }

  claimBlob(digest: Digest): Promise<Release> {
    return this.options.coordinator.claim(digest.toString());
  }

  async beforeManifestPut(repository: RepositoryName, digest: Digest, tags: Tag[], size: number): Promise<Release> {
    const holder = `manifest:${randomUUID()}`;
    const guarded = tags.filter((t) => immutableRule(this.config.tags.immutable, repository, t));
    // Serialise pushes to the same immutable tag, so two first pushes cannot both "create" it.
    const unlock = guarded.length === 0 ? async () => undefined : await this.options.coordinator.lock(guarded.map((t) => `${repository}:${t}`));
    try {
      for (const tag of guarded) {
        const current = await this.options.meta.getTaggedManifest(repository, tag);
        if (current && !current.digest.equals(digest)) throw this.immutableError(repository, tag, `cannot move it from ${current.digest.toString()} to ${digest.toString()}; push a new tag instead`);
      }
      // A manifest the repository stores already adds nothing; without a quota there is nothing to reserve (and no read).
      if (this.usage.hasQuota(repository) && !(await this.options.meta.getManifest(repository, digest))) await this.usage.reserve(repository, holder, size);
    } catch (err) {
      await unlock();
      throw err;
    }
    return async () => {
      await unlock();
      if (this.usage.hasQuota(repository)) await this.usage.release(holder);
    };
  }

  async checkDelete(repository: RepositoryName, reference: { tag: Tag } | { digest: Digest }): Promise<void> {
    if (this.config.tags.immutable.length === 0) return;
    let tags: string[];
    if ('tag' in reference) {
      tags = (await this.options.meta.getTaggedManifest(repository, reference.tag)) ? [reference.tag] : [];
    } else {
      tags = await this.options.meta.tagsPointingAt(repository, reference.digest);
    }
    for (const tag of tags) {
      if (immutableRule(this.config.tags.immutable, repository, tag)) throw this.immutableError(repository, tag, 'it cannot be deleted except by an admin through the Pier API (DELETE /pier/v1/repositories/NAME/tags/TAG?override=immutable)');
    }
  }

  pulled(repository: RepositoryName, tag: Tag): void {
    this.pulls.pulled(repository, tag);
  }

  // ---- services behind the API

  /** Refuses rolling back a tag an immutable-tag rule protects. */
  checkRollback(repository: RepositoryName, tag: Tag): void {
    if (immutableRule(this.config.tags.immutable, repository, tag)) throw this.immutableError(repository, tag, 'it cannot be rolled back');
  }

  runGc(dryRun: boolean): Promise<GcReport> {
    return this.gc.run({ dryRun });
  }

  runRetention(dryRun: boolean): Promise<RetentionReport> {
    return this.retention.run({ dryRun });
  }

  private immutableError(repository: string, tag: string, why: string): LifecycleError {
    const rule = immutableRule(this.config.tags.immutable, repository, tag)!;
    return new LifecycleError(
      'ERR_IMMUTABLE_TAG',
      `tag ${tag} in ${repository} is immutable (rule: repository ${rule.repository.source}, tags ${rule.tags.map((t) => t.source).join(', ')}); ${why}`,
      { repository, tag },
    );
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.webhooks.close();
    await this.scheduled;
    await this.pulls.close();
  }
}
