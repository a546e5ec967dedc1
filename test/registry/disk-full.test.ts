/**
 * Storage faults on a real full disk: the registry's data folder (blobs and
 * the SQLite database) is a 32 MiB tmpfs mounted by the test (CI runs as
 * root). The disk is filled during a monolithic upload, a PATCH and a
 * manifest PUT: each request is answered 507 within 2 s, nothing is
 * half-visible, the interrupted session resumes and a new push succeeds
 * once space is freed, all on the same running registry. A second registry
 * on the emptied folder with `storage.minFree` refuses uploads before the disk
 * is full while pulls and manifest pushes go on, and reports it on
 * /healthz and /metrics. `pier push` says "the registry is out of storage";
 * skopeo reports the 507 and does not retry it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeImage, sha256, writeOciLayout } from '../helpers/images.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { hasCommand, run, skopeo } from '../helpers/tools.js';
import { isolatedEnv, runPier } from '../client/harness.js';

const MiB = 1024 * 1024;
const DEADLINE_MS = 2000;

let mountPoint = '';
let mounted = false;
let skip: string | false = false;
let registry: TestRegistry | undefined;
const filler = () => path.join(mountPoint, 'filler');
/** Latencies of the requests answered under a full disk, for the report. */
const answered: { what: string; status: number; ms: number }[] = [];

before(async () => {
  mountPoint = await tempDir('pier-diskfull-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', mountPoint], { timeoutMs: 10_000 });
    mounted = true;
  } catch (err) {
    skip = `cannot mount a tmpfs (needs root): ${(err as Error).message}`;
  }
});

after(async () => {
  await registry?.close().catch(() => undefined);
  if (mounted) await run('umount', ['-l', mountPoint], { timeoutMs: 10_000 }).catch(() => undefined);
  await rm(mountPoint, { recursive: true, force: true });
  if (answered.length > 0) console.log(`disk-full answers: ${answered.map((a) => `${a.what} ${a.status} in ${a.ms} ms`).join('; ')}`);
});

async function freeBytes(): Promise<number> {
  const s = await statfs(mountPoint);
  return s.bavail * s.bsize;
}

/** Fills the tmpfs until `leave` bytes are free (0: until a write fails). */
async function fill(leave: number): Promise<void> {
  const free = await freeBytes();
  if (leave > 0) {
    await writeFile(filler(), Buffer.alloc(Math.max(0, free - leave)), { flag: 'a' });
    return;
  }
  try {
    for (;;) await writeFile(filler(), Buffer.alloc(256 * 1024), { flag: 'a' });
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
}

async function unfill(): Promise<void> {
  await unlink(filler()).catch(() => undefined);
}

/** Sends a request and records how long the answer took; it must come within the deadline. */
async function timed(what: string, url: string, init: RequestInit): Promise<Response> {
  const started = Date.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const ms = Date.now() - started;
  answered.push({ what, status: res.status, ms });
  assert.ok(ms < DEADLINE_MS, `${what} answered after ${ms} ms`);
  return res;
}

async function uploadFiles(): Promise<string[]> {
  return readdir(path.join(mountPoint, 'blobs', 'uploads'));
}

test('a full disk is answered at once, leaves nothing half-visible, and recovers without a restart', async (t) => {
  if (skip) return t.skip(skip);
  registry = await startTestRegistry({ storage: { minFree: '0' } }, { dataDir: mountPoint });
  const base = registry.url;

  await t.test('monolithic upload', async () => {
    const data = randomBytes(8 * MiB);
    const digest = sha256(data);
    await fill(3 * MiB);
    const res = await timed('monolithic POST', `${base}/v2/full/mono/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
    assert.equal(res.status, 507);
    assert.match(await res.text(), /out of storage/);
    assert.equal((await fetch(`${base}/v2/full/mono/blobs/${digest}`, { method: 'HEAD' })).status, 404);
    assert.deepEqual(await uploadFiles(), [], 'a monolithic upload that failed leaves no file');
    await unfill();
    const again = await fetch(`${base}/v2/full/mono/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
    assert.equal(again.status, 201, await again.text());
    assert.equal((await fetch(`${base}/v2/full/mono/blobs/${digest}`, { method: 'HEAD' })).status, 200);
  });

  await t.test('PATCH, then resume', async () => {
    const data = randomBytes(10 * MiB);
    const digest = sha256(data);
    const start = await fetch(`${base}/v2/full/chunked/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location') ?? '', base).toString();
    const first = await fetch(location, { method: 'PATCH', body: data.subarray(0, MiB), headers: { 'content-range': `0-${MiB - 1}` } });
    assert.equal(first.status, 202);
    await fill(2 * MiB);
    const res = await timed('PATCH', location, { method: 'PATCH', body: data.subarray(MiB), headers: { 'content-range': `${MiB}-${data.length - 1}` } });
    assert.equal(res.status, 507);
    assert.match(await res.text(), /out of storage/);
    // The session is released at once (no 409 "receiving data") and says where to resume.
    const state = await fetch(location);
    assert.equal(state.status, 204);
    const offset = Number(/^0-(\d+)$/.exec(state.headers.get('range') ?? '')?.[1]) + 1;
    assert.ok(offset >= MiB && offset < data.length, `resume offset ${offset}`);
    assert.equal((await fetch(`${base}/v2/full/chunked/blobs/${digest}`, { method: 'HEAD' })).status, 404);
    await unfill();
    const rest = await fetch(location, { method: 'PATCH', body: data.subarray(offset), headers: { 'content-range': `${offset}-${data.length - 1}` } });
    assert.equal(rest.status, 202, await rest.text());
    const done = await fetch(`${new URL(rest.headers.get('location') ?? '', base).toString()}?digest=${digest}`, { method: 'PUT' });
    assert.equal(done.status, 201, await done.text());
    const pulled = Buffer.from(await (await fetch(`${base}/v2/full/chunked/blobs/${digest}`)).arrayBuffer());
    assert.equal(sha256(pulled), digest);
  });

  await t.test('manifest PUT', async () => {
    // A manifest larger than anything the database has written lately, so its WAL must grow.
    const image = await makeImage({ layers: [4096], annotations: { padding: randomBytes(1536 * 1024).toString('base64') } });
    for (const b of [image.config, ...image.layers]) {
      const res = await fetch(`${base}/v2/full/app/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data });
      assert.equal(res.status, 201);
    }
    await fill(0);
    const res = await timed('manifest PUT', `${base}/v2/full/app/manifests/v1`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
    assert.equal(res.status, 507, await res.text());
    assert.equal((await fetch(`${base}/v2/full/app/manifests/v1`)).status, 404);
    assert.equal((await fetch(`${base}/v2/full/app/manifests/${image.digest}`)).status, 404);
    // Starting an upload on the full disk is 507 too (not 500), and leaves no file.
    const starting = await timed('upload POST', `${base}/v2/full/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(starting.status, 507, await starting.text());
    await unfill();
    const again = await fetch(`${base}/v2/full/app/manifests/v1`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
    assert.equal(again.status, 201, await again.text());
    const pulled = await fetch(`${base}/v2/full/app/manifests/v1`, { headers: { accept: image.mediaType } });
    assert.equal(sha256(Buffer.from(await pulled.arrayBuffer())), image.digest);
  });

  const after = await fetch(`${base}/metrics`);
  assert.match(await after.text(), /pier_storage_refusals_total\{reason="full"\} [1-9]/);
  await registry.close();
  registry = undefined;
});

test('storage.minFree refuses uploads before the disk is full; pulls and manifests go on', async (t) => {
  if (skip) return t.skip(skip);
  // A fresh registry on the emptied tmpfs.
  for (const name of await readdir(mountPoint)) await rm(path.join(mountPoint, name), { recursive: true, force: true });
  registry = await startTestRegistry({ storage: { minFree: '8MiB' } }, { dataDir: mountPoint });
  const base = registry.url;
  const image = await makeImage({ layers: [64 * 1024] });
  for (const b of [image.config, ...image.layers]) {
    const res = await fetch(`${base}/v2/low/app/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data });
    assert.equal(res.status, 201);
  }
  await fill(10 * MiB);
  const healthy = await fetch(`${base}/healthz`);
  assert.deepEqual(await healthy.json(), { status: 'ok' });

  // 4 MiB more would leave 6 MiB, below the 8 MiB floor: refused before a byte is written.
  const big = randomBytes(4 * MiB);
  const mono = await timed('monolithic POST below minFree', `${base}/v2/low/app/blobs/uploads/?digest=${sha256(big)}`, { method: 'POST', body: big });
  assert.equal(mono.status, 507);
  assert.match(await mono.text(), /out of storage.*below the minimum/);
  assert.ok((await freeBytes()) > 9 * MiB, 'refused before the disk filled');

  await fill(6 * MiB);
  const session = await timed('upload POST below minFree', `${base}/v2/low/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(session.status, 507);
  assert.deepEqual(await uploadFiles(), []);

  // Reads and manifest pushes still work: the floor keeps room for the database.
  const pull = await fetch(`${base}/v2/low/app/blobs/${image.layers[0]?.digest ?? ''}`);
  assert.equal(pull.status, 200);
  assert.equal(sha256(Buffer.from(await pull.arrayBuffer())), image.layers[0]?.digest);
  const put = await fetch(`${base}/v2/low/app/manifests/v1`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
  assert.equal(put.status, 201, await put.text());

  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  const body = (await health.json()) as { status: string; volumes: { name: string; free: number; minFree: number }[] };
  assert.equal(body.status, 'degraded');
  assert.ok(body.volumes.some((v) => v.name === 'storage' && v.free < v.minFree));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /pier_storage_refusals_total\{reason="min_free"\} [2-9]/);
  const free = Number(/pier_storage_free_bytes\{volume="storage"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(free > 0 && free < 8 * MiB, `pier_storage_free_bytes ${free}`);

  // The push client names the condition in one line.
  const work = await isolatedEnv();
  try {
    const pushed = await makeImage({ layers: [256 * 1024] });
    await writeOciLayout(path.join(work.dir, 'layout'), [{ tag: 'v1', image: pushed }]);
    const r = await runPier(['push', '--quiet', `oci:${path.join(work.dir, 'layout')}:v1`, `${registry.host}/low/pushed:v1`], { env: work.env, timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', /the registry is out of storage/);

    // skopeo takes 507 as final: one attempt, the status named, no retries.
    if (await hasCommand('skopeo')) {
      const before = await (await fetch(`${base}/metrics`)).text();
      const count = (text: string) => Number(/pier_storage_refusals_total\{reason="min_free"\} (\d+)/.exec(text)?.[1] ?? 0);
      await assert.rejects(
        skopeo(['copy', '--dest-tls-verify=false', `oci:${path.join(work.dir, 'layout')}:v1`, `docker://${registry.host}/low/skopeo:v1`], { timeoutMs: 60_000 }),
        /507 Insufficient Storage/,
      );
      assert.equal(count(await (await fetch(`${base}/metrics`)).text()) - count(before), 1, 'skopeo did not retry');
    }
  } finally {
    await work.cleanup();
  }

  await unfill();
  const after = await fetch(`${base}/v2/low/app/blobs/uploads/?digest=${sha256(big)}`, { method: 'POST', body: big });
  assert.equal(after.status, 201);
  assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
});
