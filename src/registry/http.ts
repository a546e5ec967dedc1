/** Small HTTP helpers shared by the routes: bodies, ranges, pagination. */
import type { IncomingMessage } from 'node:http';
import { RequestError } from './request-errors.js';
import type { ByteRange } from '../store/blob/blob-store.js';

/** Reads a whole request body of at most `limit` bytes; 413 (`tooLarge`) beyond. */
export async function readBody(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Discards whatever body a request carries (so the connection can be reused). */
export async function drain(req: IncomingMessage): Promise<number> {
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) size += chunk.length;
  return size;
}

/**
 * Reads and discards the rest of a request body for at most `ms`
 * milliseconds. True if the body ended (the connection can carry another
 * request); false if time ran out or the body failed. Answering a request
 * whose body is still arriving and closing at once makes the kernel reset
 * the connection, and the client may lose the answer: reading on a little
 * first ("lingering close", as nginx and Apache do) lets it arrive.
 */
export async function drainFor(req: IncomingMessage, ms: number): Promise<boolean> {
  if (req.readableEnded) return true;
  if (req.destroyed) return false;
  return new Promise<boolean>((resolve) => {
    const done = (ended: boolean) => {
      clearTimeout(timer);
      req.off('data', discard);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (!ended) req.pause();
      resolve(ended);
    };
    const discard = () => undefined;
    const onEnd = () => done(true);
    const onError = () => done(false);
    const onClose = () => done(req.readableEnded);
    const timer = setTimeout(() => done(false), ms);
    req.on('data', discard);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
    req.resume();
  });
}

/**
 * Parses a `Range: bytes=...` header against a blob of `size` bytes.
 * Returns undefined to serve the whole blob (no header, or several
 * ranges, which RFC 9110 lets a server ignore); throws 416 when
 * unsatisfiable or malformed.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const unsatisfiable = () => new RequestError('ERR_RANGE_INVALID', `range ${JSON.stringify(header)} not satisfiable for ${size} bytes`, { headers: { 'content-range': `bytes */${size}` } });
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) {
    if (/^bytes=[\d\s,-]+$/.test(header.trim()) && header.includes(',')) return undefined;
    throw unsatisfiable();
  }
  const [, a = '', b = ''] = m;
  let start: number;
  let end: number;
  if (a === '' && b === '') throw unsatisfiable();
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) throw unsatisfiable();
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) throw unsatisfiable();
  return { start, end };
}

/** Parses an upload's `Content-Range: <start>-<end>` (with or without `bytes=`/`bytes `). */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[= ])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw new RequestError('ERR_RANGE_INVALID', `invalid Content-Range ${JSON.stringify(header)}`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new RequestError('ERR_RANGE_INVALID', `invalid Content-Range ${JSON.stringify(header)}`);
  return { start, end };
}

/** `n` and `last` of a paginated listing. */
export function parsePage(query: URLSearchParams, defaultLimit: number, maxLimit: number): { limit: number; after: string | undefined } {
  const n = query.get('n');
  let limit = defaultLimit;
  if (n !== null && n !== '') {
    if (!/^\d+$/.test(n)) throw new RequestError('ERR_PAGE_SIZE_INVALID', `n must be a non-negative integer, got ${JSON.stringify(n)}`);
    limit = Math.min(Number(n), maxLimit);
  }
  const last = query.get('last');
  return { limit, after: last === null || last === '' ? undefined : last };
}

/** The `Link` header for the next page of a listing. */
export function nextLink(path: string, limit: number, last: string): string {
  return `<${path}?n=${limit}&last=${encodeURIComponent(last)}>; rel="next"`;
}
