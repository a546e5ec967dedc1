/**
 * The behaviour every UploadStateStore must have (src/store/blob/upload-state.ts):
 * each adapter's test calls {@link uploadStateSuite} with a factory giving two
 * "replicas" over one shared store (SQLite today; PostgreSQL with its issue).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { UploadState, UploadStateStore } from '../../src/store/blob/upload-state.js';

export interface UploadStateFixture {
  /** Two stores over the same database, as two replicas would have. */
  a: UploadStateStore;
  b: UploadStateStore;
  cleanup(): Promise<void>;
}

export function uploadStateSuite(name: string, open: () => Promise<UploadStateFixture>): void {
  const withStores = (fn: (a: UploadStateStore, b: UploadStateStore) => Promise<void>) => async () => {
    const f = await open();
    try {
      await fn(f.a, f.b);
    } finally {
      await f.cleanup();
    }
  };

  describe(`UploadStateStore: ${name}`, () => {
    test(
      'a session starts empty, and what one replica saves the other reads',
      withStores(async (a, b) => {
        const id = randomUUID();
        await a.create(id);
        assert.deepEqual(await b.get(id), { size: 0, multipartId: undefined, parts: [], staged: [], assembled: false });
        assert.equal(await a.acquire(id, 't1', 60_000), 'held');
        const state: UploadState = {
          size: 5 * 1024 * 1024 + 3,
          multipartId: 'mp-1',
          parts: [{ number: 1, etag: '"e1"', size: 5 * 1024 * 1024 }],
          staged: [{ key: `uploads/${id}/staged/5242880`, size: 3 }],
          assembled: false,
        };
        assert.equal(await a.save(id, 't1', state), true);
        await a.release(id, 't1');
        assert.deepEqual(await b.get(id), state);
        assert.equal(await b.get(randomUUID()), undefined);
      }),
    );

    test(
      'one writer at a time: a held session is busy for another token, renewable by its own, free after release or expiry',
      withStores(async (a, b) => {
        const id = randomUUID();
        await a.create(id);
        assert.equal(await a.acquire(id, 't1', 60_000), 'held');
        assert.equal(await b.acquire(id, 't2', 60_000), 'busy');
        assert.equal(await a.acquire(id, 't1', 60_000), 'held', 'renewed');
        await b.release(id, 't2');
        assert.equal(await b.acquire(id, 't2', 60_000), 'busy', 'another token cannot release it');
        await a.release(id, 't1');
        assert.equal(await b.acquire(id, 't2', 1), 'held');
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(await a.acquire(id, 't3', 60_000), 'held', 'an expired hold can be taken');
        assert.equal(await a.acquire(randomUUID(), 't1', 60_000), 'missing');
      }),
    );

    test(
      'saves are fenced: a writer that lost its hold cannot overwrite newer state',
      withStores(async (a, b) => {
        const id = randomUUID();
        await a.create(id);
        const state = (size: number): UploadState => ({ size, multipartId: undefined, parts: [], staged: [], assembled: false });
        assert.equal(await a.acquire(id, 'old', 1), 'held');
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(await b.acquire(id, 'new', 60_000), 'held');
        assert.equal(await b.save(id, 'new', state(10)), true);
        assert.equal(await a.save(id, 'old', state(99)), false);
        assert.equal((await a.get(id))?.size, 10);
        await b.delete(id);
        assert.equal(await b.save(id, 'new', state(11)), false, 'a deleted session cannot be saved');
        await b.delete(id);
      }),
    );

    test(
      'idle sessions: not written since a time and not held',
      withStores(async (a, b) => {
        const idle = randomUUID();
        const held = randomUUID();
        await a.create(idle);
        await a.create(held);
        assert.equal(await b.acquire(held, 't', 60_000), 'held');
        const later = new Date(Date.now() + 60_000);
        assert.deepEqual(await a.idleSince(new Date(Date.now() - 60_000)), []);
        assert.deepEqual(await a.idleSince(later), [idle]);
        await b.release(held, 't');
        assert.deepEqual((await a.idleSince(later)).sort(), [idle, held].sort());
      }),
    );
  });
}
