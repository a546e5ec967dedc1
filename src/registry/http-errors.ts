/**
 * The one place where domain errors become OCI errors: store, parse and
 * validation errors map to a spec error code and status here, and nowhere
 * else.
 */
import { DigestError } from '../oci/digest.js';
import { OciError, type OciErrorCode } from '../oci/errors.js';
import { ManifestError } from '../oci/manifest.js';
import { InvalidReferenceError } from '../oci/reference.js';
import { BlobStoreError } from '../store/blob/blob-store.js';
import { MetaStoreError } from '../store/meta/meta-store.js';
import { LifecycleError } from '../lifecycle/errors.js';
import { AuthError, type Challenge } from '../auth/errors.js';
import { ScopeError } from '../auth/scope.js';
import { AccountError } from '../auth/accounts.js';
import { PolicyError } from '../auth/policy.js';
import { AuthStoreError } from '../auth/store.js';
import { ServePolicyError } from '../service/serve-policy.js';
import { RequestError, type RequestErrorCode } from './request-errors.js';

/** The `WWW-Authenticate: Bearer` header of a challenge (Docker token spec). */
export function bearerChallenge(c: Challenge): string {
  const q = (s: string) => s.replace(/["\\]/g, '');
  let out = `Bearer realm="${q(c.realm)}",service="${q(c.service)}"`;
  if (c.scope !== undefined) out += `,scope="${q(c.scope)}"`;
  if (c.error !== undefined) out += `,error="${c.error}"`;
  return out;
}

/**
 * 507 Insufficient Storage: final for docker, containerd and skopeo (none
 * retries it, unlike 503), and `pier push` names it. See
 * docs/decisions/0060-storage-faults.md.
 */
function outOfStorage(message: string, cause: unknown): OciError {
  return new OciError('UNAVAILABLE', message, { cause, status: 507 });
}

/** Each request refusal's OCI code, and its status when not the catalog's. */
const REQUEST_ERRORS: Record<RequestErrorCode, [OciErrorCode, number?]> = {
  ERR_METHOD_NOT_ALLOWED: ['UNSUPPORTED'],
  ERR_NO_ENDPOINT: ['NAME_UNKNOWN', 404],
  ERR_NO_ROUTE: ['UNSUPPORTED', 404],
  ERR_PATH_ENCODING: ['NAME_INVALID'],
  ERR_RANGE_INVALID: ['RANGE_INVALID', 416],
  ERR_PAGE_SIZE_INVALID: ['PAGINATION_NUMBER_INVALID'],
  ERR_TAG_INVALID: ['MANIFEST_INVALID'],
  ERR_REPOSITORY_UNKNOWN: ['NAME_UNKNOWN'],
  ERR_MANIFEST_UNKNOWN: ['MANIFEST_UNKNOWN'],
  ERR_BLOB_UNKNOWN: ['BLOB_UNKNOWN'],
  ERR_UPLOAD_UNKNOWN: ['BLOB_UPLOAD_UNKNOWN'],
  ERR_MANIFEST_TOO_LARGE: ['MANIFEST_TOO_LARGE', 413],
  ERR_BODY_TOO_LARGE: ['SIZE_INVALID', 413],
  ERR_FORM_TOO_LARGE: ['UNSUPPORTED', 413],
  ERR_DELETES_DISABLED: ['UNSUPPORTED'],
  ERR_BAD_REQUEST: ['UNSUPPORTED', 400],
  ERR_DIGEST_PARAM: ['DIGEST_INVALID'],
  ERR_NO_ACCOUNTS: ['UNSUPPORTED', 404],
};

export function toOciError(err: unknown): OciError {
  if (err instanceof OciError) return err;
  if (err instanceof RequestError) {
    const [code, status] = REQUEST_ERRORS[err.code];
    return new OciError(code, err.message, { cause: err.cause, detail: err.detail, headers: err.headers, ...(status === undefined ? {} : { status }) });
  }
  if (err instanceof DigestError) {
    return new OciError('DIGEST_INVALID', err.message, { cause: err });
  }
  if (err instanceof ManifestError) return new OciError('MANIFEST_INVALID', err.message, { cause: err });
  if (err instanceof InvalidReferenceError) return new OciError('NAME_INVALID', err.message, { cause: err });
  if (err instanceof BlobStoreError) {
    switch (err.code) {
      case 'ERR_BLOB_NOT_FOUND':
        return new OciError('BLOB_UNKNOWN', err.message, { cause: err });
      case 'ERR_UPLOAD_NOT_FOUND':
        return new OciError('BLOB_UPLOAD_UNKNOWN', err.message, { cause: err });
      case 'ERR_UPLOAD_OFFSET':
        return new OciError('RANGE_INVALID', err.message, { cause: err, status: 416 });
      case 'ERR_UPLOAD_BUSY':
        return new OciError('BLOB_UPLOAD_INVALID', err.message, { cause: err, status: 409 });
      case 'ERR_DIGEST_MISMATCH':
        return new OciError('DIGEST_INVALID', err.message, { cause: err });
      case 'ERR_SIZE_MISMATCH':
        return new OciError('SIZE_INVALID', err.message, { cause: err });
      case 'ERR_RANGE_NOT_SATISFIABLE':
        return new OciError('RANGE_INVALID', err.message, { cause: err, status: 416 });
      case 'ERR_STORAGE_FULL':
      case 'ERR_STORAGE_LOW':
        return outOfStorage(err.message, err);
      case 'ERR_STORAGE_FAILED':
        return new OciError('UNKNOWN', err.message, { cause: err });
    }
  }
  if (err instanceof MetaStoreError) {
    switch (err.code) {
      case 'ERR_MANIFEST_REFERENCE_MISSING':
        return new OciError('MANIFEST_BLOB_UNKNOWN', err.message, { cause: err, detail: err.detail });
      case 'ERR_MANIFEST_REFERENCED':
        // 409: the request is allowed, the repository's state forbids it (docs/decisions/0055).
        return new OciError('DENIED', err.message, { cause: err, status: 409, detail: err.detail });
      case 'ERR_NOT_FOUND':
        return new OciError('NAME_UNKNOWN', err.message, { cause: err });
    }
  }
  if (err instanceof AuthError) {
    switch (err.code) {
      case 'ERR_LOGIN_THROTTLED':
        return new OciError('TOOMANYREQUESTS', err.message, { cause: err, headers: { 'retry-after': String(err.retryAfter ?? 1) } });
      case 'ERR_ACCESS_DENIED':
        return new OciError('DENIED', err.message, { cause: err });
      default:
        return new OciError('UNAUTHORIZED', err.message, { cause: err, headers: err.challenge ? { 'www-authenticate': bearerChallenge(err.challenge) } : {} });
    }
  }
  if (err instanceof ScopeError) return new OciError('UNSUPPORTED', err.message, { cause: err, status: 400 });
  if (err instanceof LifecycleError) {
    switch (err.code) {
      case 'ERR_IMMUTABLE_TAG':
      case 'ERR_QUOTA_EXCEEDED':
      case 'ERR_NOT_ADMIN':
        return new OciError('DENIED', err.message, { cause: err, detail: err.detail });
      case 'ERR_TAG_UNKNOWN':
      case 'ERR_VERSION_UNKNOWN':
        return new OciError('MANIFEST_UNKNOWN', err.message, { cause: err, detail: err.detail });
      case 'ERR_WEBHOOK_UNKNOWN':
        return new OciError('NAME_UNKNOWN', err.message, { cause: err });
      case 'ERR_INVALID_REQUEST':
        return new OciError('UNSUPPORTED', err.message, { cause: err, status: 400 });
    }
  }
  if (err instanceof ServePolicyError) {
    // A pull a serve policy refuses (signature trust, vulnerabilities): the reason is in the message.
    return new OciError('DENIED', err.message, { cause: err, detail: { policy: err.policy, reason: err.reason } });
  }
  if (err instanceof AccountError || err instanceof PolicyError || err instanceof ScopeError) {
    return new OciError('UNSUPPORTED', err.message, { cause: err, status: 400 });
  }
  if (err instanceof AuthStoreError) {
    // ERR_*_EXISTS: the name is taken (409); ERR_*_UNKNOWN: no such user, group, token or rule (404).
    if (err.code.endsWith('_EXISTS')) return new OciError('DENIED', err.message, { cause: err, status: 409 });
    return new OciError('NAME_UNKNOWN', err.message, { cause: err, status: 404 });
  }
  const code = (err as { code?: unknown }).code;
  // The metadata database's folder filled up (SQLite, or a bare write error).
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') {
    return outOfStorage('the registry is out of storage: the metadata database cannot grow', err);
  }
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNABORTED') {
    return new OciError('BLOB_UPLOAD_INVALID', 'the request body ended early', { cause: err });
  }
  return new OciError('UNKNOWN', 'internal error', { cause: err });
}
