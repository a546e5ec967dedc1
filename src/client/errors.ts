/**
 * Errors of the registry client. Every error has a stable `code` and says
 * whether trying again may help (`retryable`), like ggcr's
 * transport.Error.Temporary(). Wrap with context and keep the cause:
 * `new ClientError('ERR_PUSH', \`pushing ${ref}\`, { cause })`.
 */
import { PierError } from '../oci/pier-error.js';

export type ClientErrorCode =
  | 'ERR_NETWORK' // connection refused/reset, timeouts
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
  'EPROTO',
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
