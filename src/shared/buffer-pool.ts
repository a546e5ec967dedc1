/**
 * Large buffers reused across requests: a byte path that reads into or
 * gathers in one of these allocates nothing per piece, so the garbage
 * collector has no body-sized garbage to find (see decision 0105 for sends,
 * 0134 for uploads).
 *
 * Buffers come from `Buffer.allocUnsafeSlow` (never the shared 8 KiB slab)
 * or a `SharedArrayBuffer` each, and hold stale bytes: the user writes
 * before reading. A buffer is given back only once nothing can still read
 * or write it (a socket write whose callback has not run, a read or a hash
 * in flight); a buffer that might still be in use is simply dropped, for
 * the collector.
 */
export class BufferPool {
  private readonly idle: Buffer[] = [];

  /**
   * @param size bytes of every buffer
   * @param maxIdle idle buffers kept for the next user; more are dropped
   * @param shared buffers over a `SharedArrayBuffer`, which a worker thread can read in place
   */
  constructor(
    readonly size: number,
    private readonly maxIdle: number,
    private readonly shared = false,
  ) {}

  /** A buffer of {@link size} bytes, reused if one is idle. */
  take(): Buffer {
    return this.idle.pop() ?? (this.shared ? Buffer.from(new SharedArrayBuffer(this.size)) : Buffer.allocUnsafeSlow(this.size));
  }

  /** Gives `buffer` back for reuse (kept only while fewer than `maxIdle` are idle). */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.idle.length < this.maxIdle) this.idle.push(buffer);
  }
}

/**
 * The 2 MiB buffers of the send paths (files, S3 streams, raw S3 reads): one
 * pool, so that at most 4 idle buffers (8 MiB) stay after a burst of
 * downloads, whichever path served them.
 */
export const sendBuffers = new BufferPool(2 * 1024 * 1024, 4);
