/** A pass-through stream that fails unless its bytes hash to an expected digest (and, when given, size). */
import { Transform, type TransformCallback } from 'node:stream';
import { Digester, type Digest } from '../../oci/index.js';
import { ClientError } from '../errors.js';

export interface VerifyOptions {
  /** The exact byte count expected; more bytes fail at once. */
  size?: number;
  onBytes?: (n: number) => void;
  /** The one-line message for a mismatch, given what was seen (`got sha256:...`, `12 bytes, expected 13`). */
  message: (seen: string) => string;
}

/**
 * Passes bytes through, hashing them; ends with an ERR_DIGEST_MISMATCH
 * error instead of its last callback when the digest differs, or as soon
 * as more than `size` bytes arrive. A writer downstream thus never
 * finishes on bad bytes.
 */
export function verifier(expected: Digest, options: VerifyOptions): Transform {
  const digester = new Digester(expected.algorithm);
  const { size, onBytes, message } = options;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      digester.update(chunk);
      if (size !== undefined && digester.size > size) {
        cb(new ClientError('ERR_DIGEST_MISMATCH', message(`more than the ${size} bytes of its descriptor`)));
        return;
      }
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (size !== undefined && digester.size !== size) {
        cb(new ClientError('ERR_DIGEST_MISMATCH', message(`${digester.size} bytes, expected ${size}`)));
        return;
      }
      const got = digester.digest();
      if (!got.equals(expected)) {
        cb(new ClientError('ERR_DIGEST_MISMATCH', message(`got ${got.toString()}`)));
        return;
      }
      cb();
    },
  });
}
