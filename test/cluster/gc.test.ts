/**
 * Online GC across replicas: three `pier serve` replicas on one PostgreSQL
 * database and one S3 bucket behind haproxy round-robin (cluster.ts). GC
 * runs back to back on replica 1, called on it directly (the Pier API, and
 * `pier gc` for the last run), while pushers and pullers go through the
 * balancer, so most of their requests land on the other two replicas:
 *
 * - new versions of a tag, each with the repository's base layer (shared
 *   by every version) and a fresh layer, uploaded whole or in chunks (each
 *   chunk may land on another replica);
 * - short-lived tags, deleted again at once: their fresh layers become
 *   garbage;
 * - versions that reuse a deleted image's layer from another repository,
 *   by cross-repository mount when the source still links it, else by
 *   upload; and an upload session kept open across every GC run.
 *
 * No push or pull may fail. Afterwards every tag and every kept version
 * (history.keep = 2) pulls with every blob matching its digest, the
 * versions nothing keeps answer 404, and the bucket's blobs/ and the
 * database's manifests and repository links are exactly what the test
 * computes from the versions it kept: nothing referenced lost, nothing
 * unreferenced left.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runCommand } from '../helpers/dockerd.js';
import { assertSameSet, blobsOf, mountBlob, pullAndVerify, pushChunked, runGc } from '../helpers/gc-check.js';
import { blob, pushImage, randomTar, sha256, type TestBlob, type TestImage } from '../helpers/images.js';
import { PIER_BIN } from '../helpers/registry.js';
import { clusterSkip, startCluster, type TestCluster } from './cluster.js';
import { bucketKeys } from './services.js';

const skip = clusterSkip();
const PUSHERS = 4;
const PULLERS = 3;
const RUN_MS = 40_000;
/**
 * Longer than any push here takes from its first blob to its manifest on a loaded two-core runner (9 s seen with
 * other suites running): GC may take an unreferenced link older than this, as it should. The slowest push is reported.
 */
const GRACE_S = 20;
const KEEP = 2;
const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** An image of the given layers (uncompressed tars, so each layer's digest is its diff id) and a unique config. */
function compose(layers: TestBlob[], label: string): TestImage {
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { label } }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } })),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  return { mediaType: MANIFEST_TYPE, config, layers, diffs: [], manifest, digest: sha256(manifest) };
}

const freshLayer = async (size: number) => blob(await randomTar(size), LAYER_TYPE);

async function putManifest(base: string, repo: string, reference: string, image: TestImage): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
  if (res.status !== 201) throw new Error(`manifest ${repo}:${reference}: ${res.status} ${await res.text()}`);
}

let cluster: TestCluster | undefined;
/** Ends the test's workers (also when it fails or times out, so the process can exit). */
let stopWorkers = () => {};
before(async () => {
  if (skip) return;
  // scanning.sbom off: the test computes the exact set of blobs that must remain, and the registry's
  // own SBOM referrers (freed with their subjects; covered by test/lifecycle's gc-keeps) are not in it.
  cluster = await startCluster({ extraYaml: `history:\n  keep: ${KEEP}\ngc:\n  gracePeriod: ${GRACE_S}s\n  schedule: 0\nscanning:\n  sbom: false\n` });
});
after(async () => {
  stopWorkers();
  await cluster?.stop();
});

test('GC on one replica while pushes (shared layers, mounts, chunks) and pulls go through the balancer: nothing referenced lost, exactly the unreferenced freed', { skip, timeout: 300_000 }, async (t) => {
  const c = cluster!;
  const base = c.url;
  const gcReplica = c.replicas[0]!;
  const gcUrl = `http://${gcReplica.host}`;
  const started = Date.now();

  const versions = new Map<string, TestImage[]>(); // repo -> versions of tag "current", in push order
  const deleted: { repo: string; image: TestImage; layer: TestBlob }[] = [];
  const failures: string[] = [];
  let stop = false;
  stopWorkers = () => {
    stop = true;
  };
  let pulls = 0;
  let gcRuns = 0;
  let freed = 0;
  let mounts = 0;
  let remounts = 0;
  let chunked = 0;
  let slowest = 0;
  /** What each worker is waiting on, for a message if one never finishes. */
  const doing = new Map<string, string>();
  const gcLog: string[] = [];

  const pusher = async (i: number) => {
    const repo = `gc/app${i}`;
    const list: TestImage[] = [];
    versions.set(repo, list);
    const baseLayer = await freshLayer(4000 + i);
    const at = (what: string) => doing.set(repo, `${what} since ${Date.now() - started} ms`);
    for (let n = 0; !stop; n++) {
      try {
        const kind = n % 4;
        if (kind === 2) {
          // A short-lived tag: pushed, then deleted. Its fresh layer is garbage unless reused.
          const image = compose([baseLayer, await freshLayer(3000 + n)], `${repo} tmp ${n}`);
          at(`#${n} push tmp`);
          await pushImage(base, repo, `tmp-${n}`, image);
          at(`#${n} delete tmp`);
          const del = await fetch(`${base}/v2/${repo}/manifests/tmp-${n}`, { method: 'DELETE' });
          if (del.status !== 202) throw new Error(`delete tmp-${n}: ${del.status}`);
          deleted.push({ repo, image, layer: image.layers[1]! });
          continue;
        }
        const fresh = await freshLayer(2000 + n);
        const began = Date.now();
        // Reuse a layer of another repository's deleted image: mounted if its repository still links it, else uploaded.
        const donor = kind === 3 ? deleted.filter((d) => d.repo !== repo).at(-1 - (n % 3)) : undefined;
        const image = compose(donor ? [baseLayer, donor.layer, fresh] : [baseLayer, fresh], `${repo} v${n}`);
        // The slow parts first (chunks, a mount or re-upload), then the two small blobs, then the manifest.
        at(`#${n} fresh layer`);
        if (kind === 1) {
          await pushChunked(base, repo, fresh, 3);
          chunked++;
        } else await pushChunked(base, repo, fresh, 1);
        at(`#${n} donor layer`);
        if (donor) {
          if (await mountBlob(base, repo, donor.layer.digest, donor.repo)) mounts++;
          else {
            remounts++;
            await pushChunked(base, repo, donor.layer, 1);
          }
        }
        at(`#${n} config and base`);
        for (const b of [image.config, baseLayer]) {
          const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data });
          if (res.status !== 201) throw new Error(`upload: ${res.status} ${await res.text()}`);
        }
        at(`#${n} manifest`);
        await putManifest(base, repo, 'current', image);
        slowest = Math.max(slowest, Date.now() - began);
        list.push(image);
      } catch (err) {
        failures.push(`push ${repo} #${n} at ${Date.now() - started} ms: ${(err as Error).message}`);
      }
    }
  };
  /** For a failure message: the requests (any replica) that named a digest of the message, and the GC runs. */
  const explain = () => {
    const digests = new Set(failures.flatMap((f) => [...f.matchAll(/sha256:([0-9a-f]{64})/g)].map((m) => m[1]!)));
    const lines = c.replicas
      .flatMap((r) => r.requests().filter((q) => [...digests].some((d) => q.url.includes(d))).map((q) => ({ ...q, replica: r.name })))
      .sort((a, b) => a.at - b.at)
      .map((q) => `${q.at - started} ${q.replica} ${q.method} ${q.url} ${q.status}`);
    return `${failures.join('\n')}\nrequests:\n${lines.join('\n')}\nslowest push ${slowest} ms; gc runs (start ms, links, blobs deleted):\n${gcLog.join('\n')}`;
  };
  const puller = async (i: number) => {
    while (!stop) {
      const repos = [...versions.entries()].filter(([, v]) => v.length > 0);
      if (repos.length === 0) {
        await sleep(20);
        continue;
      }
      const [repo] = repos[Math.floor(Math.random() * repos.length)]!;
      try {
        doing.set(`puller ${i}`, `pull ${repo} since ${Date.now() - started} ms`);
        await pullAndVerify(base, repo, 'current');
        pulls++;
      } catch (err) {
        failures.push(`pull ${repo}: ${(err as Error).message}`);
      }
    }
  };
  const collector = async () => {
    while (!stop) {
      const at = Date.now() - started;
      doing.set('gc', `run since ${at} ms`);
      const r = await runGc(gcUrl);
      gcLog.push(`${at} ${r.links.deleted} ${r.blobs.deleted}`);
      freed += r.blobs.deleted;
      gcRuns++;
      await sleep(200);
    }
  };

  // An upload session open across every GC run (its first half now, the rest after the load), and its image.
  const pendingLayer = await freshLayer(6000);
  const pending = compose([pendingLayer], 'pending');
  const startUpload = await fetch(`${base}/v2/gc/pending/blobs/uploads/`, { method: 'POST' });
  assert.equal(startUpload.status, 202);
  const location = new URL(startUpload.headers.get('location')!, base);
  const half = Math.floor(pendingLayer.size / 2);
  const first = await fetch(location, { method: 'PATCH', body: pendingLayer.data.subarray(0, half), headers: { 'content-range': `0-${half - 1}` } });
  assert.equal(first.status, 202, await first.text());

  const workers = [...Array.from({ length: PUSHERS }, (_, i) => pusher(i)), ...Array.from({ length: PULLERS }, (_, i) => puller(i)), collector()];
  await sleep(RUN_MS);
  stop = true;
  const finished = await Promise.race([Promise.all(workers).then(() => true), sleep(120_000, false, { ref: false })]);
  assert.ok(finished, `workers still busy 120 s after the load ended: ${JSON.stringify(Object.fromEntries(doing))}\n${explain()}`);
  assert.ok(failures.length === 0, `no push or pull may fail while GC runs on another replica:\n${explain()}`);
  assert.ok(gcRuns >= 5, `GC ran ${gcRuns} times`);
  assert.ok(pulls > 20, `only ${pulls} pulls`);
  assert.ok(deleted.length > 0 && mounts + remounts > 0 && chunked > 0, `${deleted.length} deleted tags, ${mounts} mounts, ${remounts} re-uploads, ${chunked} chunked`);

  // The open session finishes after all those GC runs; its image commits.
  const rest = new URL(location);
  rest.searchParams.set('digest', pendingLayer.digest);
  const finish = await fetch(rest, { method: 'PUT', body: pendingLayer.data.subarray(half), headers: { 'content-range': `${half}-${pendingLayer.size - 1}` } });
  assert.equal(finish.status, 201, await finish.text());
  const cfg = await fetch(`${base}/v2/gc/pending/blobs/uploads/?digest=${pending.config.digest}`, { method: 'POST', body: pending.config.data });
  assert.equal(cfg.status, 201);
  await putManifest(base, 'gc/pending', 'v1', pending);

  // Past the grace period: collect the rest, the last time with `pier gc` against replica 1.
  await sleep(GRACE_S * 1000 + 500);
  freed += (await runGc(gcUrl)).blobs.deleted;
  const cli = await runCommand(process.execPath, [PIER_BIN, 'gc', gcReplica.host, '--format', 'json'], { timeoutMs: 120_000 });
  assert.equal(cli.code, 0, cli.stderr);
  freed += (JSON.parse(cli.stdout) as { blobs: { deleted: number } }).blobs.deleted;

  // What must remain: each tag's current and kept versions, and the pending image.
  const keptImages = new Map<string, TestImage[]>([['gc/pending', [pending]]]);
  for (const [repo, list] of versions) keptImages.set(repo, list.slice(-KEEP));
  const keptBlobs = new Set<string>();
  const keptManifests = new Set<string>();
  const keptLinks = new Set<string>();
  for (const [repo, images] of keptImages) {
    for (const image of images) {
      keptManifests.add(`${repo} ${image.digest}`);
      for (const d of blobsOf(image)) {
        keptBlobs.add(d);
        keptLinks.add(`${repo} ${d}`);
      }
    }
  }

  // Through the balancer: every tag and kept version pulls with verified blobs; the rest is gone.
  await pullAndVerify(base, 'gc/pending', 'v1', pending.digest);
  for (const [repo, list] of versions) {
    await pullAndVerify(base, repo, 'current', list.at(-1)!.digest);
    for (const image of list.slice(-KEEP)) await pullAndVerify(base, repo, image.digest, image.digest);
    for (const image of list.slice(0, -KEEP)) assert.equal((await fetch(`${base}/v2/${repo}/manifests/${image.digest}`)).status, 404, `${repo}@${image.digest}: an unkept version survived`);
  }
  for (const { repo, image } of deleted) assert.equal((await fetch(`${base}/v2/${repo}/manifests/${image.digest}`)).status, 404, `${repo}@${image.digest}: a deleted tag's image survived`);

  // The bucket and the database hold exactly that.
  const stored = (await bucketKeys(c.bucket, 'blobs/')).map((k) => `sha256:${k.split('/').pop()!}`);
  assertSameSet(stored, keptBlobs, 'blobs in the bucket');
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  try {
    const manifests = await db.query<{ name: string; digest: string }>('select r.name, m.digest from manifests m join repositories r on r.id = m.repository_id');
    assertSameSet(manifests.rows.map((r) => `${r.name} ${r.digest}`), keptManifests, 'manifests in the database');
    const links = await db.query<{ name: string; digest: string }>('select r.name, b.digest from repository_blobs b join repositories r on r.id = b.repository_id');
    assertSameSet(links.rows.map((r) => `${r.name} ${r.digest}`), keptLinks, 'repository links in the database');
  } finally {
    await db.end();
  }
  const dry = await runGc(gcUrl, true);
  assert.equal(dry.blobs.deleted + dry.manifests.deleted + dry.links.deleted, 0, 'a dry run finds nothing more');

  const pushedVersions = [...versions.values()].reduce((n, l) => n + l.length, 0);
  t.diagnostic(
    `${pushedVersions} versions and ${deleted.length} deleted tags pushed through the balancer (${chunked} chunked layers, ${mounts} cross-repo mounts, ${remounts} reused layers uploaded again), ${pulls} verified pulls (slowest push ${slowest} ms), ${gcRuns} GC runs on ${gcReplica.name}; ${freed} blobs freed, ${keptBlobs.size} kept; ${Math.round((Date.now() - started) / 1000)} s`,
  );
});
