/**
 * The S3 blob store on a real S3-compatible server (Ceph RGW, started by
 * scripts/test.sh): the shared suite, then what only an object store with
 * session state in the database has to get right — chunks of one upload
 * appended through two store instances (two replicas) with small and
 * odd-sized chunks, the 5 MiB part minimum, cancel aborting multipart
 * uploads, Range reads, and presigned redirects.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { Digest } from '../../src/oci/digest.js';
import { S3BlobStore } from '../../src/store/blob/s3/s3-blob-store.js';
import type { Database } from '../../src/store/meta/sql/schema.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { SqlUploadStateStore } from '../../src/store/meta/sql/sql-upload-state-store.js';
import { tempDir } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { testBucket, type TestBucket } from '../helpers/s3.js';
import { blobStoreSuite } from './blob-store-suite.js';

/** One "replica": its own database connection and S3 client over the shared database file and bucket. */
async function replica(bucket: TestBucket, dbFile: string, redirect = false): Promise<{ store: S3BlobStore; db: Kysely<Database> }> {
  const db = await openSqliteDatabase(dbFile);
  const store = await S3BlobStore.open(
    { bucket: bucket.name, region: bucket.env.region, endpoint: bucket.env.endpoint, accessKeyId: bucket.env.accessKeyId, secretAccessKey: bucket.env.secretAccessKey, forcePathStyle: true, redirect },
    new SqlUploadStateStore(db),
  );
  return { store, db };
}

blobStoreSuite('s3 (RGW)', async () => {
  const bucket = await testBucket();
  const dir = await tempDir('pier-s3blob-');
  const { store, db } = await replica(bucket, path.join(dir, 'pier.db'));
  return {
    store,
    async cleanup() {
      await db.destroy();
      await bucket.remove();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('S3 blob store: sessions across replicas', () => {
  const withTwo = (fn: (a: S3BlobStore, b: S3BlobStore, bucket: TestBucket) => Promise<void>, redirect = false) => async () => {
    const bucket = await testBucket();
    const dir = await tempDir('pier-s3blob-');
    const file = path.join(dir, 'pier.db');
    const a = await replica(bucket, file, redirect);
    const b = await replica(bucket, file, redirect);
    try {
      await fn(a.store, b.store, bucket);
    } finally {
      await a.store.close();
      await b.store.close();
      await a.db.destroy();
      await b.db.destroy();
      await bucket.remove();
      await rm(dir, { recursive: true, force: true });
    }
  };

  /** Appends `data` in chunks of the given sizes, alternating between the stores. */
  async function alternate(stores: S3BlobStore[], id: string, data: Buffer, sizes: number[]): Promise<void> {
    let offset = 0;
    for (let i = 0; offset < data.length; i++) {
      const size = Math.min(sizes[i % sizes.length]!, data.length - offset);
      const store = stores[i % stores.length]!;
      const info = await store.append(id, offset, Readable.from([data.subarray(offset, offset + size)]));
      offset += size;
      assert.equal(info.size, offset);
      assert.equal((await stores[(i + 1) % stores.length]!.uploadInfo(id)).size, offset, 'the other replica sees the new size');
    }
  }

  test(
    '1 MiB chunks, each on the other replica, commit across the 5 MiB part minimum; staged objects are cleaned up',
    withTwo(async (a, b, bucket) => {
      const data = randomBytes(13 * 1024 * 1024 + 12345);
      const id = await a.startUpload();
      await alternate([a, b], id, data, [1024 * 1024]);
      const digest = Digest.of(data);
      assert.deepEqual(await b.commit(id, digest, data.length), { size: data.length });
      assert.deepEqual(await readAll(await a.open(digest)), data);
      assert.deepEqual(await bucket.keys('uploads/'), [], 'no staged chunk or assembled object left');
      assert.equal(await bucket.openMultipartUploads(), 0);
    }),
  );

  test(
    'odd-sized chunks (1 byte to 9 MiB) alternating replicas, committed by the replica that wrote the last one',
    withTwo(async (a, b) => {
      const data = randomBytes(23 * 1024 * 1024 + 7);
      const id = await b.startUpload();
      await alternate([a, b], id, data, [1, 777_777, 9 * 1024 * 1024 + 3, 65_537, 4_999_999, 5 * 1024 * 1024]);
      const digest = Digest.of(data);
      await a.commit(id, digest);
      assert.deepEqual(await readAll(await b.open(digest)), data);
      const mid = { start: 5 * 1024 * 1024 - 10, end: 5 * 1024 * 1024 + 10 };
      assert.deepEqual(await readAll(await b.open(digest, mid)), data.subarray(mid.start, mid.end + 1), 'a Range across a part boundary');
    }),
  );

  test(
    'a wrong digest after chunks on two replicas discards everything; a second writer is refused while one holds the session',
    withTwo(async (a, b, bucket) => {
      const data = randomBytes(7 * 1024 * 1024);
      const id = await a.startUpload();
      await alternate([a, b], id, data, [3 * 1024 * 1024]);
      await assert.rejects(b.commit(id, Digest.of('something else')), { code: 'ERR_DIGEST_MISMATCH' });
      await assert.rejects(a.uploadInfo(id), { code: 'ERR_UPLOAD_NOT_FOUND' });
      assert.deepEqual(await bucket.keys(), []);
      assert.equal(await bucket.openMultipartUploads(), 0);

      const held = await a.startUpload();
      const slow = new Readable({ read() {} });
      slow.push(Buffer.alloc(10));
      const first = a.append(held, 0, slow);
      await new Promise((r) => setTimeout(r, 200));
      await assert.rejects(b.append(held, 0, Readable.from([Buffer.alloc(1)])), { code: 'ERR_UPLOAD_BUSY' });
      slow.push(null);
      assert.equal((await first).size, 10);
    }),
  );

  test(
    'cancel and expiry abort the multipart upload and delete staged chunks',
    withTwo(async (a, b, bucket) => {
      const id = await a.startUpload();
      await a.append(id, 0, Readable.from([randomBytes(6 * 1024 * 1024)]));
      await b.append(id, 6 * 1024 * 1024, Readable.from([randomBytes(1000)]));
      assert.equal(await bucket.openMultipartUploads(), 1);
      assert.ok((await b.staleUploads(new Date(Date.now() + 60_000))).includes(id));
      await b.cancelUpload(id);
      assert.equal(await bucket.openMultipartUploads(), 0);
      assert.deepEqual(await bucket.keys(), []);
      await assert.rejects(a.uploadInfo(id), { code: 'ERR_UPLOAD_NOT_FOUND' });
    }),
  );

  test(
    'leftovers of a crash (a multipart upload or a staged object with no session row) are listed as stale and cancelled',
    withTwo(async (a, _b, bucket) => {
      const mpuId = randomUUID();
      const stagedId = randomUUID();
      await bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: `uploads/${mpuId}/data` }));
      await bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key: `uploads/${stagedId}/staged/0`, Body: Buffer.from('left behind') }));
      const live = await a.startUpload();
      await a.append(live, 0, Readable.from([Buffer.from('in progress')]));
      assert.deepEqual(await a.staleUploads(new Date(Date.now() - 60_000)), [], 'nothing is stale yet');
      const stale = await a.staleUploads(new Date(Date.now() + 60_000));
      assert.deepEqual([...stale].sort(), [live, mpuId, stagedId].sort());
      for (const id of [mpuId, stagedId]) await a.cancelUpload(id);
      assert.equal(await bucket.openMultipartUploads(), 0);
      assert.deepEqual(await bucket.keys(), [`uploads/${live}/staged/0`], 'the live session keeps its bytes');
    }),
  );

  test(
    'sha512 across replicas is verified by reading the assembled object back',
    withTwo(async (a, b) => {
      const data = randomBytes(11 * 1024 * 1024);
      const digest = Digest.parse(`sha512:${createHash('sha512').update(data).digest('hex')}`);
      const id = await a.startUpload();
      await alternate([a, b], id, data, [6 * 1024 * 1024]);
      await a.commit(id, digest);
      assert.deepEqual(await readAll(await b.open(digest)), data);
    }),
  );

  test(
    'with redirect on, locate gives a presigned URL that curl follows, whole and with a Range',
    withTwo(async (a) => {
      const data = randomBytes(100_000);
      const digest = Digest.of(data);
      const id = await a.startUpload();
      await a.append(id, 0, Readable.from([data]));
      await a.commit(id, digest);
      const location = await a.locate(digest);
      assert.equal(location?.kind, 'redirect');
      const url = location.kind === 'redirect' ? location.url : '';
      const whole = await run('sh', ['-c', 'curl -fsS "$0" | sha256sum', url], { timeoutMs: 30_000 });
      assert.equal(whole.stdout.split(' ')[0], digest.encoded);
      const part = await run('sh', ['-c', 'curl -fsS -r 10-19 "$0" | od -An -tx1 | tr -d " \\n"', url], { timeoutMs: 30_000 });
      assert.equal(part.stdout, data.subarray(10, 20).toString('hex'));
    }, true),
  );
});
