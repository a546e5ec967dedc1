/**
 * GC at scale: `node dist/bench/gc/gc-scale.js [--blobs 100000] [--manifests 10000] [--keep 5]`
 *
 * Builds a registry with `--blobs` blob files and `--manifests` manifests
 * written straight through the stores (1,000 repositories; each manifest
 * references blobs/manifests unique blobs; every repository's tag `latest`
 * moved through its manifests in turn, so history.keep decides how many
 * survive), then runs online GC in a fresh child process and reports its
 * wall time and peak memory (VmHWM, the process's peak RSS, and the peak
 * JS heap), then a second GC with nothing left to free. Checks that GC
 * freed exactly the unkept versions.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { InProcessCoordinator } from '../../src/store/coordinator/in-process.js';
import { GarbageCollector, type GcReport } from '../../src/lifecycle/gc.js';
import { SqlLifecycleStore } from '../../src/store/meta/sql/sql-lifecycle-store.js';
import { FsBlobStore } from '../../src/store/blob/fs/fs-blob-store.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';

const REPOSITORIES = 1000;
const ROWS_PER_INSERT = 400;

const { values } = parseArgs({
  options: {
    blobs: { type: 'string', default: '100000' },
    manifests: { type: 'string', default: '10000' },
    keep: { type: 'string', default: '5' },
    collect: { type: 'string' },
    keepData: { type: 'boolean', default: false },
    /** Only build the data set (kept), for profiling `--collect DIR` by hand. */
    generateOnly: { type: 'boolean', default: false },
  },
});

function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function generate(dir: string, blobCount: number, manifestCount: number): Promise<{ ms: number }> {
  const started = Date.now();
  const blobRoot = path.join(dir, 'blobs', 'blobs', 'sha256');
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  const perManifest = Math.max(1, Math.floor(blobCount / manifestCount));
  const perRepository = Math.max(1, Math.floor(manifestCount / REPOSITORIES));
  const old = Date.now() - 86_400_000;
  let blobIndex = 0;
  const pending: Promise<void>[] = [];
  const made = new Set<string>();
  await db.transaction().execute(async (tx) => {
    for (let r = 0; r < REPOSITORIES; r++) {
      const repositoryId = Number((await tx.insertInto('repositories').values({ name: `bench/repo-${r}`, created_at: old }).returning('id').executeTakeFirstOrThrow()).id);
      const links: { repository_id: number; digest: string; size: number; created_at: number }[] = [];
      const refs: { repository_id: number; manifest_digest: string; child_digest: string; kind: 'blob' }[] = [];
      for (let m = 0; m < perRepository; m++) {
        const digests: string[] = [];
        for (let b = 0; b < perManifest; b++, blobIndex++) {
          const data = Buffer.concat([randomBytes(24), Buffer.from(String(blobIndex))]);
          const hex = sha(data);
          digests.push(`sha256:${hex}`);
          const prefix = hex.slice(0, 2);
          if (!made.has(prefix)) {
            mkdirSync(path.join(blobRoot, prefix), { recursive: true });
            made.add(prefix);
          }
          pending.push(writeFile(path.join(blobRoot, prefix, hex), data));
          if (pending.length >= 256) await Promise.all(pending.splice(0));
          links.push({ repository_id: repositoryId, digest: `sha256:${hex}`, size: data.length, created_at: old });
        }
        const content = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digests[0], size: 25 },
            layers: digests.slice(1).map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: 25 })),
          }),
        );
        const digest = `sha256:${sha(content)}`;
        await tx
          .insertInto('manifests')
          .values({ repository_id: repositoryId, digest, media_type: 'application/vnd.oci.image.manifest.v1+json', size: content.length, content, artifact_type: null, subject_digest: null, annotations: null, created_at: old + m })
          .execute();
        for (const d of digests) refs.push({ repository_id: repositoryId, manifest_digest: digest, child_digest: d, kind: 'blob' });
        // The tag moves to each manifest in turn.
        const at = old + m * 1000;
        const previous = await tx.selectFrom('tags').select('manifest_digest').where('repository_id', '=', repositoryId).where('name', '=', 'latest').executeTakeFirst();
        if (previous) await tx.updateTable('tags').set({ manifest_digest: digest, updated_at: at }).where('repository_id', '=', repositoryId).where('name', '=', 'latest').execute();
        else await tx.insertInto('tags').values({ repository_id: repositoryId, name: 'latest', manifest_digest: digest, updated_at: at }).execute();
        await tx
          .insertInto('tag_history')
          .values({ repository_id: repositoryId, tag: 'latest', action: previous ? 'move' : 'create', old_digest: previous?.manifest_digest ?? null, new_digest: digest, actor: 'bench', at })
          .execute();
      }
      for (let i = 0; i < links.length; i += ROWS_PER_INSERT) await tx.insertInto('repository_blobs').values(links.slice(i, i + ROWS_PER_INSERT)).execute();
      for (let i = 0; i < refs.length; i += ROWS_PER_INSERT) await tx.insertInto('manifest_references').values(refs.slice(i, i + ROWS_PER_INSERT)).execute();
    }
  });
  await Promise.all(pending);
  // Blob files as old as their links, so the grace period does not hold them.
  execFileSync('find', [blobRoot, '-type', 'f', '-exec', 'touch', '-d', '2 days ago', '{}', '+']);
  await db.destroy();
  return { ms: Date.now() - started };
}

interface Measured {
  report: GcReport;
  wallMs: number;
  peakRssMb: number;
  peakHeapMb: number;
  startRssMb: number;
}

/** Child: opens the stores, runs one GC, prints what it measured. */
async function collect(dir: string, keep: number): Promise<void> {
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  const blobs = await FsBlobStore.open(path.join(dir, 'blobs'));
  const gc = new GarbageCollector(new SqlLifecycleStore(db), blobs, new InProcessCoordinator(), { gracePeriod: 3600, history: { keep, maxAge: 0 } }, pino({ level: 'silent' }));
  global.gc?.();
  const startRssMb = process.memoryUsage().rss / 2 ** 20;
  let peakHeap = 0;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 5);
  const t0 = performance.now();
  const report = await gc.run();
  const wallMs = performance.now() - t0;
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  await db.destroy();
  const out: Measured = { report, wallMs, peakRssMb: vmHwmMb(), peakHeapMb: peakHeap / 2 ** 20, startRssMb };
  process.stdout.write(JSON.stringify(out));
}

async function mainBench(): Promise<void> {
  const blobCount = Number(values.blobs);
  const manifestCount = Number(values.manifests);
  const keep = Number(values.keep);
  const dir = mkdtempSync(path.join(tmpdir(), 'pier-gc-bench-'));
  try {
    process.stderr.write(`gc-scale: generating ${blobCount} blobs, ${manifestCount} manifests in ${REPOSITORIES} repositories...\n`);
    const gen = await generate(dir, blobCount, manifestCount);
    process.stderr.write(`gc-scale: generated in ${(gen.ms / 1000).toFixed(1)} s; collecting (history.keep ${keep})...\n`);
    if (values.generateOnly) {
      process.stderr.write(`gc-scale: data in ${dir}\n`);
      return;
    }
    const self = fileURLToPath(import.meta.url);
    const run = () => JSON.parse(execFileSync(process.execPath, ['--expose-gc', self, '--collect', dir, '--keep', String(keep)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 })) as Measured;
    const first = run();
    const second = run();
    const perRepository = Math.floor(manifestCount / REPOSITORIES);
    const perManifest = Math.floor(blobCount / manifestCount);
    const expectedManifests = REPOSITORIES * Math.max(0, perRepository - keep);
    const ok = first.report.manifests.deleted === expectedManifests && first.report.blobs.deleted === expectedManifests * perManifest && second.report.blobs.deleted === 0;
    const result = {
      at: new Date().toISOString(),
      node: process.version,
      blobs: first.report.blobs.scanned,
      manifests: first.report.manifests.scanned,
      repositories: REPOSITORIES,
      historyKeep: keep,
      gc: { seconds: first.wallMs / 1000, peakRssMb: first.peakRssMb, rssBeforeMb: first.startRssMb, peakHeapMb: first.peakHeapMb, freedBlobs: first.report.blobs.deleted, freedManifests: first.report.manifests.deleted, freedLinks: first.report.links.deleted, phasesMs: first.report.phases },
      gcNothingToFree: { seconds: second.wallMs / 1000, peakRssMb: second.peakRssMb, peakHeapMb: second.peakHeapMb, blobs: second.report.blobs.scanned },
      correct: ok,
    };
    const lines = [
      `GC of ${result.blobs} blobs / ${result.manifests} manifests (${REPOSITORIES} repositories, history.keep ${keep}):`,
      `  freeing ${result.gc.freedBlobs} blobs + ${result.gc.freedManifests} manifests: ${result.gc.seconds.toFixed(2)} s, peak RSS ${result.gc.peakRssMb.toFixed(0)} MB (${result.gc.rssBeforeMb.toFixed(0)} MB before), peak JS heap ${result.gc.peakHeapMb.toFixed(0)} MB`,
      `    phases (ms): ${JSON.stringify(first.report.phases)}`,
      `  again, nothing to free (${result.gcNothingToFree.blobs} blobs): ${result.gcNothingToFree.seconds.toFixed(2)} s, peak RSS ${result.gcNothingToFree.peakRssMb.toFixed(0)} MB, peak JS heap ${result.gcNothingToFree.peakHeapMb.toFixed(0)} MB`,
      `  freed exactly the unkept versions: ${ok ? 'yes' : 'NO'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const resultsDir = path.resolve(path.dirname(self), '../../../bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, `gc-${result.at.replace(/[:.]/g, '-')}.json`), `${JSON.stringify(result, null, 2)}\n`);
    if (!ok) process.exitCode = 1;
  } finally {
    if (!values.keepData && !values.generateOnly) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`gc-scale: data kept in ${dir}\n`);
  }
}

if (values.collect) await collect(values.collect, Number(values.keep));
else await mainBench();
