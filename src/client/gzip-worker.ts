/**
 * Worker for {@link ../gzip.ts}: deflates one chunk of a gzip member. A
 * chunk that does not compress (sampled at level 1) is stored, which keeps
 * incompressible layers at memcpy speed.
 */
import { parentPort } from 'node:worker_threads';
import { constants, deflateRawSync } from 'node:zlib';

interface Job {
  id: number;
  data: Uint8Array;
  last: boolean;
  level: number;
}

const SAMPLE = 64 * 1024;

parentPort?.on('message', (job: Job) => {
  let level = job.level;
  if (level > 0 && job.data.length >= SAMPLE) {
    const sample = deflateRawSync(job.data.subarray(0, SAMPLE), { level: 1 });
    if (sample.length > SAMPLE * 0.97) level = 0;
  }
  const out = deflateRawSync(job.data, {
    level,
    finishFlush: job.last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
  });
  const copy = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  parentPort?.postMessage({ id: job.id, data: copy }, [copy.buffer]);
});
