/**
 * Authentication and authorization refusals, with a stable code and what a
 * client needs to try again (the token endpoint to ask, the scope, how long
 * to wait). src/registry/http-errors.ts is the one place they become OCI
 * errors: 401 with a `WWW-Authenticate` challenge, 403 DENIED, or 429 with
 * `Retry-After`.
 */
import { PierError } from '../oci/pier-error.js';

export type AuthErrorCode =
  /** No credentials, and the request needs some. */
  | 'ERR_UNAUTHENTICATED'
  /** Wrong user name or password (or access token), or malformed credentials. */
  | 'ERR_CREDENTIALS_INVALID'
  /** A bearer token that does not verify, or whose subject is gone. */
  | 'ERR_TOKEN_INVALID'
  /** A valid bearer token that does not grant this access. */
  | 'ERR_SCOPE_INSUFFICIENT'
  /** Authenticated, but the policy does not allow this. */
  | 'ERR_ACCESS_DENIED'
  /** Too many failed logins from this address. */
  | 'ERR_LOGIN_THROTTLED';

/**
 * How to authenticate: a client fetches a token for `scope` from `realm`
 * (the token endpoint) for `service`. `error` tells a bearer client why
 * its token was refused (RFC 6750).
 */
export interface Challenge {
  realm: string;
  service: string;
  scope?: string | undefined;
  error?: 'invalid_token' | 'insufficient_scope' | undefined;
}

export class AuthError extends PierError {
  readonly challenge: Challenge | undefined;
  /** Seconds until a throttled address may try again. */
  readonly retryAfter: number | undefined;
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    options: { challenge?: Challenge | undefined; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AuthError';
    this.challenge = options.challenge;
    this.retryAfter = options.retryAfter;
  }
}
