/**
 * Versions you can roll back: alice pushes v1 and bob pushes v2 to the same
 * tag with skopeo, carol runs `pier rollback`, and a skopeo pull gets v1's
 * digest and bytes; `pier history` and the API show the three changes with
 * their actors, and nothing was uploaded by the rollback.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeImage, sha256, writeOciLayout, type TestImage } from '../helpers/images.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/tools.js';
import { as, cliIo, PASSWORD, userGate } from './helpers.js';

let reg: TestRegistry;
let work: string;
let v1: TestImage;
let v2: TestImage;

before(async () => {
  work = await tempDir('pier-rollback-');
  reg = await startTestRegistry({}, { gate: userGate });
  v1 = await makeImage({ layers: [2048, 1024] });
  v2 = await makeImage({ layers: [4096] });
  await writeOciLayout(path.join(work, 'v1'), [{ tag: 'v1', image: v1 }]);
  await writeOciLayout(path.join(work, 'v2'), [{ tag: 'v2', image: v2 }]);
});

after(async () => {
  await reg.close();
  await rm(work, { recursive: true, force: true });
});

describe('rollback', { timeout: 180_000 }, () => {
  test('push v1, push v2, roll back: skopeo pulls v1; history shows three changes with actors', async () => {
    const dest = `docker://${reg.host}/team/app:stable`;
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${PASSWORD}`, `oci:${path.join(work, 'v1')}:v1`, dest]);
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `bob:${PASSWORD}`, `oci:${path.join(work, 'v2')}:v2`, dest]);
    const inspect = async () => JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--creds', `dave:${PASSWORD}`, dest])).stdout) as { Digest: string };
    assert.equal((await inspect()).Digest, v2.digest);

    const blobsBefore = await countBlobFiles(reg);
    const carol = await cliIo(work, reg.host, 'carol');
    const code = await carol.run(['rollback', `${reg.host}/team/app:stable`]);
    assert.equal(code, 0, carol.errors());
    assert.match(carol.output(), new RegExp(`${v2.digest} -> ${v1.digest}`));
    assert.equal(await countBlobFiles(reg), blobsBefore, 'a rollback uploads nothing');

    // A real client pulls v1: same digest, and every blob verifies.
    assert.equal((await inspect()).Digest, v1.digest);
    const out = path.join(work, 'pulled');
    await skopeo(['copy', '--src-tls-verify=false', '--src-creds', `dave:${PASSWORD}`, dest, `oci:${out}:pulled`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, v1.digest);
    for (const b of [v1.config, ...v1.layers]) {
      assert.equal(sha256(await readFile(path.join(out, 'blobs', 'sha256', b.digest.slice(7)))), b.digest);
    }

    // History through the CLI (JSON and text) and the API.
    const viewer = await cliIo(work, reg.host, 'dave');
    assert.equal(await viewer.run(['history', `${reg.host}/team/app:stable`, '--format', 'json']), 0, viewer.errors());
    const h = JSON.parse(viewer.output()) as { current: string; changes: { action: string; actor: string; oldDigest?: string; newDigest?: string }[]; versions: { digest: string; kept: boolean }[] };
    assert.equal(h.current, v1.digest);
    assert.deepEqual(
      h.changes.map((c) => [c.action, c.actor, c.oldDigest, c.newDigest]),
      [
        ['rollback', 'carol', v2.digest, v1.digest],
        ['move', 'bob', v1.digest, v2.digest],
        ['create', 'alice', undefined, v1.digest],
      ],
    );
    assert.deepEqual(
      h.versions.map((v) => [v.digest, v.kept]),
      [
        [v1.digest, true],
        [v2.digest, true],
        [v1.digest, true],
      ],
    );
    const text = await cliIo(work, reg.host, 'dave');
    assert.equal(await text.run(['history', `${reg.host}/team/app:stable`]), 0);
    for (const actor of ['alice', 'bob', 'carol']) assert.match(text.output(), new RegExp(`\\b${actor}\\b`));

    // --to goes to a named version; --steps past the oldest is a clear error.
    const again = await cliIo(work, reg.host, 'erin');
    assert.equal(await again.run(['rollback', `${reg.host}/team/app:stable`, '--to', v2.digest]), 0, again.errors());
    assert.equal((await inspect()).Digest, v2.digest);
    const tooFar = await cliIo(work, reg.host, 'erin');
    assert.equal(await tooFar.run(['rollback', `${reg.host}/team/app:stable`, '--steps', '9']), 1);
    assert.match(tooFar.errors(), /only 4 version\(s\)/);
  });

  test('the history API needs pull rights and names unknown tags', async () => {
    const anonymous = await fetch(`${reg.url}/pier/v1/repositories/team/app/tags/stable/history`);
    assert.equal(anonymous.status, 401);
    const unknown = await as('dave')(`${reg.url}/pier/v1/repositories/team/app/tags/nope/history`);
    assert.equal(unknown.status, 404);
    assert.match(await unknown.text(), /tag nope has no history/);
  });
});

async function countBlobFiles(r: TestRegistry): Promise<number> {
  let n = 0;
  for await (const _ of r.blobs.list()) n++;
  return n;
}
