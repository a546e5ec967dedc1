/**
 * Online garbage collection: runs while pushes and pulls continue
 * (docs/decisions/0021-online-gc.md).
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
 * commit holds a claim (the coordinator's BlobClaims), so GC never deletes
 * a digest while a push is making it visible.
 */
import type { Logger } from 'pino';
import { Digest } from '../oci/digest.js';
import type { BlobDeleter, BlobLister } from '../store/blob/blob-store.js';
import type { GcQueries } from '../store/meta/lifecycle-store.js';
import type { BlobClaims } from '../store/coordinator/coordinator.js';
import { tagVersions, type HistoryPolicy } from './history.js';

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
    private readonly db: GcQueries,
    private readonly blobs: BlobLister & BlobDeleter,
    private readonly fence: BlobClaims,
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
    const watermark = await this.db.historyWatermark();
    const kept = await this.markManifests(started);
    const manifests = await this.db.manifests();
    report.manifests.scanned = manifests.length;
    report.manifests.kept = kept.size;
    const candidates = new Map<number, string[]>();
    for (const m of manifests) {
      const id = m.repositoryId;
      if (kept.has(key(id, m.digest)) || m.createdAt >= cutoff) continue;
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
      for (const [repositoryId, deleted] of dryRun ? group : await this.db.deleteUnreachableManifests(group, watermark, cutoff)) {
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
    for (const r of await this.db.blobReferences()) {
      if (!deletedManifests.has(key(r.repositoryId, r.parent))) referenced.add(key(r.repositoryId, r.child));
    }
    const links = await this.db.links();
    const doomedLinks = links.filter((l) => l.createdAt < cutoff && !referenced.has(key(l.repositoryId, l.digest)));
    referenced.clear();
    if (dryRun) report.links.deleted = doomedLinks.length;
    else for (const batch of chunks(doomedLinks, BATCH)) report.links.deleted += await this.deleteLinks(batch, cutoff);

    phase('links');

    // ---- sweep 3: blob files nothing links
    let linked = new Set<string>();
    if (dryRun) {
      const doomed = new Set(doomedLinks.map((l) => key(l.repositoryId, l.digest)));
      for (const l of links) if (!doomed.has(key(l.repositoryId, l.digest))) linked.add(l.digest);
    } else {
      linked = await this.db.linkedDigests();
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

    report.uploadsInProgress = await this.db.uploadsInProgress();
    report.durationMs = Date.now() - started;
    this.log.info({ gc: report }, dryRun ? 'garbage collection (dry run)' : 'garbage collection');
    return report;
  }

  /** Every manifest reachable from a tag or a kept version, as `repositoryId digest` keys. */
  private async markManifests(now: number): Promise<Set<string>> {
    const kept = new Set<string>();
    const existing = new Set<string>();
    for (const t of await this.db.tags()) {
      kept.add(key(t.repositoryId, t.digest));
      existing.add(`${t.repositoryId} ${t.name}`);
    }
    const history = await this.db.tagHistoryRows();
    for (let i = 0; i < history.length; ) {
      const first = history[i]!;
      let j = i;
      while (j < history.length && history[j]!.repositoryId === first.repositoryId && history[j]!.tag === first.tag) j++;
      const id = first.repositoryId;
      if (existing.has(`${id} ${first.tag}`)) {
        for (const v of tagVersions(history.slice(i, j).map((h) => ({ action: h.action, new_digest: h.newDigest, at: h.at })), true, this.options.history, now)) if (v.kept) kept.add(key(id, v.digest));
      }
      i = j;
    }
    // Children of kept indexes and referrers of kept manifests, transitively.
    const children = new Map<string, string[]>();
    for (const r of [...(await this.db.indexChildren()), ...(await this.db.referrers())]) {
      const k = key(r.repositoryId, r.parent);
      const list = children.get(k) ?? [];
      list.push(key(r.repositoryId, r.child));
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

  /** Deletes links that are still old and unreferenced, for digests no push holds. */
  private async deleteLinks(links: { repositoryId: number; digest: string }[], cutoff: number): Promise<number> {
    const { fenced, lift } = await this.fence.fence(new Set(links.map((l) => l.digest)));
    try {
      const allowed = new Set(fenced);
      return await this.db.deleteUnreferencedLinks(
        links.filter((l) => allowed.has(l.digest)),
        cutoff,
      );
    } finally {
      await lift();
    }
  }

  /** Deletes blob files that nothing links, that no push holds, and that were written before the grace period. */
  private async deleteBlobs(digests: string[], cutoff: number, dryRun: boolean, report: GcReport): Promise<void> {
    const { fenced, lift } = dryRun ? { fenced: digests, lift: async () => undefined } : await this.fence.fence(digests);
    try {
      report.blobs.skippedInUse += digests.length - fenced.length;
      const stillLinked = dryRun || fenced.length === 0 ? new Set<string>() : await this.db.linkedDigests(fenced);
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
      await lift();
    }
  }
}
