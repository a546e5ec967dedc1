/**
 * The client's HTTP stack, composed as layers around one HTTP call, like
 * ggcr's transport chain or undici's `Dispatcher.compose`:
 *
 *     redirect → retry → auth → user-agent → scheme → send (node:http, ./http.ts)
 *
 * A {@link Handler} turns a request into a response; a {@link Layer} wraps
 * a handler. Each cross-cutting concern lives in exactly one layer.
 *
 * Bodies: a `Uint8Array` or a factory of streams is replayable (the retry
 * and auth layers may send it again); a bare stream is sent once and a
 * failure is reported to the caller (the upload engine resumes instead).
 */
import { Readable } from 'node:stream';
import { TlsHandshakeError, type HttpPool } from './http.js';
import { ClientError, TlsError, isAbort, isRetryable, networkError, retryAfterSeconds, tlsError } from './errors.js';

export type RequestBody = Uint8Array | (() => Readable) | Readable;

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Auth scopes this request needs (`repository:NAME:pull,push`). */
  scopes?: string[];
  /** Whether the retry layer may send it again (default: true unless the body is a bare stream). */
  retry?: boolean;
  /** Per-request timeout for the response headers, in ms. */
  headersTimeout?: number;
  signal?: AbortSignal;
  /** Only learn whether the server speaks TLS (see PoolRequest.tlsProbe); set by {@link httpsFirst}. */
  tlsProbe?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  url: URL;
}

export type Handler = (req: HttpRequest) => Promise<HttpResponse>;
export type Layer = (next: Handler) => Handler;

/** `compose(send, a, b, c)` is `c(b(a(send)))`: the last layer is outermost. */
export function compose(send: Handler, ...layers: Layer[]): Handler {
  return layers.reduce<Handler>((next, layer) => layer(next), send);
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a (small) response body. */
export async function readBody(res: HttpResponse, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new ClientError('ERR_HTTP_STATUS', `response from ${res.url.host} larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Discards a response body so the connection can be reused. */
export async function drain(res: HttpResponse): Promise<void> {
  try {
    for await (const _ of res.body) {
      // discard
    }
  } catch {
    // the body is not needed
  }
}

export function isReplayable(body: RequestBody | undefined): boolean {
  return body === undefined || body instanceof Uint8Array || typeof body === 'function';
}

/** The innermost handler: one request on the pool, network errors made retryable ClientErrors. */
export function sender(pool: HttpPool): Handler {
  return async (req) => {
    const body = typeof req.body === 'function' ? req.body() : req.body;
    try {
      const res = await pool.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method,
        headers: req.headers ?? {},
        body,
        signal: req.signal,
        headersTimeout: req.headersTimeout,
        ...(req.tlsProbe ? { tlsProbe: true } : {}),
      });
      return { status: res.statusCode, headers: res.headers, body: res.body, url: req.url };
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      if (isAbort(err) || req.signal?.aborted) throw new ClientError('ERR_ABORTED', 'cancelled', { cause: err });
      if (err instanceof TlsHandshakeError) throw tlsError(req.url.host, err.cause);
      throw networkError(`${req.method} ${req.url.host}${req.url.pathname}`, err);
    }
  };
}

/** Adds `User-Agent` to every request. */
export function userAgent(value: string): Layer {
  return (next) => (req) => next({ ...req, headers: { 'user-agent': value, ...req.headers } });
}

export interface RetryPolicy {
  /** Attempts in all, including the first (default 5). */
  attempts: number;
  /** First backoff in ms (default 250); doubles each attempt, with full jitter. */
  baseDelay: number;
  /** Longest wait in ms, also caps Retry-After of a 5xx (default 15 s). */
  maxDelay: number;
  /** Longest Retry-After of a 429 that is waited for (default 10 s); a longer one is reported at once. */
  maxRetryAfter?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelay: 250, maxDelay: 15_000, maxRetryAfter: 10_000 };

/**
 * Statuses retried with backoff. A 429 is not among them: see {@link retry}.
 * Nor is 507 (the registry is out of storage): retrying cannot help until
 * space is freed.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || (status >= 500 && status !== 507);
}

/** A wait the registry asked for (a 429 with a short Retry-After): the caller says so to the user. */
export interface WaitInfo {
  req: HttpRequest;
  /** Seconds, as the registry asked. */
  seconds: number;
  status: number;
}

/** Backoff before attempt `n` (1-based retries): full jitter over an exponential window. */
export function backoff(policy: RetryPolicy, n: number, retryAfter?: string): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, policy.maxDelay);
  }
  const window = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (n - 1));
  return Math.round(window / 2 + (Math.random() * window) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ClientError('ERR_ABORTED', 'cancelled'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ClientError('ERR_ABORTED', 'cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Retries network errors, 408 and 5xx with exponential backoff and jitter.
 * A 429 is waited for only when its Retry-After is at most
 * `maxRetryAfter` (10 s), and `onWait` is told first so the user knows why
 * nothing moves; any other 429 is returned at once, for the caller to
 * report with its Retry-After. TLS handshake errors are not retried (they
 * are not `retryable`, but a closed handshake). Requests whose body cannot
 * be replayed are not retried; the caller sees the failure and resumes.
 */
export function retry(
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (info: { req: HttpRequest; attempt: number; delay: number; reason: string }) => void,
  onWait?: (info: WaitInfo) => void,
): Layer {
  return (next) => async (req) => {
    const allowed = req.retry ?? isReplayable(req.body);
    for (let attempt = 1; ; attempt++) {
      const last = !allowed || attempt >= policy.attempts;
      let res: HttpResponse;
      try {
        res = await next(req);
      } catch (err) {
        if (last || !isRetryable(err) || req.signal?.aborted) throw err;
        const delay = backoff(policy, attempt);
        onRetry?.({ req, attempt, delay, reason: (err as Error).message });
        await sleep(delay, req.signal);
        continue;
      }
      if (res.status === 429 && !last && !req.signal?.aborted) {
        const seconds = retryAfterSeconds(header(res, 'retry-after'));
        if (seconds === undefined || seconds * 1000 > (policy.maxRetryAfter ?? 10_000)) return res;
        await drain(res);
        onWait?.({ req, seconds, status: res.status });
        await sleep(seconds * 1000, req.signal);
        continue;
      }
      if (!isRetryableStatus(res.status) || last || req.signal?.aborted) return res;
      const delay = backoff(policy, attempt, header(res, 'retry-after'));
      await drain(res);
      onRetry?.({ req, attempt, delay, reason: `HTTP ${res.status}` });
      await sleep(delay, req.signal);
    }
  };
}

/**
 * Follows redirects of GET and HEAD (blob downloads often go to object
 * storage). The auth layer below attaches credentials only for the
 * registry's own host, so a redirect elsewhere carries none.
 */
export function redirect(maxRedirects = 5): Layer {
  return (next) => async (req) => {
    let current = req;
    for (let i = 0; ; i++) {
      const res = await next(current);
      const location = header(res, 'location');
      if (!(res.status >= 300 && res.status < 400 && res.status !== 304 && location) || (req.method !== 'GET' && req.method !== 'HEAD') || i >= maxRedirects) {
        return res;
      }
      await drain(res);
      current = { ...current, url: new URL(location, current.url) };
    }
  };
}

/**
 * HTTPS first, like docker: requests to `host` go over HTTPS. When
 * `plainAllowed()` says the host may be reached over plain HTTP (loopback,
 * `--insecure`), the first request is preceded by a TLS probe (a handshake
 * that trusts nothing, so no CA bundle is parsed): a port that does not
 * speak TLS (or closes during the handshake) puts every request to `host`
 * on plain HTTP; one that presents a certificate stays on HTTPS, verified
 * as usual. A certificate the client does not trust is never a reason to
 * fall back. The first request decides; requests started meanwhile wait.
 */
export function httpsFirst(host: string, plainAllowed: () => Promise<boolean>): Layer {
  let scheme: 'unknown' | 'https' | 'http' = 'unknown';
  let probe: Promise<void> | undefined;
  const plain = (req: HttpRequest): HttpRequest => {
    const url = new URL(req.url);
    url.protocol = 'http:';
    return { ...req, url };
  };
  return (next) => async (req) => {
    if (req.url.host !== host || req.url.protocol !== 'https:') return next(req);
    while (scheme === 'unknown' && probe) await probe;
    if (scheme === 'http') return next(plain(req));
    if (scheme === 'https') return next(req);
    let done!: () => void;
    probe = new Promise<void>((resolve) => (done = resolve));
    try {
      if (!(await plainAllowed())) {
        scheme = 'https';
        return await next(req);
      }
      try {
        // A probe trusts no certificate, so an answer is not expected; take it as TLS.
        await drain(await next({ method: 'HEAD', url: new URL('/v2/', req.url), headers: {}, retry: false, tlsProbe: true, ...(req.signal ? { signal: req.signal } : {}) }));
        scheme = 'https';
      } catch (err) {
        if (!(err instanceof TlsError)) throw err;
        scheme = err.failure === 'not-tls' || err.failure === 'closed' ? 'http' : 'https';
      }
      return await next(scheme === 'http' ? plain(req) : req);
    } finally {
      probe = undefined;
      done();
    }
  };
}
