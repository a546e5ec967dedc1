/**
 * Retention: deletes the tags no rule keeps (src/lifecycle/rules.ts
 * RetentionRule), on a schedule or with `pier retention --apply`. The first
 * rule whose repository pattern matches applies; tags an immutable-tag rule
 * protects are never deleted. Each deletion is a `delete` row in the tag's
 * history with actor `retention`, and is conditional: a tag pushed again
 * since it was evaluated is left alone. The storage is freed by the next GC.
 */
import type { Logger } from 'pino';
import { immutableRule, type ImmutableTagRule, type RetentionRule } from './rules.js';
import type { LifecycleDb } from './schema.js';

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
    private readonly db: LifecycleDb,
    private readonly rules: RetentionRule[],
    private readonly immutable: ImmutableTagRule[],
    private readonly log: Logger,
  ) {}

  async run(options: { dryRun: boolean; now?: number }): Promise<RetentionReport> {
    const now = options.now ?? Date.now();
    const report: RetentionReport = { dryRun: options.dryRun, deleted: [], kept: 0 };
    if (this.rules.length === 0) return report;
    const repositories = await this.db.selectFrom('repositories').select(['id', 'name']).orderBy('name').execute();
    for (const repo of repositories) {
      const rule = this.rules.find((r) => r.repository.matches(repo.name));
      if (!rule) continue;
      const id = Number(repo.id);
      const tags = await this.db
        .selectFrom('tags as t')
        .leftJoin('tag_pulls as p', (j) => j.onRef('p.repository_id', '=', 't.repository_id').onRef('p.tag', '=', 't.name'))
        .select(['t.name', 't.manifest_digest', 't.updated_at', 'p.pulled_at'])
        .where('t.repository_id', '=', id)
        .orderBy('t.updated_at', 'desc')
        .orderBy('t.name')
        .execute();
      const doomed = tags.filter((t, index) => !keeps(rule, this.immutable, repo.name, t.name, index, Number(t.updated_at), t.pulled_at === null ? undefined : Number(t.pulled_at), now));
      report.kept += tags.length - doomed.length;
      for (const t of doomed) {
        const decision: RetentionDecision = {
          repository: repo.name,
          tag: t.name,
          digest: t.manifest_digest,
          pushedAt: new Date(Number(t.updated_at)).toISOString(),
          pulledAt: t.pulled_at === null ? undefined : new Date(Number(t.pulled_at)).toISOString(),
        };
        if (options.dryRun || (await this.deleteIfUnchanged(id, t.name, t.manifest_digest, Number(t.updated_at)))) report.deleted.push(decision);
      }
    }
    if (!options.dryRun && report.deleted.length > 0) this.log.info({ deleted: report.deleted.length, kept: report.kept }, 'retention deleted tags');
    return report;
  }

  private async deleteIfUnchanged(repositoryId: number, tag: string, digest: string, updatedAt: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const result = await tx
        .deleteFrom('tags')
        .where('repository_id', '=', repositoryId)
        .where('name', '=', tag)
        .where('manifest_digest', '=', digest)
        .where('updated_at', '=', updatedAt)
        .executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      await tx
        .insertInto('tag_history')
        .values({ repository_id: repositoryId, tag, action: 'delete', old_digest: digest, new_digest: null, actor: RETENTION_ACTOR, at: Date.now() })
        .execute();
      return true;
    });
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
