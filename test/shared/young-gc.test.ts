/**
 * The young-generation hint frees dead body buffers: after
 * YOUNG_GC_EVERY bytes are noted, 16 MiB of unreferenced 64 KiB Buffers
 * (what Node's HTTP parser leaves behind an upload) are given back, which
 * V8 on its own does only when it next decides to collect.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { noteBytesReceived, receiving, YOUNG_GC_EVERY, YOUNG_GC_SCALE_MAX } from '../../src/shared/young-gc.js';

const MiB = 1024 * 1024;

function makeGarbage(): void {
  for (let i = 0; i < 256; i++) Buffer.alloc(64 * 1024, 1);
}

test('every YOUNG_GC_EVERY bytes received, dead body buffers are freed', async () => {
  for (let round = 0; round < 3; round++) {
    let before = 0;
    // A collection V8 starts on its own may free them first: then make them again.
    for (let tries = 0; tries < 5 && before < 16 * MiB; tries++) {
      makeGarbage();
      await new Promise((r) => setImmediate(r));
      before = process.memoryUsage().arrayBuffers;
    }
    assert.ok(before >= 16 * MiB, `16 MiB of dead buffers in place (${before} bytes of ArrayBuffers)`);
    noteBytesReceived(YOUNG_GC_EVERY);
    // The array buffers' memory is swept right after the collection, possibly on a helper thread.
    let after = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 100 && after > before - 12 * MiB; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = process.memoryUsage().arrayBuffers;
    }
    assert.ok(after <= before - 12 * MiB, `round ${round}: ArrayBuffers ${before} -> ${after} bytes after the hint`);
  }
});

/** Runs `fn`, then counts the young-generation collections it forced. */
async function forcedScavenges(fn: () => void): Promise<number> {
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as unknown as { detail: { kind: number; flags: number } }).detail;
      if (detail.kind === constants.NODE_PERFORMANCE_GC_MINOR && (detail.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) count++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  fn();
  // GC entries are delivered on a later turn.
  await new Promise((r) => setTimeout(r, 50));
  observer.disconnect();
  return count;
}

test('the interval grows with the uploads receiving, up to YOUNG_GC_SCALE_MAX times', async () => {
  // Start from a fresh count: whatever was noted before is collected first.
  noteBytesReceived(YOUNG_GC_EVERY * YOUNG_GC_SCALE_MAX);
  assert.equal(await forcedScavenges(() => noteBytesReceived(YOUNG_GC_EVERY)), 1, 'no upload receiving: every YOUNG_GC_EVERY');

  const one = receiving();
  assert.equal(await forcedScavenges(() => noteBytesReceived(YOUNG_GC_EVERY)), 1, 'one upload: every YOUNG_GC_EVERY');
  const others = [receiving(), receiving()];
  assert.equal(await forcedScavenges(() => noteBytesReceived(2 * YOUNG_GC_EVERY)), 0, 'three uploads: not after 2x');
  assert.equal(await forcedScavenges(() => noteBytesReceived(YOUNG_GC_EVERY)), 1, 'three uploads: after 3x');

  const many = Array.from({ length: 20 }, () => receiving());
  assert.equal(await forcedScavenges(() => noteBytesReceived((YOUNG_GC_SCALE_MAX - 1) * YOUNG_GC_EVERY)), 0, '23 uploads: not before the cap');
  assert.equal(await forcedScavenges(() => noteBytesReceived(YOUNG_GC_EVERY)), 1, '23 uploads: at the cap');

  for (const done of [...many, ...others]) done();
  one();
  one(); // a second call changes nothing
  assert.equal(await forcedScavenges(() => noteBytesReceived(YOUNG_GC_EVERY)), 1, 'all done: every YOUNG_GC_EVERY again');
});
