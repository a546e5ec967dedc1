/**
 * Online GC under load: four pushers keep pushing new versions (and
 * short-lived tags they delete again) while three pullers pull and verify,
 * and GC runs back to back. No push or pull may fail. Afterwards every tag
 * and every kept version (history.keep = 2) pulls with verified digests,
 * and GC freed exactly the blobs of the versions nothing keeps any more:
 * every version's blobs are unique, so the count is known.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertSameSet, blobsOf, pullAndVerify, runGc } from '../helpers/gc-check.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const PUSHERS = 4;
const PULLERS = 3;
const RUN_MS = 8_000;
const GRACE_S = 2;
const KEEP = 2;

let reg: TestRegistry;

before(async () => {
  // No automatic SBOMs: this test names exactly the blobs that must remain, and the scanner writes its referrers
  // asynchronously while GC runs; that an SBOM goes with its image is shown in gc-keeps.test.ts.
  reg = await startTestRegistry({ history: { keep: KEEP }, gc: { gracePeriod: `${GRACE_S}s`, schedule: 0 }, scanning: { sbom: false } });
});

after(async () => {
  await reg.close();
});

async function blobFiles(r: TestRegistry): Promise<Set<string>> {
  const s = new Set<string>();
  for await (const d of r.blobs.list()) s.add(d.toString());
  return s;
}

describe('online GC', { timeout: 300_000 }, () => {
  test('concurrent pushes and pulls while GC runs repeatedly; exact blobs freed', async (t) => {
    const base = reg.url;
    const versions = new Map<string, TestImage[]>(); // repo -> versions of tag "current", in push order
    const deletedTagVersions: TestImage[] = [];
    let stop = false;
    const failures: string[] = [];
    let pulls = 0;
    let gcRuns = 0;
    let freedBlobs = 0;

    const pusher = async (i: number) => {
      const repo = `stress/app${i}`;
      versions.set(repo, []);
      for (let n = 0; !stop; n++) {
        try {
          const image = await makeImage({ layers: [256 + n, 300] });
          if (n % 4 === 3) {
            // A short-lived tag: pushed, then deleted. Nothing keeps this version.
            await pushImage(base, repo, `tmp-${n}`, image);
            const del = await fetch(`${base}/v2/${repo}/manifests/tmp-${n}`, { method: 'DELETE' });
            assert.equal(del.status, 202);
            deletedTagVersions.push(image);
          } else {
            await pushImage(base, repo, 'current', image);
            versions.get(repo)!.push(image);
          }
        } catch (err) {
          failures.push(`push ${repo}: ${(err as Error).message}`);
        }
      }
    };
    const puller = async () => {
      while (!stop) {
        const repos = [...versions.entries()].filter(([, v]) => v.length > 0);
        if (repos.length === 0) {
          await sleep(10);
          continue;
        }
        const [repo] = repos[Math.floor(Math.random() * repos.length)]!;
        try {
          await pullAndVerify(base, repo, 'current');
          pulls++;
        } catch (err) {
          failures.push(`pull ${repo}: ${(err as Error).message}`);
        }
      }
    };
    const collector = async () => {
      while (!stop) {
        const r = await runGc(base);
        gcRuns++;
        freedBlobs += r.blobs.deleted;
        await sleep(100);
      }
    };

    // An upload in progress across GC runs, and a blob pushed for a manifest not yet pushed.
    const pending = await makeImage({ layers: [5000] });
    const layer = pending.layers[0]!;
    const start = await fetch(`${base}/v2/stress/pending/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const half = Math.floor(layer.size / 2);
    const patch = await fetch(`${base}${location}`, { method: 'PATCH', body: layer.data.subarray(0, half), headers: { 'content-range': `0-${half - 1}` } });
    assert.equal(patch.status, 202);

    const workers = [...Array.from({ length: PUSHERS }, (_, i) => pusher(i)), ...Array.from({ length: PULLERS }, () => puller()), collector()];
    await sleep(RUN_MS);
    stop = true;
    await Promise.all(workers);
    assert.deepEqual(failures, [], 'no push or pull failed while GC ran');
    assert.ok(gcRuns >= 5, `GC ran ${gcRuns} times`);
    assert.ok(pulls > 20, `only ${pulls} pulls`);

    // A blob pushed before its manifest survives GC within the grace period; the upload
    // that was in progress through every GC run finishes, and the manifest commits.
    const cfg = await fetch(`${base}/v2/stress/pending/blobs/uploads/?digest=${pending.config.digest}`, { method: 'POST', body: pending.config.data });
    assert.equal(cfg.status, 201);
    freedBlobs += (await runGc(base)).blobs.deleted;
    const finish = await fetch(`${base}${location.split('?')[0]}?digest=${layer.digest}`, { method: 'PUT', body: layer.data.subarray(half), headers: { 'content-range': `${half}-${layer.size - 1}` } });
    assert.equal(finish.status, 201, await finish.text());
    freedBlobs += (await runGc(base)).blobs.deleted;
    const put = await fetch(`${base}/v2/stress/pending/manifests/v1`, { method: 'PUT', body: pending.manifest, headers: { 'content-type': pending.mediaType } });
    assert.equal(put.status, 201, await put.text());

    // Let the grace period pass, then collect what is left.
    await sleep(GRACE_S * 1000 + 300);
    for (let i = 0; i < 2; i++) freedBlobs += (await runGc(base)).blobs.deleted;

    // Every tag and every kept version pulls, with verified digests.
    const kept = new Set<string>(blobsOf(pending));
    await pullAndVerify(base, 'stress/pending', 'v1', pending.digest);
    let pushed = blobsOf(pending).length;
    for (const [repo, list] of versions) {
      pushed += list.length * 3;
      await pullAndVerify(base, repo, 'current', list[list.length - 1]!.digest);
      const h = (await (await fetch(`${base}/pier/v1/repositories/${repo}/tags/current/history`)).json()) as { versions: { digest: string; kept: boolean }[] };
      const keptVersions = h.versions.filter((v) => v.kept).map((v) => v.digest);
      assert.deepEqual(keptVersions, list.slice(-KEEP).reverse().map((v) => v.digest));
      for (const image of list.slice(-KEEP)) {
        await pullAndVerify(base, repo, image.digest, image.digest);
        for (const d of blobsOf(image)) kept.add(d);
      }
      // Versions beyond history.keep are gone.
      for (const image of list.slice(0, -KEEP)) {
        assert.equal((await fetch(`${base}/v2/${repo}/manifests/${image.digest}`)).status, 404, 'an unkept version was collected');
      }
    }
    pushed += deletedTagVersions.length * 3;
    const onDisk = await blobFiles(reg);
    assertSameSet(onDisk, kept, 'exactly the blobs of tags and kept versions remain');
    assert.equal(freedBlobs, pushed - kept.size, `GC freed ${freedBlobs} blobs; deleted and unkept versions had ${pushed - kept.size}`);
    assert.ok(deletedTagVersions.length > 0 && freedBlobs > deletedTagVersions.length * 3);

    t.diagnostic(`${[...versions.values()].reduce((n, l) => n + l.length, 0) + deletedTagVersions.length} versions pushed, ${pulls} verified pulls, ${gcRuns} GC runs during the load; ${freedBlobs} blobs freed, ${kept.size} kept`);
    // A dry run now finds nothing more.
    const dry = await runGc(base, true);
    assert.equal(dry.blobs.deleted, 0);
    assert.equal(dry.manifests.deleted, 0);
  });
});
