/**
 * containerd (`ctr`) pulls images that skopeo pushed to Pier, with OCI and
 * Docker media types, and a multi-platform index; the pull unpacks every
 * layer, so each blob's digest is verified by containerd.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeImage, makeIndex, writeDockerArchive, writeOciLayout } from '../helpers/images.js';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/tools.js';

let reg: TestRegistry;
let ctr: Containerd;
let work: string;

before(async () => {
  reg = await startTestRegistry();
  ctr = await startContainerd();
  work = await tempDir('pier-ctr-test-');
});
after(async () => {
  await ctr?.stop();
  await reg?.close();
});

describe('containerd', { timeout: 300_000 }, () => {
  test('pulls an OCI image pushed by skopeo', async () => {
    const image = await makeImage({ layers: [300_000, 10_000] });
    const layout = path.join(work, 'oci');
    await writeOciLayout(layout, [{ tag: 'v1', image }]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/ctr/oci:v1`]);
    const out = await ctr.pull(`${reg.host}/ctr/oci:v1`);
    assert.match(out, /done/);
    assert.equal(await ctr.imageDigest(`${reg.host}/ctr/oci:v1`), image.digest);
  });

  test('pulls a Docker schema 2 image pushed by skopeo', async () => {
    const image = await makeImage({ layers: [200_000], docker: true });
    const archive = path.join(work, 'docker.tar');
    await writeDockerArchive(archive, image, 'x/y:v1');
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${reg.host}/ctr/docker:v1`]);
    const head = await fetch(`${reg.url}/v2/ctr/docker/manifests/v1`, { method: 'HEAD', headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    assert.equal(head.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json');
    await ctr.pull(`${reg.host}/ctr/docker:v1`);
    assert.equal(await ctr.imageDigest(`${reg.host}/ctr/docker:v1`), head.headers.get('docker-content-digest'));
  });

  test('pulls every platform of an index', async () => {
    const amd = await makeImage({ layers: [5_000], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeImage({ layers: [5_000], platform: { os: 'linux', architecture: 'arm64' } });
    const index = makeIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const layout = path.join(work, 'index');
    await writeOciLayout(layout, [{ tag: 'multi', image: index, extra: [amd, arm] }]);
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${reg.host}/ctr/multi:v1`]);
    await ctr.pull(`${reg.host}/ctr/multi:v1`, { allPlatforms: true });
    assert.equal(await ctr.imageDigest(`${reg.host}/ctr/multi:v1`), index.digest);
  });
});
