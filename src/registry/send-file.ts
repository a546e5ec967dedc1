/**
 * Sends a byte range of an open file as an HTTP response body, straight to
 * the connection: a read/write loop over one large buffer from a small
 * shared pool, instead of a file stream piped through Fastify's reply
 * (which allocates a fresh buffer per read and keeps the GC busy with them).
 *
 * The buffer is read into again only after the socket write of its previous
 * contents has completed (the write's callback: the bytes are in the
 * kernel's socket buffer, which keeps sending while the next read runs), so
 * backpressure is the socket's own and no byte is copied twice in user
 * space. Large writes matter most: measured against CNCF distribution
 * (which uses sendfile), 256 KiB reads cost ~1.4x its CPU per GiB, 2 MiB
 * ~1.0x (docs/performance.md, decision 0105).
 *
 * Memory: one 2 MiB buffer per download in progress, from the pool shared
 * by every send path (src/shared/buffer-pool.ts).
 *
 * If the client goes away the loop stops at its next step; if the file
 * cannot be read midway (or is shorter than promised) the connection is
 * destroyed, so the client sees a truncated body, never wrong bytes.
 */
import { read } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { sendBuffers } from '../shared/buffer-pool.js';

/** Buffers (2 MiB: bytes per read and per socket write), shared with the other send paths. */
const pool = sendBuffers;

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * Writes bytes `start`..`end` (inclusive) of `file` as the body of `res`,
 * whose status and headers (Content-Length among them) the caller has
 * written. Resolves when the body is handed to the kernel and the response
 * ended, or when the client went away; never rejects (a read failure
 * destroys the connection). The caller closes `file`.
 */
export async function sendFileRange(res: ServerResponse, file: FileHandle, start: number, end: number): Promise<void> {
  const buf = pool.take();
  let closed = res.destroyed;
  let wake: (() => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.on('close', onClose);
  /** Completes when `chunk` is written, or when the connection closed (the buffer is not reused then). */
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      res.write(chunk, () => resolve());
    });
  let position = start;
  let completed = false;
  try {
    while (position <= end && !closed) {
      const n = await readAt(file.fd, buf, Math.min(buf.length, end - position + 1), position);
      if (n === 0) throw new Error(`file ended at byte ${position}, before byte ${end}`);
      position += n;
      if (!closed) await write(n === buf.length ? buf : buf.subarray(0, n));
    }
    completed = !closed;
  } catch {
    res.destroy();
  } finally {
    res.off('close', onClose);
  }
  if (!completed) return;
  // Only after a clean finish: a destroyed socket's queue may still hold the buffer.
  pool.give(buf);
  res.end();
}
