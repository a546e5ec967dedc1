/**
 * The behaviour every BlobStore adapter must have. Each adapter's test
 * file calls {@link blobStoreSuite} with a factory (fs today; S3 next).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { BlobStoreError, type BlobStore } from '../../src/store/blob/blob-store.js';

export interface BlobStoreFixture {
  store: BlobStore;
  cleanup(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof BlobStoreError && err.code === code);
}

/** `data` as a socket delivers it: 64 KiB pieces, each on a later turn of the event loop. */
export function socketPieces(data: Buffer): Readable {
  async function* pieces() {
    for (let at = 0; at < data.length; at += 65536) {
      await new Promise((r) => setImmediate(r));
      yield data.subarray(at, at + 65536);
    }
  }
  return Readable.from(pieces());
}

export function blobStoreSuite(name: string, open: () => Promise<BlobStoreFixture>): void {
  const withStore = (fn: (store: BlobStore) => Promise<void>) => async () => {
    const fixture = await open();
    try {
      await fn(fixture.store);
    } finally {
      await fixture.store.close();
      await fixture.cleanup();
    }
  };

  describe(`BlobStore: ${name}`, () => {
    test(
      'an upload in several appends commits to a blob that reads back whole and in ranges',
      withStore(async (store) => {
        const data = randomBytes(300_000);
        const digest = Digest.of(data);
        const id = await store.startUpload();
        assert.equal((await store.uploadInfo(id)).size, 0);
        assert.equal((await store.append(id, 0, Readable.from([data.subarray(0, 100_000)]))).size, 100_000);
        assert.equal((await store.append(id, 100_000, Readable.from([data.subarray(100_000)]))).size, 300_000);
        assert.equal(await store.stat(digest), undefined, 'not visible before commit');
        assert.deepEqual(await store.commit(id, digest, 300_000), { size: 300_000 });
        assert.deepEqual(await store.stat(digest), { size: 300_000 });
        assert.deepEqual(await readAll(await store.open(digest)), data);
        assert.deepEqual(await readAll(await store.open(digest, { start: 10, end: 19 })), data.subarray(10, 20));
        await rejectsWith(store.uploadInfo(id), 'ERR_UPLOAD_NOT_FOUND');
      }),
    );

    test(
      'appends at the wrong offset are refused and change nothing',
      withStore(async (store) => {
        const id = await store.startUpload();
        await store.append(id, 0, Readable.from([Buffer.from('abc')]));
        await rejectsWith(store.append(id, 0, Readable.from([Buffer.from('abc')])), 'ERR_UPLOAD_OFFSET');
        await rejectsWith(store.append(id, 10, Readable.from([Buffer.from('abc')])), 'ERR_UPLOAD_OFFSET');
        assert.equal((await store.uploadInfo(id)).size, 3);
      }),
    );

    test(
      'a digest mismatch discards the upload and stores nothing',
      withStore(async (store) => {
        const id = await store.startUpload();
        await store.append(id, 0, Readable.from([Buffer.from('hello')]));
        const wrong = Digest.of('other');
        await rejectsWith(store.commit(id, wrong), 'ERR_DIGEST_MISMATCH');
        assert.equal(await store.stat(wrong), undefined);
        assert.equal(await store.stat(Digest.of('hello')), undefined);
        await rejectsWith(store.uploadInfo(id), 'ERR_UPLOAD_NOT_FOUND');
      }),
    );

    test(
      'a size mismatch is refused',
      withStore(async (store) => {
        const id = await store.startUpload();
        await store.append(id, 0, Readable.from([Buffer.from('hello')]));
        await rejectsWith(store.commit(id, Digest.of('hello'), 6), 'ERR_SIZE_MISMATCH');
        assert.equal(await store.stat(Digest.of('hello')), undefined);
      }),
    );

    test(
      'a stream that fails midway keeps what arrived, and the upload resumes from there',
      withStore(async (store) => {
        const data = randomBytes(64 * 1024);
        const id = await store.startUpload();
        async function* broken() {
          yield data.subarray(0, 1000);
          await new Promise((r) => setTimeout(r, 5));
          throw new Error('connection reset');
        }
        await assert.rejects(store.append(id, 0, Readable.from(broken())));
        const { size } = await store.uploadInfo(id);
        assert.equal(size, 1000);
        await store.append(id, size, Readable.from([data.subarray(size)]));
        await store.commit(id, Digest.of(data));
        assert.deepEqual(await readAll(await store.open(Digest.of(data))), data);
      }),
    );

    test(
      'an append of many small pieces, arriving with pauses, keeps every byte in order',
      withStore(async (store) => {
        // 6 MiB in 64 KiB pieces (what a socket delivers): several write batches and free-space checks.
        const data = randomBytes(6 * 1024 * 1024 + 1234);
        async function* pieces() {
          for (let at = 0, n = 0; at < data.length; at += 65536, n++) {
            if (n % 7 === 0) await new Promise((r) => setImmediate(r));
            yield data.subarray(at, at + 65536);
          }
        }
        const id = await store.startUpload();
        assert.equal((await store.append(id, 0, Readable.from(pieces()))).size, data.length);
        assert.equal((await store.uploadInfo(id)).size, data.length);
        assert.deepEqual(await store.commit(id, Digest.of(data), data.length), { size: data.length });
        assert.deepEqual(await readAll(await store.open(Digest.of(data))), data);
      }),
    );

    test(
      'pieces of every size, from one byte to more than a write batch, keep every byte in order',
      withStore(async (store) => {
        // The fs store copies pieces into 1 MiB batches: pieces that straddle, fill, or span several batches.
        const MiB = 1024 * 1024;
        const sizes = [1, 3 * MiB + 5, 65536, 777, MiB - 1, MiB + 1, MiB, 2];
        const data = randomBytes(sizes.reduce((a, b) => a + b, 0) * 2);
        async function* pieces() {
          let at = 0;
          for (let n = 0; at < data.length; n++) {
            const size = sizes[n % sizes.length]!;
            if (n % 3 === 0) await new Promise((r) => setImmediate(r));
            yield data.subarray(at, at + size);
            at += size;
          }
        }
        const id = await store.startUpload();
        assert.equal((await store.append(id, 0, Readable.from(pieces()))).size, data.length);
        assert.deepEqual(await store.commit(id, Digest.of(data), data.length), { size: data.length });
        assert.deepEqual(await readAll(await store.open(Digest.of(data))), data);
      }),
    );

    test(
      'uploads receiving at the same time each commit with their own digest',
      withStore(async (store) => {
        // Several at once: the fs store hashes on its hash thread and uses its smaller batches then.
        const datas = [0, 1, 2, 3].map((i) => randomBytes(3 * 1024 * 1024 + i * 1000));
        const ids = await Promise.all(datas.map(() => store.startUpload()));
        await Promise.all(datas.map((data, i) => store.append(ids[i]!, 0, socketPieces(data))));
        // A second append to each, again all at once, continues each running hash.
        const tails = datas.map(() => randomBytes(70_000));
        await Promise.all(tails.map((tail, i) => store.append(ids[i]!, datas[i]!.length, socketPieces(tail))));
        for (const [i, data] of datas.entries()) {
          const whole = Buffer.concat([data, tails[i]!]);
          assert.deepEqual(await store.commit(ids[i]!, Digest.of(whole), whole.length), { size: whole.length });
          assert.deepEqual(await readAll(await store.open(Digest.of(whole))), whole);
        }
      }),
    );

    test(
      'an empty body appends nothing and the upload goes on',
      withStore(async (store) => {
        const id = await store.startUpload();
        await store.append(id, 0, Readable.from([Buffer.from('abc')]));
        assert.equal((await store.append(id, 3, Readable.from([]))).size, 3);
        assert.equal((await store.append(id, 3, Readable.from([Buffer.from('def')]))).size, 6);
        await store.commit(id, Digest.of('abcdef'), 6);
        assert.deepEqual(await readAll(await store.open(Digest.of('abcdef'))), Buffer.from('abcdef'));
      }),
    );

    test(
      'a second append while one is receiving is refused with ERR_UPLOAD_BUSY; the first completes',
      withStore(async (store) => {
        const id = await store.startUpload();
        const slow = new Readable({ read() {} });
        slow.push(Buffer.alloc(10, 1));
        const first = store.append(id, 0, slow);
        await new Promise((r) => setTimeout(r, 100));
        await rejectsWith(store.append(id, 0, Readable.from([Buffer.alloc(1)])), 'ERR_UPLOAD_BUSY');
        slow.push(Buffer.alloc(5, 2));
        slow.push(null);
        assert.equal((await first).size, 15);
        assert.equal((await store.append(id, 15, Readable.from([Buffer.alloc(1, 3)]))).size, 16);
      }),
    );

    test(
      'an append that passes maxBytes midway is refused; the upload keeps a prefix of what was sent and resumes from its size',
      withStore(async (store) => {
        const data = randomBytes(3 * 1024 * 1024);
        async function* pieces() {
          for (let at = 0; at < data.length; at += 65536) yield data.subarray(at, at + 65536);
        }
        const id = await store.startUpload();
        await rejectsWith(store.append(id, 0, Readable.from(pieces()), { maxBytes: 2 * 1024 * 1024 + 100 }), 'ERR_SIZE_MISMATCH');
        const { size } = await store.uploadInfo(id);
        assert.ok(size <= 2 * 1024 * 1024 + 100, `kept ${size} bytes`);
        await store.append(id, size, Readable.from([data.subarray(size)]));
        await store.commit(id, Digest.of(data), data.length);
        assert.deepEqual(await readAll(await store.open(Digest.of(data))), data);
      }),
    );

    test(
      'maxBytes bounds an append',
      withStore(async (store) => {
        const id = await store.startUpload();
        await rejectsWith(store.append(id, 0, Readable.from([Buffer.alloc(20)]), { maxBytes: 10 }), 'ERR_SIZE_MISMATCH');
      }),
    );

    test(
      'sha512 commits verify with sha512',
      withStore(async (store) => {
        const data = randomBytes(1000);
        const digest = Digest.parse(`sha512:${createHash('sha512').update(data).digest('hex')}`);
        const id = await store.startUpload();
        await store.append(id, 0, Readable.from([data]));
        await store.commit(id, digest);
        assert.deepEqual(await readAll(await store.open(digest)), data);
      }),
    );

    test(
      'committing content that already exists is idempotent',
      withStore(async (store) => {
        const data = Buffer.from('same bytes');
        for (let i = 0; i < 2; i++) {
          const id = await store.startUpload();
          await store.append(id, 0, Readable.from([data]));
          assert.deepEqual(await store.commit(id, Digest.of(data)), { size: data.length });
        }
      }),
    );

    test(
      'unknown blobs and uploads, cancel, delete and stale listing',
      withStore(async (store) => {
        await rejectsWith(store.open(Digest.of('missing')), 'ERR_BLOB_NOT_FOUND');
        await rejectsWith(store.uploadInfo('00000000-0000-0000-0000-000000000000'), 'ERR_UPLOAD_NOT_FOUND');
        await rejectsWith(store.uploadInfo('../../etc/passwd'), 'ERR_UPLOAD_NOT_FOUND');
        const id = await store.startUpload();
        assert.deepEqual(await store.staleUploads(new Date(Date.now() - 60_000)), []);
        assert.ok((await store.staleUploads(new Date(Date.now() + 60_000))).includes(id));
        await store.cancelUpload(id);
        await rejectsWith(store.uploadInfo(id), 'ERR_UPLOAD_NOT_FOUND');
        const u = await store.startUpload();
        await store.append(u, 0, Readable.from([Buffer.from('x')]));
        await store.commit(u, Digest.of('x'));
        await store.delete(Digest.of('x'));
        assert.equal(await store.stat(Digest.of('x')), undefined);
        await store.delete(Digest.of('x'));
      }),
    );
  });
}
