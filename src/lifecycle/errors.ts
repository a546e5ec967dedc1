/**
 * Lifecycle domain errors, with a stable code. src/registry/http-errors.ts
 * is the one place that turns them into OCI errors (DENIED for rules,
 * NAME_UNKNOWN / MANIFEST_UNKNOWN for what is missing).
 */
import { PierError } from '../oci/pier-error.js';
export type LifecycleErrorCode =
  /** Pushing over, deleting or rolling back a tag an immutable-tag rule protects. */
  | 'ERR_IMMUTABLE_TAG'
  /** A push would take a namespace past its quota. */
  | 'ERR_QUOTA_EXCEEDED'
  /** An operation only an admin may do. */
  | 'ERR_NOT_ADMIN'
  /** The tag has no history in this repository. */
  | 'ERR_TAG_UNKNOWN'
  /** The rollback target is not a version of the tag, or its manifest is no longer stored. */
  | 'ERR_VERSION_UNKNOWN'
  /** No webhook endpoint of that name is configured. */
  | 'ERR_WEBHOOK_UNKNOWN'
  /** A malformed API request (bad JSON, steps < 1, ...). */
  | 'ERR_INVALID_REQUEST';

export class LifecycleError extends PierError {
  constructor(
    readonly code: LifecycleErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'LifecycleError';
  }
}
