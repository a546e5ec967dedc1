/**
 * copy, tag, tags, inspect and delete against distribution with token auth:
 * copy within a registry mounts every blob (pull on the source, push on the
 * target), tag sends no blob, delete removes the manifest.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, USER, isolatedEnv, registryDigest, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { generateLayers, writeOciLayout, type WrittenImage } from './image-files.js';

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let target: Target;
let plain: Target;
let image: WrittenImage;

before(async () => {
  work = await isolatedEnv();
  target = await startTarget('token');
  plain = await startTarget('plain');
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 1 << 20 }, { size: 300_000, kind: 'text' }]);
  image = await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1', gzip: true });
  const login = await runPier(['login', target.host, '-u', USER, '--password-stdin'], { env: work.env, stdin: PASSWORD });
  assert.equal(login.code, 0, login.stderr);
  const push = await runPier(['push', '--quiet', `oci:${join(work.dir, 'layout')}:v1`, `${target.host}/cmd/src:v1`], { env: work.env });
  assert.equal(push.code, 0, push.stderr);
});
after(async () => {
  await target?.stop();
  await plain?.stop();
  await work?.cleanup();
});

describe('registry commands', { timeout: 120_000 }, () => {
  test('copy within a registry mounts every blob', async () => {
    const r = await runPier(['copy', '--format', 'json', `${target.host}/cmd/src:v1`, `${target.host}/cmd/dst:v1`], { env: work.env });
    assert.equal(r.code, 0, r.stderr);
    const blobs = r.events.filter((e) => e.type === 'blob' && e.status !== 'preparing');
    assert.equal(blobs.length, 3);
    assert.ok(blobs.every((e) => e.status === 'mounted' && e.from === 'cmd/src'), JSON.stringify(blobs));
    assert.equal(r.events.find((e) => e.type === 'manifest')?.digest, image.manifestDigest);
    const scopes = target.distribution?.tokenIssuer?.requests.flatMap((q) => q.scopes) ?? [];
    assert.ok(scopes.includes('repository:cmd/src:pull'), 'asked pull on the source with push on the target');
  });

  test('copy between registries streams the blobs, digests unchanged', async () => {
    const r = await runPier(['copy', '--quiet', `${target.host}/cmd/src:v1`, `${plain.host}/cmd/copied:v1`], { env: work.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), image.manifestDigest);
    await skopeoPullAndVerify(`${plain.host}/cmd/copied:v1`, image.manifestDigest);
  });

  test('tag, tags, inspect, delete', async () => {
    const t = await runPier(['tag', `${target.host}/cmd/src:v1`, 'stable'], { env: work.env });
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`stable: digest: ${image.manifestDigest}`));
    const tags = await runPier(['tags', `${target.host}/cmd/src`], { env: work.env });
    assert.deepEqual(tags.stdout.trim().split('\n').sort(), ['stable', 'v1']);
    const inspect = await runPier(['inspect', '--format', 'json', `${target.host}/cmd/src:stable`], { env: work.env });
    assert.equal(inspect.code, 0, inspect.stderr);
    const info = JSON.parse(inspect.stdout) as { digest: string; layers: unknown[]; config: { os: string }; totalSize: number };
    assert.equal(info.digest, image.manifestDigest);
    assert.equal(info.layers.length, 2);
    assert.equal(info.config.os, 'linux');
    const text = await runPier(['inspect', `${target.host}/cmd/src:v1`], { env: work.env });
    assert.match(text.stdout, /Layers: +2/);

    // distribution 2.8 cannot delete a tag: the manifest goes by digest, its tag with it (--force).
    const del = await runPier(['delete', '--force', `${plain.host}/cmd/copied@${image.manifestDigest}`], { env: work.env });
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await registryDigest(plain.host, 'cmd/copied', 'v1'), null);
    const again = await runPier(['inspect', `${plain.host}/cmd/copied:v1`], { env: work.env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not found/);
  });

  test('user mistakes are one line and exit 2', async () => {
    const r = await runPier(['push'], { env: work.env });
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const bad = await runPier(['push', '--compression', 'zstd', 'oci:/nonexistent', 'x/y'], { env: work.env });
    assert.equal(bad.code, 2);
    const missing = await runPier(['push', 'oci:/nonexistent/layout', `${plain.host}/x:v1`], { env: work.env });
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    assert.match(missing.stderr, /not an OCI image layout/);
  });
});
