/**
 * Storage accounting and quotas. A repository uses the bytes of every blob
 * it links plus its manifests; a namespace (first path segment) uses each
 * distinct blob once, however many of its repositories link it; the total
 * counts each stored blob once.
 */
import { Readable } from 'node:stream';
import { formatBytes } from '../shared/bytes.js';
import type { QuotaLedger } from '../store/meta/quota-ledger.js';
import type { RepositoryUsage, UsageQueries } from '../store/meta/lifecycle-store.js';
import { LifecycleError } from './errors.js';
import { namespaceOf, type QuotaRule } from './rules.js';

export type { RepositoryUsage } from '../store/meta/lifecycle-store.js';

export interface NamespaceUsage {
  namespace: string;
  bytes: number;
  /** The quota from the first matching rule, if any. */
  limit: number | undefined;
}

export interface UsageReport {
  repositories: RepositoryUsage[];
  namespaces: NamespaceUsage[];
  /** Distinct blob bytes plus manifest bytes across the registry. */
  totalBytes: number;
}

/** How much more an upload of unknown length reserves at a time. */
export const RESERVE_STEP = 1024 * 1024;

/**
 * Quotas are enforced on bytes as they arrive, never after the fact: a
 * writer reserves in the store's {@link QuotaLedger} before it writes
 * (see docs/decisions/0067-quota-reservations.md), so the namespace never
 * stores more than its quota, whatever the mix of concurrent uploads,
 * chunked bodies and mounts.
 */
export class StorageAccounting {
  constructor(
    private readonly db: UsageQueries,
    private readonly quotas: QuotaRule[],
    private readonly ledger: QuotaLedger,
    /** Reservations untouched this long (ms) are a crashed writer's and no longer count. */
    private readonly staleAfterMs: number,
  ) {}

  quotaFor(namespace: string): QuotaRule | undefined {
    return this.quotas.find((q) => q.namespace.matches(namespace));
  }

  /** Bytes a namespace uses: each distinct blob once, plus manifests. */
  namespaceBytes(namespace: string): Promise<number> {
    return this.db.namespaceBytes(namespace);
  }

  /** Whether writes to `repository` count against a quota at all. */
  hasQuota(repository: string): boolean {
    return this.quotaFor(namespaceOf(repository)) !== undefined;
  }

  /**
   * Raises `holder`'s reservation in the namespace of `repository` to
   * `total` bytes, or throws ERR_QUOTA_EXCEEDED and reserves nothing. With
   * `digest`, nothing is needed if the namespace stores that blob already
   * (a mount of a blob it has). No-op without a quota.
   */
  async reserve(repository: string, holder: string, total: number, digest?: string): Promise<void> {
    const namespace = namespaceOf(repository);
    const rule = this.quotaFor(namespace);
    if (!rule) return;
    const result = await this.ledger.reserve({ namespace, holder, total, limit: rule.limit, staleBefore: new Date(Date.now() - this.staleAfterMs), digest });
    if (result.ok) return;
    const busy = result.reserved > 0 ? ` (${formatBytes(result.reserved)} more reserved by pushes in progress)` : '';
    throw new LifecycleError(
      'ERR_QUOTA_EXCEEDED',
      `quota exceeded: namespace ${namespace} uses ${formatBytes(result.used)}${busy} of its ${formatBytes(rule.limit)} quota (rule ${rule.namespace.source}); this push needs ${formatBytes(result.needed)} more`,
      { namespace, used: result.used, reserved: result.reserved, limit: rule.limit, requested: result.needed },
    );
  }

  /** Drops `holder`'s reservation: what it reserved is linked (now counted as stored), or abandoned. */
  async release(holder: string): Promise<void> {
    if (this.quotas.length > 0) await this.ledger.release(holder);
  }

  /**
   * The body of an upload to `repository`, passed on chunk by chunk only
   * once each chunk is reserved under `holder` (an upload of `offset`
   * bytes so far): a declared length is reserved up front, a body of
   * unknown length (chunked transfer encoding) {@link RESERVE_STEP} at a
   * time. Reading it fails with ERR_QUOTA_EXCEEDED before the chunk that
   * would pass the quota reaches the store. Without a quota, `body` itself.
   */
  meter(repository: string, holder: string, body: Readable, offset: number, declared: number | undefined): Readable {
    if (!this.hasQuota(repository)) return body;
    let reserved = offset;
    const more = async (needed: number) => {
      // Reserve a step ahead to save round trips, but never fail for want of the step alone.
      const ahead = declared === undefined ? Math.max(needed, reserved + RESERVE_STEP) : Math.max(needed, offset + declared);
      try {
        await this.reserve(repository, holder, ahead);
        reserved = ahead;
      } catch (err) {
        if (ahead === needed) throw err;
        await this.reserve(repository, holder, needed);
        reserved = needed;
      }
    };
    async function* metered(this: void): AsyncGenerator<Buffer> {
      let seen = offset;
      // Stopping early (the store refused) must not destroy the request: its socket still carries the answer.
      for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > reserved) await more(seen);
        yield chunk;
      }
    }
    return Readable.from(metered(), { objectMode: false });
  }

  async report(): Promise<UsageReport> {
    const repositories = await this.db.repositoryUsage();
    const namespaces: NamespaceUsage[] = [];
    for (const ns of new Set(repositories.map((r) => namespaceOf(r.repository)))) {
      namespaces.push({ namespace: ns, bytes: await this.namespaceBytes(ns), limit: this.quotaFor(ns)?.limit });
    }
    return { repositories, namespaces, totalBytes: await this.db.totalBytes() };
  }
}
