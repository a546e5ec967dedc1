/**
 * skopeo (containers/image) against Pier: copies in from an OCI layout and a
 * docker-archive, copies back out, and a two-platform index round trip.
 * Digests must be unchanged wherever skopeo does not recompress.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeImage, makeIndex, writeDockerArchive, writeOciLayout, sha256 } from '../helpers/images.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/tools.js';

let reg: TestRegistry;
let work: string;

before(async () => {
  // SBOMs off: a test below counts blob commits server-wide, and an SBOM written after a push would land in its window.
  reg = await startTestRegistry({ scanning: { sbom: false } });
  work = await tempDir('pier-skopeo-test-');
});
after(async () => {
  await reg.close();
});

/** Every blob file in an OCI layout hashes to its name. */
async function verifyLayout(dir: string): Promise<void> {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  for (const name of await readdir(blobsDir)) {
    const digest = createHash('sha256').update(await readFile(path.join(blobsDir, name))).digest('hex');
    assert.equal(digest, name, `blob ${name} in ${dir} has the wrong content`);
  }
}

describe('skopeo', { timeout: 300_000 }, () => {
  test('copies an OCI layout in and back out with digests unchanged', async () => {
    const image = await makeImage({ layers: [200_000, 50_000] });
    const src = path.join(work, 'src-layout');
    await writeOciLayout(src, [{ tag: 'v1', image }]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${reg.host}/interop/oci:v1`]);
    const inspect = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/interop/oci:v1`])).stdout) as { Digest: string; Layers: string[] };
    assert.equal(inspect.Digest, image.digest);
    assert.deepEqual(inspect.Layers, image.layers.map((l) => l.digest));
    const out = path.join(work, 'out-layout');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/interop/oci:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, image.digest);
    await verifyLayout(out);
    for (const l of image.layers) assert.deepEqual(await readFile(path.join(out, 'blobs', 'sha256', l.digest.slice(7))), l.data);
  });

  test('copies a docker-archive in (Docker media types) and back out', async () => {
    const image = await makeImage({ layers: [100_000], docker: true });
    const archive = path.join(work, 'image.tar');
    await writeDockerArchive(archive, image, 'example/app:v1');
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${reg.host}/interop/archive:v1`]);
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/archive:v1`])).stdout;
    const manifest = JSON.parse(raw) as { mediaType: string; config: { digest: string }; layers: { digest: string }[] };
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(manifest.config.digest, image.config.digest, 'the config is copied unchanged');
    const out = path.join(work, 'archive-out');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/interop/archive:v1`, `dir:${out}`]);
    // dir: names each blob by its digest: check the bytes match, and the manifest digest.
    assert.equal(sha256(await readFile(path.join(out, 'manifest.json'))), sha256(raw));
    for (const l of manifest.layers) {
      assert.equal(sha256(await readFile(path.join(out, l.digest.slice(7)))), l.digest);
    }
  });

  test('round-trips a two-platform image index with --all', async () => {
    const amd = await makeImage({ layers: [10_000], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeImage({ layers: [10_000], platform: { os: 'linux', architecture: 'arm64' } });
    const index = makeIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const src = path.join(work, 'index-layout');
    await writeOciLayout(src, [{ tag: 'multi', image: index, extra: [amd, arm] }]);
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${src}:multi`, `docker://${reg.host}/interop/multi:v1`]);
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/multi:v1`])).stdout;
    assert.equal(sha256(raw), index.digest);
    const armRaw = (await skopeo(['inspect', '--raw', '--tls-verify=false', '--override-arch', 'arm64', `docker://${reg.host}/interop/multi@${arm.digest}`])).stdout;
    assert.equal(sha256(armRaw), arm.digest);
    const out = path.join(work, 'index-out');
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/interop/multi:v1`, `oci:${out}:multi`]);
    const outIndex = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(outIndex.manifests[0]?.digest, index.digest);
    await verifyLayout(out);
  });

  test('a second copy of the same image sends no blob again', async () => {
    const image = await makeImage({ layers: [50_000] });
    const src = path.join(work, 'repush');
    await writeOciLayout(src, [{ tag: 'v1', image }]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${reg.host}/interop/repush:v1`]);
    const before = await (await fetch(`${reg.url}/metrics`)).text();
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${reg.host}/interop/repush:v2`]);
    const afterMetrics = await (await fetch(`${reg.url}/metrics`)).text();
    const committed = (m: string) => Number(/pier_blobs_committed_total (\d+)/.exec(m)?.[1]);
    assert.equal(committed(afterMetrics), committed(before));
  });
});
