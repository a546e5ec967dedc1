/**
 * Running hashes on the hash thread: the digest of shared and unshared
 * bytes added in order, what a lost thread means, and the choice between
 * the calling thread and the hash thread.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ChoosingHash, InlineHash, ThreadHash, hashThreadRunning, stopHashThread } from '../../src/shared/hash-thread.js';

function shared(bytes: Buffer): Buffer {
  const b = Buffer.from(new SharedArrayBuffer(bytes.length));
  bytes.copy(b);
  return b;
}

test('a thread hash of shared and unshared pieces, added in order, is the sha256 of their concatenation', async () => {
  const pieces = [randomBytes(1), randomBytes(512 * 1024), randomBytes(65536 + 3), randomBytes(1024 * 1024), randomBytes(0), randomBytes(777)];
  const whole = createHash('sha256').update(Buffer.concat(pieces)).digest('hex');
  const a = new ThreadHash();
  const b = new ThreadHash();
  // Interleaved with a second hash: each keeps its own state.
  await Promise.all(pieces.map((p, i) => Promise.all([a.update(i % 2 ? shared(p) : p), b.update(p.subarray(0, 1))])));
  assert.equal(await a.digest(), whole);
  // The hash goes on after a digest.
  const more = randomBytes(1000);
  await a.update(shared(more));
  assert.equal(await a.digest(), createHash('sha256').update(Buffer.concat([...pieces, more])).digest('hex'));
  assert.equal(await b.digest(), createHash('sha256').update(Buffer.concat(pieces.map((p) => p.subarray(0, 1)))).digest('hex'));
  a.dispose();
  b.dispose();
  assert.equal(await a.digest(), undefined, 'a disposed hash has no digest');
});

test('when the hash thread is lost, its hashes have no digest, and hashes begun afterwards work', async () => {
  const lost = new ThreadHash();
  await lost.update(randomBytes(1000));
  assert.equal(hashThreadRunning(), true);
  await stopHashThread();
  // Updates after the loss resolve (nothing waits forever); the digest says "unknown".
  await lost.update(randomBytes(10));
  assert.equal(await lost.digest(), undefined);
  lost.dispose();

  const fresh = new ThreadHash();
  const data = randomBytes(300_000);
  await fresh.update(shared(data));
  assert.equal(await fresh.digest(), createHash('sha256').update(data).digest('hex'));
  fresh.dispose();
});

test('a choosing hash runs inline when the main thread is not busy at its first update, on the thread when it is', async () => {
  const data = randomBytes(100_000);
  const want = createHash('sha256').update(data).digest('hex');
  let busy = false;
  const lone = new ChoosingHash(() => busy);
  assert.equal(lone.thread, undefined);
  await lone.update(data);
  busy = true; // later changes do not move a running hash
  assert.equal(lone.thread, 'inline');
  assert.equal(await lone.digest(), want);

  const crowded = new ChoosingHash(() => busy);
  await crowded.update(shared(data));
  assert.equal(crowded.thread, 'worker');
  assert.equal(await crowded.digest(), want);

  const empty = new ChoosingHash(() => true);
  assert.equal(await empty.digest(), createHash('sha256').digest('hex'), 'no bytes: the empty digest');
  assert.equal(empty.thread, 'inline', 'an empty digest starts no thread');
  for (const h of [lone, crowded, empty]) h.dispose();
  assert.equal(await crowded.digest(), undefined);

  const inline = new InlineHash();
  await inline.update(data);
  assert.equal(await inline.digest(), want);
});
