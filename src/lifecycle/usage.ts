/**
 * Storage accounting and quotas. A repository uses the bytes of every blob
 * it links plus its manifests; a namespace (first path segment) uses each
 * distinct blob once, however many of its repositories link it; the total
 * counts each stored blob once.
 */
import { sql } from 'kysely';
import { LifecycleError } from './errors.js';
import { namespaceOf, type QuotaRule } from './rules.js';
import type { LifecycleDb } from './schema.js';

export interface RepositoryUsage {
  repository: string;
  bytes: number;
  blobs: number;
  manifests: number;
}

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

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export class StorageAccounting {
  constructor(
    private readonly db: LifecycleDb,
    private readonly quotas: QuotaRule[],
  ) {}

  quotaFor(namespace: string): QuotaRule | undefined {
    return this.quotas.find((q) => q.namespace.matches(namespace));
  }

  /** Bytes a namespace uses: each distinct blob once, plus manifests. */
  async namespaceBytes(namespace: string): Promise<number> {
    const inNamespace = (column: 'r.name') => sql<boolean>`(${sql.ref(column)} = ${namespace} or substr(${sql.ref(column)}, 1, ${namespace.length + 1}) = ${`${namespace}/`})`;
    const blobs = await this.db
      .selectFrom((eb) =>
        eb
          .selectFrom('repository_blobs as b')
          .innerJoin('repositories as r', 'r.id', 'b.repository_id')
          .select(['b.digest', (e) => e.fn.max('b.size').as('size')])
          .where(inNamespace('r.name'))
          .groupBy('b.digest')
          .as('d'),
      )
      .select((eb) => eb.fn.sum<number>('d.size').as('bytes'))
      .executeTakeFirst();
    const manifests = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select((eb) => eb.fn.sum<number>('m.size').as('bytes'))
      .where(inNamespace('r.name'))
      .executeTakeFirst();
    return Number(blobs?.bytes ?? 0) + Number(manifests?.bytes ?? 0);
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
    const blobRows = await this.db
      .selectFrom('repository_blobs as b')
      .innerJoin('repositories as r', 'r.id', 'b.repository_id')
      .select(['r.name', (eb) => eb.fn.sum<number>('b.size').as('bytes'), (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('r.name')
      .execute();
    const manifestRows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['r.name', (eb) => eb.fn.sum<number>('m.size').as('bytes'), (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('r.name')
      .execute();
    const byName = new Map<string, RepositoryUsage>();
    const get = (name: string) => {
      let u = byName.get(name);
      if (!u) byName.set(name, (u = { repository: name, bytes: 0, blobs: 0, manifests: 0 }));
      return u;
    };
    for (const r of blobRows) {
      const u = get(r.name);
      u.bytes += Number(r.bytes ?? 0);
      u.blobs = Number(r.n);
    }
    for (const r of manifestRows) {
      const u = get(r.name);
      u.bytes += Number(r.bytes ?? 0);
      u.manifests = Number(r.n);
    }
    const repositories = [...byName.values()].sort((a, b) => (a.repository < b.repository ? -1 : 1));
    const namespaces: NamespaceUsage[] = [];
    for (const ns of new Set(repositories.map((r) => namespaceOf(r.repository)))) {
      namespaces.push({ namespace: ns, bytes: await this.namespaceBytes(ns), limit: this.quotaFor(ns)?.limit });
    }
    const distinct = await this.db
      .selectFrom((eb) => eb.selectFrom('repository_blobs').select(['digest', (e) => e.fn.max('size').as('size')]).groupBy('digest').as('d'))
      .select((eb) => eb.fn.sum<number>('d.size').as('bytes'))
      .executeTakeFirst();
    const manifestBytes = manifestRows.reduce((s, r) => s + Number(r.bytes ?? 0), 0);
    return { repositories, namespaces, totalBytes: Number(distinct?.bytes ?? 0) + manifestBytes };
  }
}
