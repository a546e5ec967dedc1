/**
 * One HTTP/1.1 GET of an object (a presigned S3 URL) read straight from
 * the socket into a pooled buffer: the body's bytes are never copied into
 * a fresh Buffer per read, parsed by node's HTTP client or pushed through
 * a stream (decision 0127). Node's HTTP client costs ~1.5–1.8 CPU-s per GiB
 * received here (a new 64 KiB buffer per socket read, plus a copy of each
 * body piece into another); reading the socket with `onread` into one
 * buffer costs ~0.1 (measured against Ceph RGW on loopback).
 *
 * Scope: plain `http:` endpoints, `Connection: close` (one connection per
 * GET, never pooled: a download stopped midway leaves nothing half-read
 * in a pool). The response must be 200/206 with a Content-Length (what
 * S3 and RGW send for GetObject); anything else is an error before any
 * byte is sent on. While the sink is slow the socket is paused; if nothing
 * moves for `timeoutMs` (the store's `storage.s3.timeout`) the GET fails.
 */
import { connect, type Socket } from 'node:net';
import { sendBuffers } from '../../../shared/buffer-pool.js';
import { BlobStoreError, type BlobBody, type ByteRange, type ByteSink } from '../blob-store.js';

/** Buffers (2 MiB: bytes per socket read, and so at most per sink write), shared with the send paths. */
const pool = sendBuffers;
/** Longest response head accepted. */
const MAX_HEAD = 64 * 1024;

function failed(what: string, cause?: unknown): BlobStoreError {
  return new BlobStoreError('ERR_STORAGE_FAILED', `storage failed: ${what}`, cause === undefined ? undefined : { cause });
}

interface Head {
  status: number;
  headers: Map<string, string>;
}

function parseHead(text: string): Head {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw failed(`S3 answered ${JSON.stringify(statusLine.slice(0, 80))}, not an HTTP/1.1 status line`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/**
 * GETs `url` (with `range`), resolves once the response head arrived and
 * says 200/206 with a Content-Length. 404 is ERR_BLOB_NOT_FOUND (`what`
 * names the blob); other statuses, a connection failure or `timeoutMs`
 * without progress are ERR_STORAGE_FAILED.
 */
export function rawGet(url: URL, range: ByteRange | undefined, timeoutMs: number, what: string): Promise<BlobBody> {
  if (url.protocol !== 'http:') return Promise.reject(failed(`${url.protocol} is not read directly`));
  const buffer = pool.take();
  let released = false;
  const release = (socket: Socket, clean: boolean): void => {
    if (released) return;
    released = true;
    socket.destroy();
    // Only when no write may still hold a view of it.
    if (clean) pool.give(buffer);
  };

  return new Promise<BlobBody>((resolveHead, rejectHead) => {
    let head: Buffer = Buffer.alloc(0);
    /** Set once the head was accepted. */
    let body: BodyState | undefined;
    let headDone = false;

    const socket = connect({
      host: url.hostname,
      port: Number(url.port || 80),
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          const bytes = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (body) return body.onBytes(bytes);
          return headDone ? false : onHead(bytes);
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs, () => socket.destroy(failed(`no byte from S3 for ${timeoutMs / 1000} s reading ${what}`)));

    const onHead = (bytes: Buffer): boolean => {
      head = Buffer.concat([head, bytes]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) socket.destroy(failed(`S3's response head for ${what} is longer than ${MAX_HEAD} bytes`));
        return true;
      }
      headDone = true;
      let parsed: Head;
      try {
        parsed = parseHead(head.subarray(0, end).toString('latin1'));
      } catch (err) {
        socket.destroy(err as Error);
        return false;
      }
      const length = Number(parsed.headers.get('content-length') ?? NaN);
      if (parsed.status === 404) {
        socket.destroy(new BlobStoreError('ERR_BLOB_NOT_FOUND', `${what} not found`));
        return false;
      }
      if (parsed.status !== (range ? 206 : 200)) {
        socket.destroy(failed(`S3 answered HTTP ${parsed.status} reading ${what}`));
        return false;
      }
      if (!Number.isSafeInteger(length) || length < 0 || parsed.headers.has('transfer-encoding')) {
        socket.destroy(failed(`S3 sent ${what} without a Content-Length`));
        return false;
      }
      if (range && length !== range.end - range.start + 1) {
        socket.destroy(failed(`S3 sent ${length} bytes for bytes ${range.start}-${range.end} of ${what}`));
        return false;
      }
      // What came with the head: copied once (the pooled buffer is read into again).
      body = new BodyState(socket, length, Buffer.from(head.subarray(end + 4)), what, release);
      resolveHead(body);
      return false; // paused until sendTo
    };

    socket.once('connect', () => {
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'User-Agent: pier', 'Connection: close'];
      if (range) lines.push(`Range: bytes=${range.start}-${range.end}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('error', (err) => {
      const e = err instanceof BlobStoreError ? err : failed(`reading ${what}: ${err.message}`, err);
      if (body) body.fail(e);
      else rejectHead(e);
      release(socket, false);
    });
    socket.on('close', () => {
      if (body) body.fail(failed(`S3 closed the connection after ${body.received} of ${body.length} bytes of ${what}`));
      else rejectHead(failed(`S3 closed the connection before answering for ${what}`));
      release(socket, false);
    });
    // Flowing, so that EOF is seen ('end', then 'close'); the bytes themselves go to `onread`.
    socket.resume();
  });
}

/** The body's reader: socket bytes → sink, one write at a time. */
class BodyState implements BlobBody {
  received = 0;
  private sink: ByteSink | undefined;
  private settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  private error: BlobStoreError | undefined;
  private finished = false;

  constructor(
    private readonly socket: Socket,
    readonly length: number,
    private readonly initial: Buffer,
    private readonly what: string,
    private readonly release: (socket: Socket, clean: boolean) => void,
  ) {}

  sendTo(sink: ByteSink): Promise<void> {
    if (this.sink) return Promise.reject(new Error('a blob body is sent once'));
    this.sink = sink;
    return new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      if (this.error) return this.fail(this.error);
      if (this.initial.length > 0) {
        this.onBytes(this.initial);
      } else if (this.length === 0) {
        this.done();
      } else {
        this.socket.resume();
      }
    });
  }

  close(): void {
    this.finished = true;
    this.release(this.socket, false);
  }

  /** Bytes from the socket (a view of the pooled buffer, valid until the next read): always pauses until written. */
  onBytes(bytes: Buffer): boolean {
    if (this.finished) return false;
    this.received += bytes.length;
    if (this.received > this.length) {
      this.fail(failed(`S3 sent more than ${this.length} bytes of ${this.what}`));
      return false;
    }
    this.sink!.write(bytes).then(
      (open) => {
        if (this.finished) return;
        if (!open) return this.done(false);
        if (this.received === this.length) return this.done();
        this.socket.resume();
      },
      (err: unknown) => this.fail(failed(`sending ${this.what}`, err)),
    );
    return false;
  }

  fail(err: BlobStoreError): void {
    if (this.finished) return;
    if (!this.settle) {
      this.error = err; // reported by sendTo
      return;
    }
    this.finished = true;
    this.release(this.socket, false);
    this.settle.reject(err);
  }

  private done(clean = true): void {
    this.finished = true;
    this.release(this.socket, clean);
    this.settle!.resolve();
  }
}
