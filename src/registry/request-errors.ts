/**
 * What the registry refuses while parsing a request, before (or instead
 * of) asking the service: a method an endpoint lacks, a malformed header
 * or parameter, a body over its limit, a name or digest this repository
 * does not have. Routes throw a {@link RequestError} with a stable code;
 * src/registry/http-errors.ts, the one place errors become OCI errors,
 * maps each code to the spec's error code and status.
 */
import { PierError } from '../oci/pier-error.js';

export type RequestErrorCode =
  /** The endpoint exists but not with this method (405 UNSUPPORTED). */
  | 'ERR_METHOD_NOT_ALLOWED'
  /** No such endpoint under /v2/ or /pier/v1/ (404 NAME_UNKNOWN). */
  | 'ERR_NO_ENDPOINT'
  /** No route at all for the path (404 UNSUPPORTED). */
  | 'ERR_NO_ROUTE'
  /** The path's percent-encoding is malformed (400 NAME_INVALID). */
  | 'ERR_PATH_ENCODING'
  /** A blob `Range` that cannot be satisfied, or a malformed upload `Content-Range` (416 RANGE_INVALID). */
  | 'ERR_RANGE_INVALID'
  /** `n` of a listing is not a non-negative integer (400 PAGINATION_NUMBER_INVALID). */
  | 'ERR_PAGE_SIZE_INVALID'
  /** A manifest pushed to a malformed tag (400 MANIFEST_INVALID). */
  | 'ERR_TAG_INVALID'
  /** The repository has never held anything (404 NAME_UNKNOWN). */
  | 'ERR_REPOSITORY_UNKNOWN'
  /** No such manifest or tag in the repository (404 MANIFEST_UNKNOWN). */
  | 'ERR_MANIFEST_UNKNOWN'
  /** The blob is not linked in the repository (404 BLOB_UNKNOWN). */
  | 'ERR_BLOB_UNKNOWN'
  /** The upload belongs to another repository (404 BLOB_UPLOAD_UNKNOWN). */
  | 'ERR_UPLOAD_UNKNOWN'
  /** A manifest over `manifests.maxSize` (413 MANIFEST_TOO_LARGE). */
  | 'ERR_MANIFEST_TOO_LARGE'
  /** A /pier/v1 body, or an upload chunk, over its limit (413 SIZE_INVALID). */
  | 'ERR_BODY_TOO_LARGE'
  /** A token request form over its limit (413 UNSUPPORTED). */
  | 'ERR_FORM_TOO_LARGE'
  /** DELETE while `deletes` is false (405 UNSUPPORTED). */
  | 'ERR_DELETES_DISABLED'
  /** A malformed parameter or body field (400 UNSUPPORTED). */
  | 'ERR_BAD_REQUEST'
  /** A missing or malformed digest parameter (400 DIGEST_INVALID). */
  | 'ERR_DIGEST_PARAM'
  /** Account administration on a registry without accounts (404 UNSUPPORTED). */
  | 'ERR_NO_ACCOUNTS';

export class RequestError extends PierError {
  /** Shown as the OCI error's `detail` (the name, reference or digest asked for). */
  readonly detail: unknown;
  /** Response headers that go with the refusal (the upload's `Range` and `Location`, a blob's `Content-Range`). */
  readonly headers: Record<string, string>;
  constructor(
    readonly code: RequestErrorCode,
    message: string,
    options: { detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}
