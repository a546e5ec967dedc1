/**
 * Compression of raw layers (docker-archive, daemon) for the push engine,
 * with the gzip of gzip.ts on the owner's worker threads. The output is
 * deterministic for a layer and settings, so a resumed upload compresses
 * again and skips what the registry already holds, and the diffID cache
 * can name the result before anything is compressed.
 */
import { PassThrough, Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { Digester, type Digest } from '../oci/index.js';
import { ClientError } from './errors.js';
import { createParallelGzip, type GzipSettings, type GzipWorkers } from './gzip.js';
import { meter, type Produced } from './push-transfer.js';
import type { RawLayer } from './sources/source.js';

/** A layer compressed in memory: its chunks as produced (not joined: no copy), digest and size. */
export interface Compressed {
  chunks: Buffer[];
  size: number;
  digest: Digest;
}

/** Compresses a (small) layer into memory; fails, before anything is sent, when the layer fails verification. */
export async function compressInMemory(layer: RawLayer, settings: GzipSettings, workers: GzipWorkers): Promise<Compressed> {
  const chunks: Buffer[] = [];
  const digester = new Digester();
  const gz = pipeline(await layer.open(), createParallelGzip(settings, workers), () => undefined);
  for await (const c of gz as AsyncIterable<Buffer>) {
    chunks.push(c);
    digester.update(c);
  }
  return { chunks, size: digester.size, digest: digester.digest() };
}

/** The bytes of a layer compressed in memory, from `offset`. */
export function replay(compressed: Compressed, offset: number): Produced {
  return {
    stream: pipeline(Readable.from(compressed.chunks), meter(offset, () => {}), () => {}),
    digest: async () => compressed.digest,
    size: compressed.size,
    known: compressed.digest,
  };
}

/**
 * A layer compressed as it is sent, from `offset` of the compressed
 * output; the digest and size are known once the stream is read.
 */
export async function compressing(layer: RawLayer, offset: number, settings: GzipSettings, workers: GzipWorkers): Promise<Produced> {
  const raw = await layer.open();
  const digester = new Digester();
  const tap = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      digester.update(chunk);
      cb(null, chunk);
    },
  });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const finished = new Promise<void>((resolve, reject) => {
    tap.once('end', resolve);
    tap.once('error', reject);
    tap.once('close', () => reject(new ClientError('ERR_ABORTED', 'compression stopped')));
  });
  // Observed only when the digest is asked for; a destroyed attempt must not be an unhandled rejection.
  finished.catch(() => undefined);
  pipeline(raw, createParallelGzip(settings, workers), tap, meter(offset, () => {}), out, () => {});
  return {
    stream: out,
    digest: async () => {
      await finished;
      return digester.digest();
    },
    sizeAfter: () => digester.size,
  };
}
