/**
 * The young-generation hint frees dead body buffers: after
 * YOUNG_GC_EVERY bytes are noted, 16 MiB of unreferenced 64 KiB Buffers
 * (what Node's HTTP parser leaves behind an upload) are given back, which
 * V8 on its own does only when it next decides to collect.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noteBytesReceived, YOUNG_GC_EVERY } from '../../src/shared/young-gc.js';

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
