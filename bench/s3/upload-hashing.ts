/**
 * How to hash an upload whose chunks land on different replicas (decision
 * 0082): `node dist/bench/s3/upload-hashing.js [--mib 1024] [--chunk-mib 1]`
 *
 * Measures CPU seconds (user + system of this process) per GiB for:
 *   native         Node's SHA-256 over the bytes (what a session on one replica costs)
 *   wasm+save      hash-wasm's SHA-256, saving its state after every chunk (what
 *                  exportable state in the database costs, for every chunked upload)
 *   upload         one append of everything through S3BlobStore (parts of 8 MiB,
 *                  native hash) and its commit (a server-side copy)
 *   re-read        a GET of the stored object hashed natively (what a session
 *                  that moved between replicas costs at commit)
 * The S3 endpoint comes from PIER_TEST_S3_* (test/helpers/s3.ts); a bucket is
 * made for the run and removed after.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createSHA256 } from 'hash-wasm';
import { Digest } from '../../src/oci/digest.js';
import { S3BlobStore } from '../../src/store/blob/s3/s3-blob-store.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { SqlUploadStateStore } from '../../src/store/meta/sql/sql-upload-state-store.js';
import { testBucket } from '../../test/helpers/s3.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' }, 'chunk-mib': { type: 'string', default: '1' } } });
const MiB = 1 << 20;
const total = Number(values.mib) * MiB;
const chunk = Number(values['chunk-mib']) * MiB;
const block = Buffer.alloc(chunk);
randomFillSync(block);

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measure(name: string, fn: () => Promise<void> | void): Promise<void> {
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  await fn();
  const cpu = cpuSeconds() - cpu0;
  const wall = (performance.now() - t0) / 1000;
  const gib = total / (1024 * MiB);
  console.log(`${name.padEnd(10)} ${(cpu / gib).toFixed(2)} CPU-s/GiB   ${(wall / gib).toFixed(2)} s/GiB wall`);
}

await measure('native', () => {
  const h = createHash('sha256');
  for (let n = 0; n < total; n += chunk) h.update(block);
  h.digest('hex');
});

await measure('wasm+save', async () => {
  const h = await createSHA256();
  h.init();
  for (let n = 0; n < total; n += chunk) {
    h.update(block);
    // What a replica would write to the database after each chunk, and the next one load.
    const state = h.save();
    h.load(state);
  }
  h.digest('hex');
});

const bucket = await testBucket();
const dir = await mkdtemp(path.join(os.tmpdir(), 'pier-bench-s3-'));
const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
const { env } = bucket;
const store = await S3BlobStore.open(
  { bucket: bucket.name, region: env.region, endpoint: env.endpoint, accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey, forcePathStyle: true, redirect: false },
  new SqlUploadStateStore(db),
);
try {
  const digestOf = createHash('sha256');
  for (let n = 0; n < total; n += chunk) digestOf.update(block);
  const digest = Digest.parse(`sha256:${digestOf.digest('hex')}`);
  const id = await store.startUpload();
  await measure('upload', async () => {
    await store.append(id, 0, Readable.from((function* () {
      for (let n = 0; n < total; n += chunk) yield block;
    })()));
    await store.commit(id, digest);
  });
  await measure('re-read', async () => {
    const h = createHash('sha256');
    for await (const c of (await store.open(digest)) as AsyncIterable<Buffer>) h.update(c);
    if (h.digest('hex') !== digest.encoded) throw new Error('read back wrong bytes');
  });
} finally {
  await store.close();
  await db.destroy();
  await bucket.remove();
  await rm(dir, { recursive: true, force: true });
}
