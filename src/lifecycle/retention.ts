/**
 * Retention: deletes the tags no rule keeps (src/lifecycle/rules.ts
 * RetentionRule), on a schedule or with `pier retention --apply`. The first
 * rule whose repository pattern matches applies; tags an immutable-tag rule
 * protects are never deleted. Each deletion is a `delete` row in the tag's
 * history with actor `retention`, and is conditional: a tag pushed again
 * since it was evaluated is left alone. The storage is freed by the next GC.
 */
import type { Logger } from 'pino';
import { parseRepositoryName, parseTag } from '../oci/reference.js';
import type { RetentionQueries } from '../store/meta/lifecycle-store.js';
import type { TagWriter } from '../store/meta/meta-store.js';
import { immutableRule, type ImmutableTagRule, type RetentionRule } from './rules.js';

export const RETENTION_ACTOR = 'retention';

export interface RetentionDecision {
  repository: string;
  tag: string;
  digest: string;
  pushedAt: string;
  pulledAt: string | undefined;
}

export interface RetentionReport {
  dryRun: boolean;
  /** Tags deleted (or that would be, in a dry run). */
  deleted: RetentionDecision[];
  kept: number;
}

export class Retention {
  constructor(
    private readonly db: RetentionQueries,
    /** The repository service's tag writer: deletions are recorded and announced like any other. */
    private readonly tags: TagWriter,
    private readonly rules: RetentionRule[],
    private readonly immutable: ImmutableTagRule[],
    private readonly log: Logger,
  ) {}

  async run(options: { dryRun: boolean; now?: number }): Promise<RetentionReport> {
    const now = options.now ?? Date.now();
    const report: RetentionReport = { dryRun: options.dryRun, deleted: [], kept: 0 };
    if (this.rules.length === 0) return report;
    for (const repository of await this.db.repositoryNames()) {
      const rule = this.rules.find((r) => r.repository.matches(repository));
      if (!rule) continue;
      const tags = await this.db.tagsByAge(repository);
      const doomed = tags.filter((t, index) => !keeps(rule, this.immutable, repository, t.name, index, t.updatedAt, t.pulledAt, now));
      report.kept += tags.length - doomed.length;
      for (const t of doomed) {
        const decision: RetentionDecision = {
          repository,
          tag: t.name,
          digest: t.digest,
          pushedAt: new Date(t.updatedAt).toISOString(),
          pulledAt: t.pulledAt === undefined ? undefined : new Date(t.pulledAt).toISOString(),
        };
        if (options.dryRun || (await this.deleteIfUnchanged(repository, t.name, t.digest, t.updatedAt))) report.deleted.push(decision);
      }
    }
    if (!options.dryRun && report.deleted.length > 0) this.log.info({ deleted: report.deleted.length, kept: report.kept }, 'retention deleted tags');
    return report;
  }

  /** Deletes the tag unless it moved since it was evaluated. */
  private async deleteIfUnchanged(repository: string, tag: string, digest: string, updatedAt: number): Promise<boolean> {
    const change = await this.tags.moveTag(parseRepositoryName(repository), parseTag(tag), { to: undefined, actor: RETENTION_ACTOR, expect: { digest, updatedAt } });
    return change !== undefined;
  }
}

/** Whether `rule` keeps a tag: `index` is its rank by push time, newest first. */
export function keeps(rule: RetentionRule, immutable: ImmutableTagRule[], repository: string, tag: string, index: number, pushedAt: number, pulledAt: number | undefined, now: number): boolean {
  if (immutableRule(immutable, repository, tag)) return true;
  if (rule.keep.some((p) => p.matches(tag))) return true;
  if (rule.keepLast === undefined && rule.keepDays === undefined) return true;
  if (rule.keepLast !== undefined && index < rule.keepLast) return true;
  if (rule.keepDays !== undefined) {
    const since = now - rule.keepDays * 86_400_000;
    if (pushedAt >= since || (pulledAt !== undefined && pulledAt >= since)) return true;
  }
  return false;
}
