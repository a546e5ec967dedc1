import { PierError } from '../oci/pier-error.js';

/** A refusal of the supply-chain module: bad OSV data, a bad import. */
export class SupplyError extends PierError {
  constructor(
    readonly code: 'ERR_OSV_INVALID',
    message: string,
  ) {
    super(message);
  }
}
