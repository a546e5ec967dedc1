/**
 * `pier serve` with `storage.type: s3` on a real S3-compatible server (Ceph
 * RGW from scripts/test.sh), run as users run it (a child process): pushes
 * with `pier push --chunk-size 1M` (small chunks folded into 5 MiB parts)
 * and skopeo, pulls verified by digest, blob GETs answered with a presigned
 * redirect that skopeo and curl follow (Range too), and GC deleting from
 * the bucket.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, runPier, skopeoPullAndVerify } from '../client/harness.js';
import { generateLayers, writeOciLayout, type WrittenImage } from '../client/image-files.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { testBucket, type TestBucket } from '../helpers/s3.js';
import { run, skopeo } from '../helpers/tools.js';

const MiB = 1 << 20;
let bucket: TestBucket;
let work: Awaited<ReturnType<typeof isolatedEnv>>;
const data: string[] = [];
const registries: SpawnedRegistry[] = [];
let image: WrittenImage;
let layout: string;

function s3Env(redirect: boolean): NodeJS.ProcessEnv {
  return {
    PIER_STORAGE_TYPE: 's3',
    PIER_STORAGE_S3_BUCKET: bucket.name,
    PIER_STORAGE_S3_ENDPOINT: bucket.env.endpoint,
    PIER_STORAGE_S3_REGION: bucket.env.region,
    PIER_STORAGE_S3_ACCESS_KEY_ID: bucket.env.accessKeyId,
    PIER_STORAGE_S3_SECRET_ACCESS_KEY: bucket.env.secretAccessKey,
    PIER_STORAGE_S3_REDIRECT: String(redirect),
    // SBOMs off: GC's count of freed blobs below is exact, and the registry's own SBOMs would add theirs.
    PIER_SCANNING_SBOM: 'false',
    PIER_GC_GRACE_PERIOD: '0',
  };
}

async function serve(redirect: boolean): Promise<SpawnedRegistry> {
  const dir = await tempDir('pier-s3-serve-');
  data.push(dir);
  const registry = await spawnTestRegistry({ dataDir: dir, env: s3Env(redirect) });
  registries.push(registry);
  return registry;
}

before(async () => {
  bucket = await testBucket();
  work = await isolatedEnv();
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 12 * MiB + 4321 }, { size: 300_000 }]);
  layout = join(work.dir, 'layout');
  image = await writeOciLayout(layout, layers, { tag: 'v1', gzip: true });
});

after(async () => {
  for (const r of registries) await r.kill();
  await work?.cleanup();
  for (const d of data) await rm(d, { recursive: true, force: true });
  await bucket?.remove();
});

const blobKey = (digest: string) => `blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`;

describe('pier serve on S3', { timeout: 300_000 }, () => {
  test('pier push --chunk-size 1M and skopeo push, pulls verified; GC deletes from the bucket', async () => {
    const reg = await serve(false);
    const pushed = await runPier(['push', '--quiet', '--chunk-size', '1M', `oci:${layout}:v1`, `${reg.host}/s3/chunked:v1`], { env: work.env });
    assert.equal(pushed.code, 0, pushed.stderr);
    const patches = reg.logs.filter((l) => l.method === 'PATCH' && l.status === 202).length;
    assert.ok(patches >= 12, `the 12 MiB layer went in 1 MiB chunks (${patches} PATCHes)`);
    await skopeoPullAndVerify(`${reg.host}/s3/chunked:v1`, image.manifestDigest);
    const keys = await bucket.keys();
    for (const d of [image.configDigest, ...image.layerDigests]) assert.ok(keys.includes(blobKey(d)), `${d} is in the bucket`);
    assert.deepEqual(keys.filter((k) => k.startsWith('uploads/')), [], 'no upload leftovers');
    assert.equal(await bucket.openMultipartUploads(), 0);

    // skopeo pushes its own way (POST, one streamed PATCH, PUT) into another repository.
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/s3/skopeo:v1`]);
    await skopeoPullAndVerify(`${reg.host}/s3/skopeo:v1`, image.manifestDigest);

    // Unreferenced after both manifests are deleted: GC removes the objects.
    for (const repo of ['s3/chunked', 's3/skopeo']) {
      const res = await fetch(`${reg.url}/v2/${repo}/manifests/${image.manifestDigest}`, { method: 'DELETE' });
      assert.equal(res.status, 202);
    }
    const gc = await fetch(`${reg.url}/pier/v1/gc`, { method: 'POST' });
    assert.equal(gc.status, 200);
    const freed = (await gc.json()) as { blobs: { deleted: number } };
    assert.equal(freed.blobs.deleted, 3);
    const left = await bucket.keys('blobs/');
    for (const d of [image.configDigest, ...image.layerDigests]) assert.ok(!left.includes(blobKey(d)), `${d} was deleted from the bucket`);
  });

  test('with storage.s3.redirect, blob GETs are 307 to a presigned URL that skopeo and curl follow', async () => {
    const reg = await serve(true);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/s3/redirect:v1`]);
    const layer = image.layerDigests[0]!;
    const res = await fetch(`${reg.url}/v2/s3/redirect/blobs/${layer}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${bucket.env.endpoint}/${bucket.name}/`), location);
    assert.match(location, /X-Amz-Signature=/);
    await skopeoPullAndVerify(`${reg.host}/s3/redirect:v1`, image.manifestDigest);
    const whole = await run('sh', ['-c', 'curl -fsSL "$0" | sha256sum', `${reg.url}/v2/s3/redirect/blobs/${layer}`], { timeoutMs: 60_000 });
    assert.equal(`sha256:${whole.stdout.split(' ')[0]}`, layer);
    const ranged = await run('sh', ['-c', 'curl -fsSL -r 100-199 "$0" | wc -c', `${reg.url}/v2/s3/redirect/blobs/${layer}`], { timeoutMs: 60_000 });
    assert.equal(ranged.stdout.trim(), '100');
  });
});
