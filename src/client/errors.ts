/**
 * Errors of the registry client. Every error has a stable `code` and says
 * whether trying again may help (`retryable`), like ggcr's
 * transport.Error.Temporary(). Wrap with context and keep the cause:
 * `new ClientError('ERR_PUSH', \`pushing ${ref}\`, { cause })`.
 */
import { PierError } from '../oci/pier-error.js';

export type ClientErrorCode =
  | 'ERR_NETWORK' // connection refused/reset, timeouts
  | 'ERR_TLS' // the TLS handshake failed: plain HTTP answered, an untrusted certificate, a protocol error
  | 'ERR_TOO_MANY_REQUESTS' // 429 with no short Retry-After
  | 'ERR_HTTP_STATUS' // an unexpected status from the registry
  | 'ERR_UNAUTHORIZED' // 401 after presenting credentials (or none available)
  | 'ERR_DENIED' // 403: authenticated but lacking a right
  | 'ERR_TOKEN' // the token server failed or answered garbage
  | 'ERR_NOT_FOUND' // manifest/blob/repository unknown
  | 'ERR_TOO_LARGE' // 413 from the registry or a proxy in front of it
  | 'ERR_UPLOAD_LOST' // the registry forgot an upload session
  | 'ERR_DIGEST_MISMATCH' // bytes did not hash to what they should
  | 'ERR_SOURCE' // the image source is unreadable or malformed
  | 'ERR_CREDENTIALS' // config.json / helper failures
  | 'ERR_CONFIG' // bad options
  | 'ERR_DAEMON' // the Docker Engine API failed
  | 'ERR_UNSUPPORTED' // the registry cannot do this (e.g. delete a tag)
  | 'ERR_IN_USE' // a delete refused because tags or indexes use the manifest
  | 'ERR_ABORTED'; // cancelled by the user (Ctrl-C)

export class ClientError extends PierError {
  readonly retryable: boolean;
  /** HTTP status when the error came from a response. */
  readonly status: number | undefined;
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; status?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ClientError';
    this.retryable = options.retryable ?? false;
    this.status = options.status;
  }
}

const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** True when `err` (or its cause) is a transient network failure. */
export function isRetryable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof ClientError) return e.retryable;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
  }
  return false;
}

/** Wraps any thrown network error as a retryable ClientError. */
export function networkError(what: string, cause: unknown): ClientError {
  if (cause instanceof ClientError) return cause;
  const detail = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : String(cause);
  return new ClientError('ERR_NETWORK', `${what}: ${detail}`, { cause, retryable: isRetryable(cause) });
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ERR_ABORTED');
}

/**
 * How a TLS handshake failed. `not-tls`: the server answered something that
 * is not TLS (a plain HTTP server); `closed`: the connection closed before
 * the handshake finished; `certificate`: the certificate was not accepted;
 * `protocol`: any other TLS alert or error.
 */
export type TlsFailure = 'not-tls' | 'closed' | 'certificate' | 'protocol';

/** A TLS handshake failure; `failure` says how (the transport falls back to plain HTTP on some). */
export class TlsError extends ClientError {
  constructor(
    readonly failure: TlsFailure,
    message: string,
  ) {
    super('ERR_TLS', message, { retryable: failure === 'closed' });
    this.name = 'TlsError';
  }
}

const NOT_TLS = /wrong version number|packet length too long|http request|unknown protocol|record layer failure|unexpected eof/i;

/** Classifies an error raised before a TLS handshake finished. */
export function classifyTls(err: unknown): TlsFailure {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && (code.startsWith('ERR_TLS_CERT') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code))) return 'certificate';
  if (NOT_TLS.test(message)) return 'not-tls';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'closed';
  return 'protocol';
}

/**
 * The one line for a failed TLS handshake with `host` (client messages:
 * docs/errors.md). The OpenSSL text is not attached as a cause: the line
 * says what happened and what to do; PIER_DEBUG=1 shows the stack.
 */
export function tlsError(host: string, err: unknown): TlsError {
  const failure = classifyTls(err);
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
  switch (failure) {
    case 'not-tls':
      return new TlsError(failure, `${host}: the server answered HTTP to an HTTPS request; add --insecure if you trust the network`);
    case 'closed':
      return new TlsError(failure, `${host}: the connection closed during the TLS handshake (${reason}); if the registry speaks plain HTTP, add --insecure if you trust the network`);
    case 'certificate':
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new TlsError(failure, `${host}: the server's TLS certificate is not valid for this name (${(err as Error).message})`);
      if (code === 'CERT_HAS_EXPIRED') return new TlsError(failure, `${host}: the server's TLS certificate has expired`);
      return new TlsError(failure, `${host}: the server's TLS certificate is not trusted (${reason}); give its CA with --ca-file FILE or SSL_CERT_FILE`);
    default:
      return new TlsError(failure, `${host}: the TLS handshake failed (${err instanceof Error ? err.message.replace(/\s+/g, ' ').trim() : reason})`);
  }
}

/** What a registry answered, as far as the message needs it. */
export interface Refusal {
  status: number;
  /** `{what}: {where}: ...`: the step (`pushing manifest v1`) and `registry/repository`. */
  what: string;
  where: string;
  /** The registry as the user named it (`pier login REGISTRY`). */
  registry: string;
  /** The first entry of the OCI error body, when there was one. */
  reported?: { code?: string; message?: string };
  /** Retry-After, when sent. */
  retryAfter?: string;
  /** The WWW-Authenticate `error` parameter of a 401 (`insufficient_scope`, `invalid_token`). */
  authError?: string;
  /** Whether credentials were presented (a user name, an identity token or a registry token). */
  credentials: boolean;
  /** Whether the credentials were a user name and password (a 401 then means they are wrong). */
  password: boolean;
  /** The actions the request needed, when it is a repository request. */
  actions?: string[];
}

/**
 * The error a registry or token server put in its answer's body: the OCI
 * `{"errors":[{"code","message"}]}`, or a token server's `{"details"}` /
 * OAuth `{"error","error_description"}`. Undefined when there is none.
 */
export function reportedError(text: string): { code?: string; message?: string } | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { errors?: unknown; details?: unknown; error?: unknown; error_description?: unknown };
  const first: unknown = Array.isArray(b.errors) ? b.errors[0] : undefined;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const code = first && typeof first === 'object' ? str((first as { code?: unknown }).code) : str(b.error);
  const message = first && typeof first === 'object' ? str((first as { message?: unknown }).message) : (str(b.error_description) ?? str(b.details));
  if (!code && !message) return undefined;
  return { ...(code ? { code } : {}), ...(message ? { message } : {}) };
}

/** Seconds of a Retry-After header (delta-seconds or an HTTP date), or undefined. */
export function retryAfterSeconds(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - now) / 1000)) : undefined;
}

/**
 * The one place a registry's error answer becomes a message (the table is
 * in docs/errors.md, "Client messages"). A refusal names what the server
 * reported, never a guessed right.
 */
export function refusalError(r: Refusal): ClientError {
  const said = r.reported?.message || r.reported?.code || '';
  const detail = r.reported?.code || r.reported?.message ? ` (${[r.reported.code, r.reported.message].filter(Boolean).join(': ')})` : '';
  const status = r.status;
  switch (true) {
    case status === 401 && r.password && r.authError !== 'insufficient_scope':
      return new ClientError('ERR_UNAUTHORIZED', wrongPassword(r.registry), { status });
    case status === 401 && !r.credentials:
      return new ClientError('ERR_UNAUTHORIZED', loginRequired(r.registry, `${r.what}: ${r.where}`), { status });
    case status === 401:
      return new ClientError('ERR_UNAUTHORIZED', `${r.what}: ${r.where}: not authorized${r.actions ? ` to ${r.actions.join(',')}` : ''}: ${said || `HTTP 401${r.authError ? ` ${r.authError}` : ''}`}`, { status });
    case status === 403:
      return new ClientError('ERR_DENIED', `${r.what}: ${r.where}: denied: ${said || 'HTTP 403'}`, { status });
    case status === 404:
      return new ClientError('ERR_NOT_FOUND', `${r.what}: ${r.where}: not found${detail}`, { status });
    case status === 413:
      return new ClientError('ERR_TOO_LARGE', `${r.what}: ${r.where}: request too large (HTTP 413)${detail}`, { status });
    case status === 429: {
      const seconds = retryAfterSeconds(r.retryAfter);
      const when = seconds === undefined ? 'no Retry-After given' : `retry after ${seconds} s`;
      return new ClientError('ERR_TOO_MANY_REQUESTS', `${r.what}: ${r.registry}: too many requests (HTTP 429, ${when})${said ? `: ${said}` : ''}`, { status });
    }
    case status === 507:
      // Final: trying again cannot help until someone frees space on the registry.
      return new ClientError('ERR_HTTP_STATUS', `${r.what}: ${r.where}: the registry is out of storage (HTTP 507)`, { status });
    default:
      return new ClientError('ERR_HTTP_STATUS', `${r.what}: ${r.where}: HTTP ${status}${detail}`, { status, retryable: status === 408 || status >= 500 });
  }
}

/** A user name and password the registry (or its token server) refused. */
export function wrongPassword(registry: string): string {
  return `wrong user name or password for ${registry}`;
}

/** No credentials, and the registry wants some. */
export function loginRequired(registry: string, context = registry): string {
  return `${context}: authentication required; run 'pier login ${registry}'`;
}
