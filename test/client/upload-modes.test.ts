/**
 * Upload modes: one streamed PUT by default; PATCH chunks with
 * --chunk-size; and after a 413 from a proxy's body limit, chunks — said
 * once, not retried blindly.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { startHttpProxy } from './http-proxy.js';
import { generateLayers, writeDockerArchive, writeOciLayout, type WrittenImage } from './image-files.js';

const MiB = 1 << 20;
let work: Awaited<ReturnType<typeof isolatedEnv>>;
let target: Target;
let image: WrittenImage;
let archive: string;

before(async () => {
  work = await isolatedEnv();
  target = await startTarget('plain');
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 12 * MiB }, { size: 200_000 }]);
  image = await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1' });
  archive = join(work.dir, 'a.tar');
  await writeDockerArchive(archive, layers, { repoTag: 'modes/a:v1' });
});
after(async () => {
  await target?.stop();
  await work?.cleanup();
});

describe('upload modes', { timeout: 120_000 }, () => {
  test('default: one monolithic PUT per blob', async () => {
    const proxy = await startHttpProxy(target.host, { maxBody: 1 << 30 });
    try {
      const r = await runPier(['push', '--quiet', `oci:${join(work.dir, 'layout')}:v1`, `${proxy.host}/modes/mono:v1`], { env: work.env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(proxy.requests.filter((q) => q.method === 'PATCH').length, 0);
      assert.equal(proxy.requests.filter((q) => q.method === 'PUT' && q.path.includes('/blobs/uploads/')).length, 3);
    } finally {
      await proxy.close();
    }
  });

  test('--chunk-size sends PATCH chunks of that size', async () => {
    const proxy = await startHttpProxy(target.host, { maxBody: 1 << 30 });
    try {
      const r = await runPier(['push', '--quiet', '--chunk-size', '4M', `oci:${join(work.dir, 'layout')}:v1`, `${proxy.host}/modes/chunked:v1`], { env: work.env });
      assert.equal(r.code, 0, r.stderr);
      const patches = proxy.requests.filter((q) => q.method === 'PATCH');
      assert.ok(patches.length >= 4, `${patches.length} chunks`);
      assert.ok(patches.every((p) => (p.length ?? Infinity) <= 4 * MiB));
      await skopeoPullAndVerify(`${target.host}/modes/chunked:v1`, image.manifestDigest);
    } finally {
      await proxy.close();
    }
  });

  test('a 413 from a proxy switches to chunks, with one warning', async () => {
    const proxy = await startHttpProxy(target.host, { maxBody: 5 * MiB });
    try {
      const r = await runPier(['push', '--format', 'json', `oci:${join(work.dir, 'layout')}:v1`, `${proxy.host}/modes/limited:v1`], { env: work.env });
      assert.equal(r.code, 0, r.stderr);
      const warnings = r.events.filter((e) => e.type === 'warning');
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(String(warnings[0]?.message), /413/);
      assert.ok(proxy.requests.filter((q) => q.status === 413).length <= 4, 'no blind retrying');
      assert.equal(r.events.find((e) => e.type === 'manifest')?.digest, image.manifestDigest);
      await skopeoPullAndVerify(`${target.host}/modes/limited:v1`, image.manifestDigest);
      // Compressed on the fly (unknown length) goes through the limit too.
      const d = await runPier(['push', '--quiet', `docker-archive:${archive}`, `${proxy.host}/modes/limited-archive:v1`], { env: { ...work.env, XDG_CACHE_HOME: join(work.dir, 'cache-413') } });
      assert.equal(d.code, 0, d.stderr);
      await skopeoPullAndVerify(`${target.host}/modes/limited-archive:v1`, d.stdout.trim());
    } finally {
      await proxy.close();
    }
  });
});
