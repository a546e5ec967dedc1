/**
 * Tag history and rollback. The metadata store writes a tag_history row in
 * the same transaction as every tag change (MetaStore.moveTag); this module
 * reads it as a list of *versions* (the digests a tag pointed at, newest
 * first), decides which are kept (history.keep, history.maxAge), and plans
 * a move back to an earlier version (`rollback`), re-uploading nothing. The
 * repository service makes the move.
 */
import type { RepositoryName, Tag } from '../oci/reference.js';
import type { ManifestStore, TagAction } from '../store/meta/meta-store.js';
import { LifecycleError } from './errors.js';

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
    private readonly meta: Pick<ManifestStore, 'tagHistory' | 'getTaggedManifest'>,
    private readonly policy: HistoryPolicy,
  ) {}

  /** Every change of the tag, newest first, and its versions. Throws ERR_TAG_UNKNOWN if it never existed. */
  async history(repository: RepositoryName, tag: Tag, limit = 1000): Promise<{ current: string | undefined; changes: HistoryEntry[]; versions: TagVersion[] }> {
    const rows = await this.meta.tagHistory(repository, tag, Number.MAX_SAFE_INTEGER);
    if (rows.length === 0) throw new LifecycleError('ERR_TAG_UNKNOWN', `tag ${tag} has no history in repository ${repository}`);
    const current = (await this.meta.getTaggedManifest(repository, tag))?.digest.toString();
    return {
      current,
      changes: rows.slice(0, limit).map((r) => ({ id: r.id, action: r.action, oldDigest: r.oldDigest, newDigest: r.newDigest, actor: r.actor, at: r.at })),
      versions: tagVersions(
        rows.map((r) => ({ action: r.action, new_digest: r.newDigest ?? null, at: r.at.getTime() })),
        current !== undefined,
        this.policy,
        Date.now(),
      ),
    };
  }

  /**
   * Where a rollback moves the tag: `{ steps: N }` goes N versions back
   * (1 = the previous one), `{ to }` names a digest the tag pointed at
   * before. Returns the tag's current digest (the move is conditional on
   * it) and the target. The caller checks immutable-tag rules first.
   */
  async planRollback(repository: RepositoryName, tag: Tag, target: RollbackTarget): Promise<{ from: string | undefined; to: string }> {
    const { current, versions } = await this.history(repository, tag);
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
    return { from: current, to };
  }
}
