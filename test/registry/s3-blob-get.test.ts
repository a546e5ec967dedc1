/**
 * Blob GET from S3 without redirect (`storage.s3.redirect: false`): Pier
 * reads the endpoint's socket straight into a pooled buffer and writes it to
 * the client (src/store/blob/s3/raw-get.ts, decision 0127). Run as users run
 * it: a `pier serve` child process on a real S3 store (Ceph RGW from
 * scripts/test.sh), reached through a loopback TCP relay that the test can
 * tell to cut S3's connections midway. Checked: bodies and ranges across
 * read buffers are byte-exact, an empty blob, HEAD unchanged, clients that
 * leave midway (many more than any pool holds) leave no connection behind
 * and the next downloads are whole, and S3 failing midway cuts the client's
 * connection (a short body, never wrong bytes) and the next GET is whole.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../helpers/images.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { testBucket, type TestBucket } from '../helpers/s3.js';

const MiB = 1 << 20;
const data = randomBytes(9 * MiB + 123);
const digest = sha256(data);
const empty = sha256(Buffer.alloc(0));
const REPO = 's3get/blob';

/** A TCP relay to the S3 endpoint; while `cutAfter` is set, a connection is destroyed once it has relayed that many bytes towards Pier. */
interface Relay {
  port: number;
  cutAfter: number | undefined;
  /** Connections to S3 open right now. */
  open(): number;
  close(): Promise<void>;
}

async function startRelay(target: URL): Promise<Relay> {
  const sockets = new Set<Socket>();
  let upstreams = 0;
  const relay: Relay = {
    port: 0,
    cutAfter: undefined,
    open: () => upstreams,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    upstreams++;
    sockets.add(client).add(upstream);
    let down = 0;
    client.pipe(upstream);
    upstream.on('data', (d: Buffer) => {
      down += d.length;
      if (relay.cutAfter !== undefined && down > relay.cutAfter) {
        client.destroy();
        upstream.destroy();
        return;
      }
      if (!client.write(d)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    // S3's end is passed on after what the relay still buffers (a destroy here would truncate it).
    upstream.on('end', () => client.end());
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      upstreams--;
      sockets.delete(upstream);
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      upstream.destroy();
      sockets.delete(client);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  relay.port = (server.address() as { port: number }).port;
  return relay;
}

let bucket: TestBucket;
let relay: Relay;
let reg: SpawnedRegistry;
let dataDir: string;
const url = (d: string) => `${reg.url}/v2/${REPO}/blobs/${d}`;

/** Starts a GET, reads until some bytes arrived, then drops the connection. */
function abortMidway(u: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request(u, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
    req.end();
  });
}

/** GETs `u` and reads the body as far as it comes: the bytes, and whether the body ended short (the connection cut). */
function getAll(u: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(u, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (cut: boolean) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), cut });
      res.on('end', () => done(false));
      res.on('error', () => done(true));
      res.on('aborted', () => done(true));
    });
    req.on('error', reject);
    req.end();
  });
}

function pierFds(): number {
  return readdirSync(`/proc/${reg.process.pid}/fd`).length;
}

before(async () => {
  bucket = await testBucket();
  relay = await startRelay(new URL(bucket.env.endpoint));
  dataDir = await tempDir('pier-s3-get-');
  reg = await spawnTestRegistry({
    dataDir,
    env: {
      PIER_STORAGE_TYPE: 's3',
      PIER_STORAGE_S3_BUCKET: bucket.name,
      PIER_STORAGE_S3_ENDPOINT: `http://127.0.0.1:${relay.port}`,
      PIER_STORAGE_S3_REGION: bucket.env.region,
      PIER_STORAGE_S3_ACCESS_KEY_ID: bucket.env.accessKeyId,
      PIER_STORAGE_S3_SECRET_ACCESS_KEY: bucket.env.secretAccessKey,
      PIER_SCANNING_SBOM: 'false',
    },
  });
  for (const [d, body] of [
    [digest, data],
    [empty, Buffer.alloc(0)],
  ] as const) {
    const res = await fetch(`${reg.url}/v2/${REPO}/blobs/uploads/?digest=${d}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 201, await res.text());
  }
});

after(async () => {
  await reg?.kill();
  await relay?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  await bucket?.remove();
});

describe('blob GET from S3 without redirect', { timeout: 120_000 }, () => {
  test('a body of several read buffers is byte-exact, with the headers; HEAD is unchanged', async () => {
    const res = await fetch(url(digest));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(data.length));
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(sha256(body), digest);

    const head = await fetch(url(digest), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(data.length));
    assert.equal(head.headers.get('docker-content-digest'), digest);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const missing = await fetch(url(sha256(Buffer.from('never pushed'))), { method: 'HEAD' });
    assert.equal(missing.status, 404);
  });

  test('ranges across read buffers, and the last byte, are exact', async () => {
    for (const [start, end] of [
      [2 * MiB - 7, 6 * MiB + 9],
      [0, 2 * MiB],
      [data.length - 1, data.length - 1],
    ] as const) {
      const res = await fetch(url(digest), { headers: { range: `bytes=${start}-${end}` } });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
      const body = await res.arrayBuffer().catch(async (err: unknown) => {
        // What Pier said about it (the warning of a cut GET names the cause).
        await sleep(300);
        throw new Error(`bytes ${start}-${end}: ${String(err)}; Pier's warnings: ${JSON.stringify(reg.logs.filter((l) => Number(l.level) >= 40))}`);
      });
      assert.ok(Buffer.from(body).equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
  });

  test('an empty blob is an empty body', async () => {
    const res = await fetch(url(empty));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), '0');
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('clients that leave midway leave no S3 connection or descriptor behind; the next downloads are whole', async () => {
    // Settle, then count what an idle Pier holds.
    await (await fetch(url(digest))).arrayBuffer();
    await sleep(200);
    const fdsBefore = pierFds();
    // More than the SDK's agent pools (50 sockets), so a leak would starve the downloads after it.
    for (let i = 0; i < 60; i++) await abortMidway(url(digest));
    const all = await Promise.all([0, 1, 2].map(async () => Buffer.from(await (await fetch(url(digest))).arrayBuffer())));
    for (const body of all) assert.equal(sha256(body), digest);
    let fds = pierFds();
    for (let i = 0; i < 50 && (fds > fdsBefore + 4 || relay.open() > 5); i++) {
      await sleep(100);
      fds = pierFds();
    }
    assert.ok(fds <= fdsBefore + 4, `Pier holds ${fds} descriptors after 60 aborted downloads, ${fdsBefore} before`);
    assert.ok(relay.open() <= 5, `${relay.open()} connections to S3 still open`);
  });

  test('S3 failing midway cuts the client connection (a short body, never wrong bytes); the next GET is whole', async () => {
    relay.cutAfter = 3 * MiB;
    try {
      const res = await getAll(url(digest));
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(data.length));
      assert.ok(res.cut, 'the body ended with the connection cut');
      assert.ok(res.body.length < data.length, `${res.body.length} bytes`);
      assert.ok(res.body.equals(data.subarray(0, res.body.length)), 'what arrived is the blob’s beginning');
    } finally {
      relay.cutAfter = undefined;
    }
    const again = await fetch(url(digest));
    assert.equal(sha256(Buffer.from(await again.arrayBuffer())), digest);
  });
});
