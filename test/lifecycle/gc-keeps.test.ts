/**
 * What GC must keep, and what it frees, case by case (grace period 0, so
 * only reachability decides): the children of a tagged index, a referrer
 * (signature, SBOM) of a kept manifest and its blobs, a kept history
 * version; and what goes: an untagged manifest, a referrer of a manifest
 * that goes, a deleted tag's version, blobs nothing references. The SBOM
 * the registry writes for each image (decision 0120) is a referrer like
 * any other: kept with its image, freed with it. A dry run reports the
 * same and deletes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import { blob, makeImage, makeIndex, pushImage, sha256, type TestBlob, type TestImage } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { waitForSbom, type GeneratedSbom } from '../helpers/scans.js';

let reg: TestRegistry;

before(async () => {
  reg = await startTestRegistry({ history: { keep: 2 }, gc: { gracePeriod: 0, schedule: 0 } });
});

after(async () => {
  await reg.close();
});

/** An artifact manifest (e.g. a signature) whose subject is `subject`. */
function referrer(subject: TestImage, payload: string): TestImage {
  const empty = blob(Buffer.from('{}'), MediaTypes.ociEmpty);
  const layer = blob(Buffer.from(payload), 'application/vnd.example.signature');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: empty.mediaType, digest: empty.digest, size: empty.size },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length },
    }),
  );
  return { mediaType: MediaTypes.ociManifest, config: empty, layers: [layer], diffs: [], manifest, digest: sha256(manifest) };
}

const blobsOf = (image: TestImage): TestBlob[] => [image.config, ...image.layers];

async function gc(dryRun = false) {
  const res = await fetch(`${reg.url}/pier/v1/gc${dryRun ? '?dryRun=1' : ''}`, { method: 'POST' });
  assert.equal(res.status, 200);
  return (await res.json()) as { manifests: { deleted: number }; links: { deleted: number }; blobs: { deleted: number; bytesFreed: number } };
}

async function manifestStatus(repo: string, digest: string): Promise<number> {
  return (await fetch(`${reg.url}/v2/${repo}/manifests/${digest}`, { method: 'HEAD' })).status;
}

async function blobStored(digest: string): Promise<boolean> {
  return (await reg.blobs.statWithTime(Digest.parse(digest))) !== undefined;
}

describe('GC keeps what is needed', () => {
  test('index children, referrers of kept manifests and kept versions stay; the rest goes', async () => {
    const repo = 'keep/app';
    // A multi-platform image under a tag.
    const amd = await makeImage();
    const arm = await makeImage({ platform: { os: 'linux', architecture: 'arm64' } });
    const index = makeIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    await pushImage(reg.url, repo, 'multi', index, [amd, arm]);
    // A signature of the tagged index, pushed by digest only.
    const signature = referrer(index, 'signature of the index');
    await pushImage(reg.url, repo, signature.digest, signature);
    // Tag history: v1 then v2 then v3 on `app`; keep = 2 keeps v3 and v2.
    const [v1, v2, v3] = [await makeImage(), await makeImage(), await makeImage()];
    for (const v of [v1, v2, v3]) await pushImage(reg.url, repo, 'app', v);
    // A signature of v1, which is beyond the kept history.
    const oldSignature = referrer(v1, 'signature of v1');
    await pushImage(reg.url, repo, oldSignature.digest, oldSignature);
    // An image whose tag was deleted, and one pushed by digest alone.
    const deleted = await makeImage();
    await pushImage(reg.url, repo, 'gone', deleted);
    assert.equal((await fetch(`${reg.url}/v2/${repo}/manifests/gone`, { method: 'DELETE' })).status, 202);
    const orphan = await makeImage();
    await pushImage(reg.url, repo, orphan.digest, orphan);

    const kept = [index, amd, arm, signature, v2, v3];
    const doomed = [v1, oldSignature, deleted, orphan];
    // The registry's SBOM of each image (not of the signatures: referrers are not scanned), once written.
    const sbom = async (image: TestImage): Promise<GeneratedSbom> => {
      const s = await waitForSbom(reg.url, repo, image.digest);
      assert.ok(s, `an SBOM of ${image.digest}`);
      return s;
    };
    const keptSboms = await Promise.all([index, amd, arm, v2, v3].map(sbom));
    const doomedSboms = await Promise.all([v1, deleted, orphan].map(sbom));
    const doomedBlobs = new Set([...doomed.flatMap(blobsOf).map((b) => b.digest), ...doomedSboms.flatMap((s) => s.blobs)]);
    // The empty config is shared by both signatures and every SBOM.
    for (const b of [...kept.flatMap(blobsOf).map((b) => b.digest), ...keptSboms.flatMap((s) => s.blobs)]) doomedBlobs.delete(b);

    const dry = await gc(true);
    // A doomed image takes its SBOM with it.
    assert.equal(dry.manifests.deleted, doomed.length + doomedSboms.length);
    assert.equal(dry.blobs.deleted, doomedBlobs.size);
    for (const m of doomed) assert.equal(await manifestStatus(repo, m.digest), 200, 'a dry run deletes nothing');

    const report = await gc();
    assert.equal(report.manifests.deleted, doomed.length + doomedSboms.length);
    assert.equal(report.blobs.deleted, doomedBlobs.size);
    for (const m of kept) {
      assert.equal(await manifestStatus(repo, m.digest), 200, `kept manifest ${m.digest} is gone`);
      for (const b of blobsOf(m)) {
        if (m === index) continue;
        const res = await fetch(`${reg.url}/v2/${repo}/blobs/${b.digest}`);
        assert.equal(res.status, 200, `a blob of a kept manifest is gone`);
        assert.equal(sha256(Buffer.from(await res.arrayBuffer())), b.digest);
      }
    }
    for (const s of keptSboms) assert.equal(await manifestStatus(repo, s.digest), 200, `the SBOM ${s.digest} of a kept image is gone`);
    for (const m of doomed) assert.equal(await manifestStatus(repo, m.digest), 404, `unkept manifest ${m.digest} survived`);
    for (const s of doomedSboms) assert.equal(await manifestStatus(repo, s.digest), 404, `the SBOM ${s.digest} of a collected image survived`);
    for (const d of doomedBlobs) assert.equal(await blobStored(d), false, `unreferenced blob ${d} survived`);
    const referrers = (await (await fetch(`${reg.url}/v2/${repo}/referrers/${index.digest}`)).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(
      referrers.manifests.map((m) => m.digest).sort(),
      [signature.digest, keptSboms[0]!.digest].sort(),
    );

    // Nothing more to collect.
    const again = await gc();
    assert.equal(again.manifests.deleted + again.blobs.deleted + again.links.deleted, 0);
  });
});
