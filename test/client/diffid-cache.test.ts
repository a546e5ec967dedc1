/**
 * The diffID cache: pushing a docker-archive compresses each layer once;
 * pushing it again (same or another repository) compresses nothing — shown
 * by the `compress` events of `--format json`, not by timing. The 12 MiB
 * layer takes the streaming path (compressed while uploading), the small
 * ones the in-memory path (compressed, then checked, then one PUT). Also the
 * parallel gzip itself: valid, deterministic, one gzip member.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createParallelGzip } from '../../src/client/index.js';
import { isolatedEnv, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { generateLayers, writeDockerArchive } from './image-files.js';

async function gzipAll(data: Buffer, level = 1, chunkSize = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of Readable.from([data.subarray(0, 1000), data.subarray(1000)]).pipe(createParallelGzip({ level, chunkSize })) as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('parallel gzip', () => {
  test('round-trips, is deterministic, and stores incompressible chunks', async () => {
    const text = Buffer.from('hello pier '.repeat(400_000));
    const random = randomBytes(3 << 20);
    // Stored and deflated chunks side by side, a chunk over 64 KiB stored blocks, an odd tail.
    const mixed = Buffer.concat([random.subarray(0, 1 << 20), text.subarray(0, 1 << 20), random.subarray(0, (1 << 20) + 12_345)]);
    for (const input of [text, random, mixed, Buffer.alloc(0), Buffer.from('x')]) {
      for (const level of [1, 0]) {
        const a = await gzipAll(input, level);
        const b = await gzipAll(input, level);
        assert.ok(a.equals(b), 'same bytes every time');
        assert.ok(gunzipSync(a).equals(input));
      }
    }
    assert.ok((await gzipAll(text)).length < text.length / 20, 'text compresses');
    assert.ok((await gzipAll(random)).length < random.length * 1.001, 'random is stored: 5 bytes per 64 KiB block');
    const m = (await gzipAll(mixed)).length;
    assert.ok(m < mixed.length - (1 << 20) * 0.9 && m > (2 << 20), `only the text chunk shrinks (${m} bytes)`);
  });
});

describe('diffID cache', { timeout: 180_000 }, () => {
  let target: Target;
  let work: Awaited<ReturnType<typeof isolatedEnv>>;
  let archive: string;
  let layerCount: number;

  before(async () => {
    work = await isolatedEnv();
    target = await startTarget('plain');
    const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 12 << 20, kind: 'text' }, { size: 3 << 20 }, { size: 50_000, kind: 'text' }]);
    layerCount = layers.length;
    archive = join(work.dir, 'image.tar');
    await writeDockerArchive(archive, layers, { repoTag: 'cache/test:v1' });
  });
  after(async () => {
    await target?.stop();
    await work?.cleanup();
  });

  const compressions = (events: Record<string, unknown>[]) => events.filter((e) => e.type === 'compress').length;

  test('the second push of a docker-archive compresses nothing', async () => {
    const ref = `${target.host}/cache/a:v1`;
    const first = await runPier(['push', '--format', 'json', `docker-archive:${archive}`, ref], { env: work.env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(compressions(first.events), layerCount, 'every layer compressed once');
    const cached = (await readFile(join(work.env.XDG_CACHE_HOME!, 'pier', 'diffids.log'), 'utf8')).trim().split('\n');
    assert.equal(cached.length, layerCount, 'one record per layer');

    const second = await runPier(['push', '--format', 'json', `docker-archive:${archive}`, ref], { env: work.env });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(compressions(second.events), 0, 'no layer compressed');
    assert.equal(second.events.filter((e) => e.type === 'blob' && e.status === 'exists' && e.kind === 'layer').length, layerCount);
    const d1 = first.events.find((e) => e.type === 'manifest')?.digest;
    assert.equal(second.events.find((e) => e.type === 'manifest')?.digest, d1, 'same manifest');

    // Another repository of the same registry: mounted, still no compression.
    const third = await runPier(['push', '--format', 'json', `docker-archive:${archive}`, `${target.host}/cache/b:v1`], { env: work.env });
    assert.equal(third.code, 0, third.stderr);
    assert.equal(compressions(third.events), 0);
    assert.equal(third.events.filter((e) => e.type === 'blob' && e.status === 'mounted').length, layerCount + 1);
    await skopeoPullAndVerify(`${target.host}/cache/b:v1`, String(d1));
  });

  test('--compression none sends the tars as OCI uncompressed layers', async () => {
    const r = await runPier(['push', '--quiet', '--compression', 'none', `docker-archive:${archive}`, `${target.host}/cache/raw:v1`], { env: work.env });
    assert.equal(r.code, 0, r.stderr);
    const digest = r.stdout.trim();
    const res = await fetch(`http://${target.host}/v2/cache/raw/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const m = (await res.json()) as { mediaType: string; layers: { mediaType: string; digest: string }[] };
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.ok(m.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'));
    assert.equal(createHash('sha256').update(Buffer.from(await (await fetch(`http://${target.host}/v2/cache/raw/manifests/${digest}`, { headers: { accept: m.mediaType } })).arrayBuffer())).digest('hex'), digest.slice(7));
    await skopeoPullAndVerify(`${target.host}/cache/raw:v1`, digest);
  });
});
