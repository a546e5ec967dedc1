/**
 * Content digests (`algorithm:encoded`), parsed once at the edge.
 *
 * The grammar follows the OCI image spec (descriptor.md#digests). Only the
 * registered algorithms sha256 and sha512 are accepted: anything else is a
 * {@link DigestError}, which servers report as DIGEST_INVALID or UNSUPPORTED.
 */
import { createHash, type Hash } from 'node:crypto';
import { PierError } from './pier-error.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export class DigestError extends PierError {
  readonly code: 'ERR_DIGEST_INVALID' | 'ERR_DIGEST_UNSUPPORTED';
  constructor(code: DigestError['code'], message: string) {
    super(message);
    this.name = 'DigestError';
    this.code = code;
  }
}

/** An immutable, validated digest. Compare with `equals` or by `toString()`. */
export class Digest {
  private constructor(
    readonly algorithm: DigestAlgorithm,
    readonly encoded: string,
  ) {}

  /** Parses `sha256:<64 hex>` or `sha512:<128 hex>`; throws DigestError otherwise. */
  static parse(value: string): Digest {
    if (!GRAMMAR.test(value)) {
      throw new DigestError('ERR_DIGEST_INVALID', `invalid digest ${JSON.stringify(value.slice(0, 200))}`);
    }
    const colon = value.indexOf(':');
    const algorithm = value.slice(0, colon);
    const encoded = value.slice(colon + 1);
    if (algorithm !== 'sha256' && algorithm !== 'sha512') {
      throw new DigestError('ERR_DIGEST_UNSUPPORTED', `unsupported digest algorithm ${JSON.stringify(algorithm)}`);
    }
    if (encoded.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
      throw new DigestError('ERR_DIGEST_INVALID', `invalid ${algorithm} digest ${JSON.stringify(value.slice(0, 200))}`);
    }
    return new Digest(algorithm, encoded);
  }

  /** Like parse, but returns undefined instead of throwing. */
  static tryParse(value: string): Digest | undefined {
    try {
      return Digest.parse(value);
    } catch {
      return undefined;
    }
  }

  /** The digest of a buffer. */
  static of(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
    return new Digest(algorithm, createHash(algorithm).update(data).digest('hex'));
  }

  /** Builds a digest from a finished hash. */
  static fromHash(hash: Hash, algorithm: DigestAlgorithm): Digest {
    return new Digest(algorithm, hash.digest('hex'));
  }

  static isAlgorithm(value: string): value is DigestAlgorithm {
    return value === 'sha256' || value === 'sha512';
  }

  equals(other: Digest): boolean {
    return this.algorithm === other.algorithm && this.encoded === other.encoded;
  }

  toString(): string {
    return `${this.algorithm}:${this.encoded}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Incrementally hashes a stream of chunks. */
export class Digester {
  private readonly hash: Hash;
  private bytes = 0;
  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  get size(): number {
    return this.bytes;
  }
  digest(): Digest {
    return Digest.fromHash(this.hash, this.algorithm);
  }
}
