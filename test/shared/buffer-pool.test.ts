import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/shared/buffer-pool.js';

test('a pool reuses given-back buffers, keeps at most maxIdle, and only of its size', () => {
  const pool = new BufferPool(1024, 2);
  const [a, b, c] = [pool.take(), pool.take(), pool.take()];
  assert.ok(a !== b && b !== c && a.length === 1024);
  pool.give(a);
  pool.give(b);
  pool.give(c); // a third idle one is dropped
  pool.give(Buffer.alloc(10)); // not of its size
  const again = [pool.take(), pool.take(), pool.take()];
  assert.deepEqual(new Set(again.slice(0, 2)), new Set([a, b]), 'the two kept are reused');
  assert.ok(again[2] !== c && again[2]!.length === 1024, 'then new ones');
});

test('a shared pool hands out buffers over SharedArrayBuffers', () => {
  const pool = new BufferPool(4096, 1, true);
  assert.ok(pool.take().buffer instanceof SharedArrayBuffer);
  assert.ok(!(new BufferPool(4096, 1).take().buffer instanceof SharedArrayBuffer));
});
