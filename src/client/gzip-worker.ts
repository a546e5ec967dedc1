/**
 * Worker for {@link ../gzip.ts}: deflates one chunk of a gzip member.
 *
 * A chunk that does not compress is handed back untouched and framed as
 * stored blocks by the main thread (a copy, not a deflate pass): already
 * compressed or random layers then cost what copying them costs. The test
 * deflates a 16 KiB sample (four 4 KiB pieces spread over the chunk) at
 * level 1; a full pass would cost 15 times more than the whole stored path.
 */
import { parentPort } from 'node:worker_threads';
import { constants, deflateRawSync } from 'node:zlib';

interface Job {
  id: number;
  data: Uint8Array;
  last: boolean;
  level: number;
}

const PIECE = 4 * 1024;
const PIECES = 4;

/** Whether level-1 deflate shrinks a sample of `data` below 97 %. Deterministic in `data`. */
export function compresses(data: Uint8Array): boolean {
  if (data.length < PIECE * PIECES * 4) {
    return deflateRawSync(data, { level: 1 }).length <= data.length * 0.97;
  }
  const sample = Buffer.allocUnsafe(PIECE * PIECES);
  for (let i = 0; i < PIECES; i++) {
    const at = Math.floor((data.length / PIECES) * i);
    sample.set(data.subarray(at, at + PIECE), i * PIECE);
  }
  return deflateRawSync(sample, { level: 1 }).length <= sample.length * 0.97;
}

parentPort?.on('message', (job: Job) => {
  if (job.level === 0 || (job.data.length > 0 && !compresses(job.data))) {
    parentPort?.postMessage({ id: job.id, stored: true, data: job.data }, [job.data.buffer as ArrayBuffer]);
    return;
  }
  const out = deflateRawSync(job.data, {
    level: job.level,
    finishFlush: job.last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
  });
  const copy = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  parentPort?.postMessage({ id: job.id, stored: false, data: copy }, [copy.buffer]);
});
