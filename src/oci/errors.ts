/**
 * The OCI distribution error-code catalog: every code a registry may answer
 * with, its HTTP status and message. The one list; docs/errors.md documents
 * it and a test keeps the two in step.
 */
import { PierError } from './pier-error.js';
export const OCI_ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Not in the spec's table, but used by distribution and understood by Docker clients.
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'manifest too large' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type OciErrorCode = keyof typeof OCI_ERROR_CODES;

/** The JSON error body of the spec: `{"errors":[{code,message,detail}]}`. */
export interface OciErrorBody {
  errors: { code: OciErrorCode; message: string; detail?: unknown }[];
}

/**
 * An error a registry answers with. `status` defaults to the catalog's;
 * a few endpoints answer one code with another status (416 for a bad
 * Content-Range is BLOB_UPLOAD_INVALID in distribution).
 */
export class OciError extends PierError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly detail: unknown;
  constructor(
    readonly code: OciErrorCode,
    message?: string,
    options: { status?: number; detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message ?? OCI_ERROR_CODES[code].message, { cause: options.cause });
    this.name = 'OciError';
    this.status = options.status ?? OCI_ERROR_CODES[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  toBody(): OciErrorBody {
    const entry: OciErrorBody['errors'][number] = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

export function isOciErrorCode(value: string): value is OciErrorCode {
  return Object.hasOwn(OCI_ERROR_CODES, value);
}
