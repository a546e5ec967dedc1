/**
 * The metadata database cannot be used: PostgreSQL cannot be reached at
 * start, a migration failed, or a value does not fit what Pier counts. The
 * CLI prints the message (it never contains a password).
 */
import { PierError } from '../../oci/pier-error.js';

export class DatabaseError extends PierError {
  readonly code = 'ERR_DATABASE';
}
