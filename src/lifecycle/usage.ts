/**
 * Storage accounting and quotas. A repository uses the bytes of every blob
 * it links plus its manifests; a namespace (first path segment) uses each
 * distinct blob once, however many of its repositories link it; the total
 * counts each stored blob once.
 */
import { formatBytes } from '../shared/bytes.js';
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

export class StorageAccounting {
  constructor(
    private readonly db: UsageQueries,
    private readonly quotas: QuotaRule[],
  ) {}

  quotaFor(namespace: string): QuotaRule | undefined {
    return this.quotas.find((q) => q.namespace.matches(namespace));
  }

  /** Bytes a namespace uses: each distinct blob once, plus manifests. */
  namespaceBytes(namespace: string): Promise<number> {
    return this.db.namespaceBytes(namespace);
  }

  /**
   * Refuses (ERR_QUOTA_EXCEEDED) if adding `bytes` to the namespace of
   * `repository` would pass its quota. Called where a push's size becomes
   * known: at upload start (monolithic), on each chunk, and at manifest PUT.
   * Returns how many bytes beyond `bytes` the namespace may still take
   * (undefined: no quota), so a chunk of unknown length can be capped.
   */
  async check(repository: string, bytes: number): Promise<number | undefined> {
    const namespace = namespaceOf(repository);
    const rule = this.quotaFor(namespace);
    if (!rule) return undefined;
    const used = await this.namespaceBytes(namespace);
    if (used + bytes > rule.limit) {
      throw new LifecycleError(
        'ERR_QUOTA_EXCEEDED',
        `quota exceeded: namespace ${namespace} uses ${formatBytes(used)} of its ${formatBytes(rule.limit)} quota (rule ${rule.namespace.source}); this push needs ${formatBytes(bytes)} more`,
        { namespace, used, limit: rule.limit, requested: bytes },
      );
    }
    return rule.limit - used - bytes;
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
