/** podman pushes to Pier and pulls back, with its own private storage. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { rm } from 'node:fs/promises';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { podman, run } from '../helpers/tools.js';

let reg: TestRegistry;
let work: string;

before(async () => {
  reg = await startTestRegistry();
  work = await tempDir('pier-podman-test-');
});
after(async () => {
  await podman(work, ['system', 'reset', '--force']).catch(() => undefined);
  await reg.close();
  await rm(work, { recursive: true, force: true }).catch(() => undefined);
});

test('podman push and pull', { timeout: 300_000 }, async () => {
  const image = await makeImage({ layers: [100_000, 20_000] });
  const layout = path.join(work, 'layout');
  await writeOciLayout(layout, [{ tag: 'v1', image }]);
  const storage = `containers-storage:[overlay@${path.join(work, 'root')}+${path.join(work, 'runroot')}]localhost/pier-test:v1`;
  await run('skopeo', ['copy', `oci:${layout}:v1`, storage], { env: { TMPDIR: work } });
  await podman(work, ['push', '--tls-verify=false', 'localhost/pier-test:v1', `${reg.host}/podman/app:v1`]);
  const tags = (await (await fetch(`${reg.url}/v2/podman/app/tags/list`)).json()) as { tags: string[] };
  assert.deepEqual(tags.tags, ['v1']);
  const pushed = await fetch(`${reg.url}/v2/podman/app/manifests/v1`, { method: 'HEAD' });
  const digest = pushed.headers.get('docker-content-digest');
  assert.ok(digest);

  await podman(work, ['rmi', '--all', '--force']);
  await podman(work, ['pull', '--tls-verify=false', `${reg.host}/podman/app:v1`]);
  const inspect = JSON.parse((await podman(work, ['image', 'inspect', `${reg.host}/podman/app:v1`])).stdout) as { Digest: string; RepoDigests: string[] }[];
  assert.equal(inspect[0]?.Digest, digest);
  assert.ok(inspect[0]?.RepoDigests.includes(`${reg.host}/podman/app@${digest}`));
});
