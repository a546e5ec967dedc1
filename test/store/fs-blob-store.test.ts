import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { stopHashThread, hashThreadRunning } from '../../src/shared/hash-thread.js';
import { BlobStoreError } from '../../src/store/blob/blob-store.js';
import { FsBlobStore } from '../../src/store/blob/fs/fs-blob-store.js';
import { tempDir } from '../helpers/registry.js';
import { blobStoreSuite, socketPieces } from './blob-store-suite.js';

blobStoreSuite('filesystem', async () => {
  const dir = await tempDir('pier-fsblob-');
  return { store: await FsBlobStore.open(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

test('uploads receiving at once are hashed on the hash thread; a lost thread makes commit re-read the file', async () => {
  const dir = await tempDir('pier-fsblob-');
  const store = await FsBlobStore.open(dir);
  try {
    await stopHashThread();
    const datas = [randomBytes(2 * 1024 * 1024), randomBytes(2 * 1024 * 1024 + 1), randomBytes(2 * 1024 * 1024 + 2)];
    const ids = await Promise.all(datas.map(() => store.startUpload()));
    await Promise.all(datas.map((data, i) => store.append(ids[i]!, 0, socketPieces(data))));
    assert.equal(hashThreadRunning(), true, 'two uploads receiving at once: the hash thread started');
    // Lose the thread between append and commit: the running hashes are gone, the files are not.
    await stopHashThread();
    for (const i of [0, 1]) {
      assert.deepEqual(await store.commit(ids[i]!, Digest.of(datas[i]!), datas[i]!.length), { size: datas[i]!.length });
    }
    // And a wrong digest is still refused after re-reading.
    await assert.rejects(store.commit(ids[2]!, Digest.of(datas[0]!)), (err: unknown) => err instanceof BlobStoreError && err.code === 'ERR_DIGEST_MISMATCH');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
