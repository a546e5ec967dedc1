import { PierError } from '../oci/pier-error.js';

/** `pier migrate` cannot start or finish: a source or target that is not what it needs, or blobs that fail their digest. */
export class MigrateError extends PierError {
  readonly code = 'ERR_MIGRATE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrateError';
  }
}
