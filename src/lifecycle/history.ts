/**
 * Tag history and rollback. The metadata store writes a tag_history row in
 * the same transaction as every tag change; this module reads it as a list
 * of *versions* (the digests a tag pointed at, newest first), decides which
 * are kept (history.keep, history.maxAge), and moves a tag back to an
 * earlier version as one recorded change (`rollback`), re-uploading nothing.
 */
import type { RepositoryName, Tag } from '../oci/reference.js';
import type { TagAction } from '../store/meta/meta-store.js';
import { LifecycleError } from './errors.js';
import type { LifecycleDb } from './schema.js';

export interface HistoryPolicy {
  /** Distinct versions kept per existing tag, the current one included. */
  keep: number;
  /** Seconds: versions current within this long are kept too (0 = off). */
  maxAge: number;
}

export interface HistoryEntry {
  id: number;
  action: TagAction;
  oldDigest: string | undefined;
  newDigest: string | undefined;
  actor: string;
  at: Date;
}

export interface TagVersion {
  digest: string;
  /** When the tag started pointing here. */
  since: Date;
  /** When it stopped (undefined: it still does). */
  until: Date | undefined;
  /** Whether GC keeps this version's manifest (and what it references). */
  kept: boolean;
}

interface Row {
  action: TagAction;
  new_digest: string | null;
  at: number;
}

/**
 * The versions of one tag from its history rows (newest first), with
 * consecutive repeats merged. Only an existing tag keeps versions: deleting
 * a tag (by hand or by retention) releases its storage.
 */
export function tagVersions(rows: Row[], tagExists: boolean, policy: HistoryPolicy, now: number): TagVersion[] {
  const versions: TagVersion[] = [];
  let until: number | undefined;
  for (const row of rows) {
    if (row.action === 'delete' || row.new_digest === null) {
      until = Number(row.at);
      continue;
    }
    const last = versions[versions.length - 1];
    if (last && last.digest === row.new_digest) {
      last.since = new Date(Number(row.at));
    } else {
      versions.push({ digest: row.new_digest, since: new Date(Number(row.at)), until: until === undefined ? undefined : new Date(until), kept: false });
    }
    until = Number(row.at);
  }
  if (!tagExists) return versions;
  const distinct = new Set<string>();
  const keptDigests = new Set<string>();
  for (const v of versions) {
    if (distinct.size < policy.keep || distinct.has(v.digest)) {
      distinct.add(v.digest);
      keptDigests.add(v.digest);
    }
    if (policy.maxAge > 0 && (v.until === undefined || v.until.getTime() >= now - policy.maxAge * 1000)) keptDigests.add(v.digest);
  }
  for (const v of versions) v.kept = keptDigests.has(v.digest);
  return versions;
}

export type RollbackTarget = { to: string } | { steps: number };

export interface RollbackResult {
  repository: string;
  tag: string;
  from: string | undefined;
  to: string;
}

export class TagHistory {
  constructor(
    private readonly db: LifecycleDb,
    private readonly policy: HistoryPolicy,
  ) {}

  private async repositoryId(repository: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirst();
    return row ? Number(row.id) : undefined;
  }

  /** Every change of the tag, newest first, and its versions. Throws ERR_TAG_UNKNOWN if it never existed. */
  async history(repository: RepositoryName, tag: Tag, limit = 1000): Promise<{ current: string | undefined; changes: HistoryEntry[]; versions: TagVersion[] }> {
    const id = await this.repositoryId(repository);
    const rows = id === undefined ? [] : await this.db.selectFrom('tag_history').selectAll().where('repository_id', '=', id).where('tag', '=', tag).orderBy('id', 'desc').execute();
    if (rows.length === 0) throw new LifecycleError('ERR_TAG_UNKNOWN', `tag ${tag} has no history in repository ${repository}`);
    const current = await this.db.selectFrom('tags').select('manifest_digest').where('repository_id', '=', id!).where('name', '=', tag).executeTakeFirst();
    return {
      current: current?.manifest_digest,
      changes: rows.slice(0, limit).map((r) => ({
        id: Number(r.id),
        action: r.action,
        oldDigest: r.old_digest ?? undefined,
        newDigest: r.new_digest ?? undefined,
        actor: r.actor,
        at: new Date(Number(r.at)),
      })),
      versions: tagVersions(rows, current !== undefined, this.policy, Date.now()),
    };
  }

  /**
   * Points the tag at an earlier version: `{ steps: N }` goes N versions
   * back (1 = the previous one), `{ to }` names a digest the tag pointed at
   * before. One transaction moves the tag and records a `rollback` change.
   * The caller checks immutable-tag rules first.
   */
  async rollback(repository: RepositoryName, tag: Tag, target: RollbackTarget, actor: string): Promise<RollbackResult> {
    const id = await this.repositoryId(repository);
    if (id === undefined) throw new LifecycleError('ERR_TAG_UNKNOWN', `repository ${repository} is unknown`);
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx.selectFrom('tag_history').select(['action', 'new_digest', 'at']).where('repository_id', '=', id).where('tag', '=', tag).orderBy('id', 'desc').execute();
      if (rows.length === 0) throw new LifecycleError('ERR_TAG_UNKNOWN', `tag ${tag} has no history in repository ${repository}`);
      const current = (await tx.selectFrom('tags').select('manifest_digest').where('repository_id', '=', id).where('name', '=', tag).executeTakeFirst())?.manifest_digest;
      const versions = tagVersions(rows, current !== undefined, this.policy, Date.now());
      let to: string;
      if ('to' in target) {
        if (!versions.some((v) => v.digest === target.to)) throw new LifecycleError('ERR_VERSION_UNKNOWN', `tag ${tag} never pointed at ${target.to}`);
        to = target.to;
      } else {
        if (!Number.isSafeInteger(target.steps) || target.steps < 1) throw new LifecycleError('ERR_INVALID_REQUEST', 'steps must be a whole number of at least 1');
        const index = current === undefined ? target.steps - 1 : target.steps;
        const version = versions[index];
        if (!version) throw new LifecycleError('ERR_VERSION_UNKNOWN', `tag ${tag} has only ${versions.length} version(s); cannot go back ${target.steps}`);
        to = version.digest;
      }
      if (to === current) throw new LifecycleError('ERR_VERSION_UNKNOWN', `tag ${tag} already points at ${to}`);
      const stored = await tx.selectFrom('manifests').select('digest').where('repository_id', '=', id).where('digest', '=', to).executeTakeFirst();
      if (!stored) throw new LifecycleError('ERR_VERSION_UNKNOWN', `version ${to} of tag ${tag} is no longer stored (beyond history.keep, and collected)`);
      const now = Date.now();
      if (current === undefined) {
        await tx.insertInto('tags').values({ repository_id: id, name: tag, manifest_digest: to, updated_at: now }).execute();
      } else {
        await tx.updateTable('tags').set({ manifest_digest: to, updated_at: now }).where('repository_id', '=', id).where('name', '=', tag).execute();
      }
      await tx
        .insertInto('tag_history')
        .values({ repository_id: id, tag, action: 'rollback', old_digest: current ?? null, new_digest: to, actor, at: now })
        .execute();
      return { repository, tag, from: current, to };
    });
  }
}
