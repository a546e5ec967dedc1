/**
 * Re-pushing what the registry already has: when the destination tag
 * already names the manifest the push would PUT (an OCI layout's own, or a
 * docker-archive's built from the diffID cache), the push is one HEAD of that
 * manifest and nothing else — no blob HEAD, no upload, no manifest PUT, no
 * compression. Any difference (another tag, another image under the tag)
 * takes the full path. Requests are counted by a proxy in front of the
 * registry, against Pier and against distribution.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { startHttpProxy } from './http-proxy.js';
import { generateLayers, writeDockerArchive, writeOciLayout, type WrittenImage } from './image-files.js';

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let imageA: WrittenImage;
let imageB: WrittenImage;
let archive: string;

before(async () => {
  work = await isolatedEnv();
  const a = await generateLayers(join(work.dir, 'layers-a'), [{ size: 300_000 }, { size: 20_000 }]);
  const b = await generateLayers(join(work.dir, 'layers-b'), [{ size: 100_000 }]);
  imageA = await writeOciLayout(join(work.dir, 'a'), a, { tag: 'v1' });
  imageB = await writeOciLayout(join(work.dir, 'b'), b, { tag: 'v1' });
  archive = join(work.dir, 'a.tar');
  await writeDockerArchive(archive, a, { repoTag: 'repush/a:v1' });
});
after(async () => {
  await work?.cleanup();
});

for (const kind of ['pier', 'plain'] as const) {
  describe(`re-push to ${kind === 'pier' ? 'Pier' : 'distribution'}`, { timeout: 120_000 }, () => {
    let target: Target;
    before(async () => {
      target = await startTarget(kind);
    });
    after(async () => {
      await target?.stop();
    });

    const blobRequests = <T extends { path: string }>(reqs: T[]): T[] => reqs.filter((q) => q.path.includes('/blobs/'));

    test('an OCI layout already under the tag: one manifest HEAD, nothing sent', async () => {
      const proxy = await startHttpProxy(target.host, { maxBody: 1 << 30 });
      try {
        const dest = `${proxy.host}/repush/oci:v1`;
        const first = await runPier(['push', '--quiet', `oci:${join(work.dir, 'a')}:v1`, dest], { env: work.env });
        assert.equal(first.code, 0, first.stderr);
        assert.ok(blobRequests(proxy.requests).length > 0);
        proxy.requests.length = 0;

        const again = await runPier(['push', '--format', 'json', `oci:${join(work.dir, 'a')}:v1`, dest], { env: work.env });
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(proxy.requests.map((q) => `${q.method} ${q.path.replace(/\?.*/, '')}`), ['HEAD /v2/repush/oci/manifests/v1']);
        assert.equal(again.events.find((e) => e.type === 'manifest')?.digest, imageA.manifestDigest);
        const exists = again.events.filter((e) => e.type === 'blob' && e.status === 'exists');
        assert.equal(exists.filter((e) => e.kind === 'layer').length, 2, 'every layer reported as already there');
        assert.equal(exists.filter((e) => e.kind === 'config').length, 1, 'and the config');

        // The same image under another tag: blobs are checked (and found), the manifest is PUT.
        proxy.requests.length = 0;
        const other = await runPier(['push', '--quiet', `oci:${join(work.dir, 'a')}:v1`, `${proxy.host}/repush/oci:v2`], { env: work.env });
        assert.equal(other.code, 0, other.stderr);
        assert.ok(blobRequests(proxy.requests).every((q) => q.method === 'HEAD'), 'no blob sent');
        assert.ok(proxy.requests.some((q) => q.method === 'PUT' && q.path.endsWith('/manifests/v2')));

        // Another image under the same tag: the full path, and the tag moves.
        proxy.requests.length = 0;
        const moved = await runPier(['push', '--quiet', `oci:${join(work.dir, 'b')}:v1`, dest], { env: work.env });
        assert.equal(moved.code, 0, moved.stderr);
        assert.ok(proxy.requests.some((q) => q.method === 'PUT' && q.path.endsWith('/manifests/v1')));
        await skopeoPullAndVerify(`${target.host}/repush/oci:v1`, imageB.manifestDigest);
      } finally {
        await proxy.close();
      }
    });

    test('a docker-archive pushed before: its manifest comes from the diffID cache, nothing is compressed or sent', async () => {
      const proxy = await startHttpProxy(target.host, { maxBody: 1 << 30 });
      try {
        const dest = `${proxy.host}/repush/archive:v1`;
        const first = await runPier(['push', '--quiet', `docker-archive:${archive}`, dest], { env: work.env });
        assert.equal(first.code, 0, first.stderr);
        proxy.requests.length = 0;
        const again = await runPier(['push', '--format', 'json', `docker-archive:${archive}`, dest], { env: work.env });
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(proxy.requests.map((q) => `${q.method} ${q.path.replace(/\?.*/, '')}`), ['HEAD /v2/repush/archive/manifests/v1']);
        assert.equal(again.events.filter((e) => e.type === 'compress').length, 0);
        assert.equal(again.events.find((e) => e.type === 'manifest')?.digest, first.stdout.trim());
        await skopeoPullAndVerify(`${target.host}/repush/archive:v1`, first.stdout.trim());
      } finally {
        await proxy.close();
      }
    });
  });
}
