/**
 * Sends a blob store's byte stream (an S3 GetObject body: the SDK hands out
 * node's `IncomingMessage` itself) as an HTTP response body, straight to the
 * connection, instead of piping it through Fastify's reply.
 *
 * The source arrives in socket-sized pieces (at most 64 KiB: one per read
 * of the upstream socket). Written one by one, each costs a write to the
 * client's socket and a wake-up of the event loop; here they are copied
 * into a large buffer and written 2 MiB at a time (as src/registry/send-file.ts
 * does for files; decision 0127). Two buffers from a small shared pool
 * alternate: one fills while the other is being written; when both are
 * full the source is paused (backpressure is the client's socket, through
 * to the store's: a paused `IncomingMessage` stops reading its socket).
 *
 * Memory: two 2 MiB buffers per download in progress, from the pool shared
 * by every send path (src/shared/buffer-pool.ts).
 *
 * Failure: if the client goes away, the source is destroyed at once (for an
 * S3 body that closes its socket instead of returning it to the SDK's
 * agent half-read, so no socket leaks and no other request waits for it).
 * If the source fails, or ends short of `length` bytes, the client's
 * connection is destroyed: the client sees a truncated body, never wrong
 * bytes.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ByteSink } from '../store/blob/blob-store.js';
import { sendBuffers } from '../shared/buffer-pool.js';

/** Buffers (2 MiB: bytes per socket write), shared with the other send paths. */
const pool = sendBuffers;

/**
 * Writes the `length` bytes of `source` as the body of `res`, whose status
 * and headers (Content-Length among them) the caller has written. Resolves
 * when the body is handed to the kernel and the response ended, or when
 * either side failed or went away; never rejects. The source is always
 * consumed or destroyed when it resolves.
 */
export function sendStream(res: ServerResponse, source: Readable, length: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const buffers = [pool.take(), pool.take()];
    /** The buffer being filled (index), how full it is, and how many writes are in flight. */
    let current = 0;
    let fill = 0;
    let inFlight = 0;
    let received = 0;
    let ended = false;
    /** The part of a chunk that found no free buffer (the source is paused meanwhile). */
    let pending: Buffer | undefined;
    let done = false;

    const finish = (clean: boolean): void => {
      if (done) return;
      done = true;
      source.off('data', onData).off('end', onEnd).off('error', onError).off('close', onSourceClose);
      res.off('close', onClientClose);
      if (clean) {
        // Only after a clean finish: a destroyed socket's queue may still hold the buffers.
        for (const b of buffers) pool.give(b);
      } else {
        source.destroy();
        res.destroy();
      }
      resolve();
    };

    /** Copies `chunk` into the buffers, writing each as it fills; what does not fit while both are in flight waits in `pending`. */
    const take = (chunk: Buffer): void => {
      let offset = 0;
      while (offset < chunk.length) {
        if (inFlight === 2) {
          // Both buffers wait for the socket: keep the rest (the socket's own buffer) until one is free.
          pending = chunk.subarray(offset);
          return;
        }
        const n = chunk.copy(buffers[current]!, fill, offset);
        fill += n;
        offset += n;
        if (fill === pool.size) flush();
      }
    };

    const written = (): void => {
      inFlight--;
      if (done) return;
      if (ended) {
        if (inFlight === 0) {
          res.end();
          finish(true);
        }
        return;
      }
      if (pending) {
        const rest = pending;
        pending = undefined;
        take(rest);
      }
      if (inFlight < 2 && source.isPaused()) source.resume();
    };

    const flush = (): void => {
      const b = buffers[current]!;
      const n = fill;
      current ^= 1;
      fill = 0;
      inFlight++;
      res.write(n === b.length ? b : b.subarray(0, n), written);
    };

    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > length) {
        finish(false);
        return;
      }
      take(chunk);
      // No more data events until a write completes (a paused stream buffers, then stops reading its socket).
      if (inFlight === 2) source.pause();
    };

    const onEnd = (): void => {
      if (received !== length) {
        finish(false);
        return;
      }
      ended = true;
      if (fill > 0) flush();
      if (inFlight === 0) {
        res.end();
        finish(true);
      }
    };
    const onError = (): void => finish(false);
    /** A source that closes without 'end' (destroyed) failed. */
    const onSourceClose = (): void => {
      if (!ended) finish(false);
    };
    const onClientClose = (): void => {
      if (!res.writableFinished) finish(false);
    };

    if (res.destroyed) {
      finish(false);
      return;
    }
    res.on('close', onClientClose);
    source.on('error', onError).on('close', onSourceClose).on('end', onEnd).on('data', onData);
  });
}

/**
 * The client's connection as a {@link ByteSink} for a store's own read loop
 * (the S3 store's direct GET): each write resolves once its bytes are in
 * the kernel (the store reuses the buffer then), or false once the client
 * went away.
 */
export function responseSink(res: ServerResponse): ByteSink {
  return {
    write: (chunk) =>
      new Promise<boolean>((resolve) => {
        if (res.destroyed) return resolve(false);
        const onClose = (): void => resolve(false);
        res.once('close', onClose);
        res.write(chunk, () => {
          res.off('close', onClose);
          resolve(!res.destroyed);
        });
      }),
  };
}
