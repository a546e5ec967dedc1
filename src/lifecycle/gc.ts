/**
 * Online garbage collection: runs while pushes and pulls continue
 * (docs/decisions/0020-online-gc.md).
 *
 * Mark (reads only, no locks): the roots are every tag, every kept
 * version in a tag's history (history.keep / history.maxAge); from them,
 * every child of a kept index and every referrer of a kept manifest.
 *
 * Sweep, in three steps, each re-checking inside a transaction what the
 * mark saw, so whatever changed since is honoured:
 *  1. untagged manifests outside the kept set and older than the grace
 *     period (re-check: no tag points at one now, no history row newer
 *     than the mark moved a tag to one, no surviving index lists one, no
 *     surviving manifest is its subject);
 *  2. repository links to blobs no surviving manifest of that repository
 *     references, older than the grace period (the DELETE's own WHERE
 *     re-checks both), under the blob fence;
 *  3. blob files no repository links any more, under the blob fence,
 *     last written before the grace period.
 * Uploads in progress keep their bytes under the blob store's uploads/,
 * which GC never touches (the upload janitor expires idle ones); their
 * commit holds a claim on the fence, so GC never deletes a digest while a
 * push is making it visible.
 */
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { Digest } from '../oci/digest.js';
import type { BlobDeleter, BlobLister } from '../store/blob/blob-store.js';
import type { BlobFence } from './fence.js';
import { tagVersions, type HistoryPolicy } from './history.js';
import type { LifecycleDatabase, LifecycleDb } from './schema.js';

export interface GcOptions {
  /** Seconds. */
  gracePeriod: number;
  history: HistoryPolicy;
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  manifests: { scanned: number; kept: number; deleted: number };
  links: { deleted: number };
  blobs: { scanned: number; deleted: number; bytesFreed: number; skippedRecent: number; skippedInUse: number };
  /** Upload sessions in progress (their bytes are never collected by GC). */
  uploadsInProgress: number;
  /** Milliseconds spent in each phase. */
  phases: { mark: number; manifests: number; links: number; blobs: number };
}

const BATCH = 500;
const DELETE_CONCURRENCY = 64;

const key = (repositoryId: number, digest: string) => `${repositoryId} ${digest}`;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class GarbageCollector {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: LifecycleDb,
    private readonly blobs: BlobLister & BlobDeleter,
    private readonly fence: BlobFence,
    private readonly options: GcOptions,
    private readonly log: Logger,
  ) {}

  /** Runs one collection; concurrent calls run one after another. */
  run(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const next = this.queue.then(() => this.collect(options.dryRun ?? false));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async collect(dryRun: boolean): Promise<GcReport> {
    const started = Date.now();
    const cutoff = started - this.options.gracePeriod * 1000;
    const report: GcReport = {
      dryRun,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      manifests: { scanned: 0, kept: 0, deleted: 0 },
      links: { deleted: 0 },
      blobs: { scanned: 0, deleted: 0, bytesFreed: 0, skippedRecent: 0, skippedInUse: 0 },
      uploadsInProgress: 0,
      phases: { mark: 0, manifests: 0, links: 0, blobs: 0 },
    };
    let phaseStart = started;
    const phase = (name: keyof GcReport['phases']) => {
      const now = Date.now();
      report.phases[name] = now - phaseStart;
      phaseStart = now;
    };

    // ---- mark
    const watermark = Number((await this.db.selectFrom('tag_history').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst())?.m ?? 0);
    const kept = await this.markManifests(started);
    const manifests = await this.db.selectFrom('manifests').select(['repository_id', 'digest', 'created_at']).execute();
    report.manifests.scanned = manifests.length;
    report.manifests.kept = kept.size;
    const candidates = new Map<number, string[]>();
    for (const m of manifests) {
      const id = Number(m.repository_id);
      if (kept.has(key(id, m.digest)) || Number(m.created_at) >= cutoff) continue;
      let list = candidates.get(id);
      if (!list) candidates.set(id, (list = []));
      list.push(m.digest);
    }

    phase('mark');

    // ---- sweep 1: manifests
    const deletedManifests = new Set<string>();
    // Several repositories per transaction, about BATCH candidates each: short transactions, few commits.
    let group: [number, string[]][] = [];
    let groupSize = 0;
    const flush = async () => {
      for (const [repositoryId, deleted] of dryRun ? group : await this.deleteManifests(group, watermark, cutoff)) {
        for (const d of deleted) deletedManifests.add(key(repositoryId, d));
      }
      group = [];
      groupSize = 0;
    };
    for (const [repositoryId, digests] of candidates) {
      group.push([repositoryId, digests]);
      groupSize += digests.length;
      if (groupSize >= BATCH) await flush();
    }
    await flush();
    report.manifests.deleted = deletedManifests.size;
    phase('manifests');

    // ---- sweep 2: repository links no surviving manifest references
    const referenced = new Set<string>();
    for (const r of await this.db.selectFrom('manifest_references').select(['repository_id', 'manifest_digest', 'child_digest']).where('kind', '=', 'blob').execute()) {
      const id = Number(r.repository_id);
      if (!deletedManifests.has(key(id, r.manifest_digest))) referenced.add(key(id, r.child_digest));
    }
    const links = await this.db.selectFrom('repository_blobs').select(['repository_id', 'digest', 'created_at']).execute();
    const doomedLinks = links.filter((l) => Number(l.created_at) < cutoff && !referenced.has(key(Number(l.repository_id), l.digest)));
    referenced.clear();
    if (dryRun) report.links.deleted = doomedLinks.length;
    else for (const batch of chunks(doomedLinks, BATCH)) report.links.deleted += await this.deleteLinks(batch, cutoff);

    phase('links');

    // ---- sweep 3: blob files nothing links
    const linked = new Set<string>();
    if (dryRun) {
      const doomed = new Set(doomedLinks.map((l) => key(Number(l.repository_id), l.digest)));
      for (const l of links) if (!doomed.has(key(Number(l.repository_id), l.digest))) linked.add(l.digest);
    } else {
      for (const l of await this.db.selectFrom('repository_blobs').select('digest').distinct().execute()) linked.add(l.digest);
    }
    const orphans: string[] = [];
    for await (const digest of this.blobs.list()) {
      report.blobs.scanned++;
      const d = digest.toString();
      if (!linked.has(d)) orphans.push(d);
    }
    linked.clear();
    for (const batch of chunks(orphans, BATCH)) await this.deleteBlobs(batch, cutoff, dryRun, report);
    phase('blobs');

    report.uploadsInProgress = Number((await this.db.selectFrom('uploads').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())?.n ?? 0);
    report.durationMs = Date.now() - started;
    this.log.info({ gc: report }, dryRun ? 'garbage collection (dry run)' : 'garbage collection');
    return report;
  }

  /** Every manifest reachable from a tag or a kept version, as `repositoryId digest` keys. */
  private async markManifests(now: number): Promise<Set<string>> {
    const kept = new Set<string>();
    const existing = new Set<string>();
    for (const t of await this.db.selectFrom('tags').select(['repository_id', 'name', 'manifest_digest']).execute()) {
      kept.add(key(Number(t.repository_id), t.manifest_digest));
      existing.add(`${Number(t.repository_id)} ${t.name}`);
    }
    const history = await this.db
      .selectFrom('tag_history')
      .select(['repository_id', 'tag', 'action', 'new_digest', 'at'])
      .orderBy('repository_id')
      .orderBy('tag')
      .orderBy('id', 'desc')
      .execute();
    for (let i = 0; i < history.length; ) {
      const first = history[i]!;
      let j = i;
      while (j < history.length && history[j]!.repository_id === first.repository_id && history[j]!.tag === first.tag) j++;
      const id = Number(first.repository_id);
      if (existing.has(`${id} ${first.tag}`)) {
        for (const v of tagVersions(history.slice(i, j), true, this.options.history, now)) if (v.kept) kept.add(key(id, v.digest));
      }
      i = j;
    }
    // Children of kept indexes and referrers of kept manifests, transitively.
    const children = new Map<string, string[]>();
    for (const r of await this.db.selectFrom('manifest_references').select(['repository_id', 'manifest_digest', 'child_digest']).where('kind', '=', 'manifest').execute()) {
      const k = key(Number(r.repository_id), r.manifest_digest);
      const list = children.get(k) ?? [];
      list.push(key(Number(r.repository_id), r.child_digest));
      children.set(k, list);
    }
    for (const m of await this.db.selectFrom('manifests').select(['repository_id', 'digest', 'subject_digest']).where('subject_digest', 'is not', null).execute()) {
      const k = key(Number(m.repository_id), m.subject_digest!);
      const list = children.get(k) ?? [];
      list.push(key(Number(m.repository_id), m.digest));
      children.set(k, list);
    }
    const stack = [...kept];
    while (stack.length > 0) {
      for (const child of children.get(stack.pop()!) ?? []) {
        if (!kept.has(child)) {
          kept.add(child);
          stack.push(child);
        }
      }
    }
    return kept;
  }

  /** Deletes the candidates still unreachable, in one transaction; returns those deleted per repository. */
  private async deleteManifests(groups: [number, string[]][], watermark: number, cutoff: number): Promise<[number, string[]][]> {
    if (groups.length === 0) return [];
    return this.db.transaction().execute(async (tx) => {
      const out: [number, string[]][] = [];
      for (const [repositoryId, digests] of groups) out.push([repositoryId, await this.deleteManifestsIn(tx, repositoryId, digests, watermark, cutoff)]);
      return out;
    });
  }

  private async deleteManifestsIn(tx: Transaction<LifecycleDatabase>, repositoryId: number, digests: string[], watermark: number, cutoff: number): Promise<string[]> {
    const doomed = new Set(digests);
    const initial = new Set(digests);
    const refs: [string, string][] = [];
    const subjects: [string, string][] = [];
    for (const chunk of chunks(digests, BATCH)) {
      for (const r of await tx.selectFrom('tags').select('manifest_digest').where('repository_id', '=', repositoryId).where('manifest_digest', 'in', chunk).execute()) doomed.delete(r.manifest_digest);
      for (const r of await tx.selectFrom('tag_history').select('new_digest').where('repository_id', '=', repositoryId).where('id', '>', watermark).where('new_digest', 'in', chunk).execute()) {
        if (r.new_digest) doomed.delete(r.new_digest);
      }
      for (const r of await tx.selectFrom('manifests').select(['digest', 'created_at', 'subject_digest']).where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute()) {
        if (Number(r.created_at) >= cutoff) doomed.delete(r.digest);
        if (r.subject_digest) subjects.push([r.digest, r.subject_digest]);
      }
      for (const r of await tx
        .selectFrom('manifest_references')
        .select(['manifest_digest', 'child_digest'])
        .where('repository_id', '=', repositoryId)
        .where('kind', '=', 'manifest')
        .where('child_digest', 'in', chunk)
        .execute()) {
        refs.push([r.manifest_digest, r.child_digest]);
      }
    }
    const outsideSubjects = [...new Set(subjects.map(([, s]) => s).filter((s) => !initial.has(s)))];
    const existingSubjects = new Set<string>();
    for (const chunk of chunks(outsideSubjects, BATCH)) {
      for (const r of await tx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute()) existingSubjects.add(r.digest);
    }
    // A candidate listed by a surviving index, or referring to a surviving subject, survives too.
    for (let changed = true; changed; ) {
      changed = false;
      for (const [parent, child] of refs) {
        if (doomed.has(child) && !doomed.has(parent)) changed = doomed.delete(child) || changed;
      }
      for (const [referrer, subject] of subjects) {
        if (doomed.has(referrer) && !doomed.has(subject) && (initial.has(subject) || existingSubjects.has(subject))) changed = doomed.delete(referrer) || changed;
      }
    }
    const list = [...doomed];
    for (const chunk of chunks(list, BATCH)) {
      await tx.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute();
      await tx.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', 'in', chunk).execute();
    }
    return list;
  }

  /** Deletes links that are still old and unreferenced, for digests no push holds. */
  private async deleteLinks(links: { repository_id: number; digest: string }[], cutoff: number): Promise<number> {
    const { fenced, lift } = this.fence.fence(new Set(links.map((l) => l.digest)));
    try {
      const allowed = new Set(fenced);
      const pairs = links.filter((l) => allowed.has(l.digest)).map((l) => sql`(${Number(l.repository_id)}, ${l.digest})`);
      if (pairs.length === 0) return 0;
      // One statement; its WHERE re-checks age and references at delete time.
      const result = await this.db
        .deleteFrom('repository_blobs as b')
        .where(sql<boolean>`(b.repository_id, b.digest) in (values ${sql.join(pairs)})`)
        .where('b.created_at', '<', cutoff)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('manifest_references as r')
                .select('r.child_digest')
                .whereRef('r.repository_id', '=', 'b.repository_id')
                .whereRef('r.child_digest', '=', 'b.digest'),
            ),
          ),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    } finally {
      lift();
    }
  }

  /** Deletes blob files that nothing links, that no push holds, and that were written before the grace period. */
  private async deleteBlobs(digests: string[], cutoff: number, dryRun: boolean, report: GcReport): Promise<void> {
    const { fenced, lift } = dryRun ? { fenced: digests, lift: () => undefined } : this.fence.fence(digests);
    try {
      report.blobs.skippedInUse += digests.length - fenced.length;
      const stillLinked = new Set(
        dryRun || fenced.length === 0 ? [] : (await this.db.selectFrom('repository_blobs').select('digest').where('digest', 'in', fenced).execute()).map((r) => r.digest),
      );
      report.blobs.skippedInUse += stillLinked.size;
      const todo = fenced.filter((d) => !stillLinked.has(d));
      for (const group of chunks(todo, DELETE_CONCURRENCY)) {
        await Promise.all(
          group.map(async (d) => {
            const digest = Digest.parse(d);
            const info = await this.blobs.statWithTime(digest);
            if (!info) return;
            if (info.modifiedAt.getTime() >= cutoff) {
              report.blobs.skippedRecent++;
              return;
            }
            if (!dryRun) await this.blobs.delete(digest);
            report.blobs.deleted++;
            report.blobs.bytesFreed += info.size;
          }),
        );
      }
    } finally {
      lift();
    }
  }
}
