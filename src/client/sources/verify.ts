/**
 * Source bytes are checked while they stream, so nothing unverified is
 * published: a {@link verified} stream hashes what passes and holds back its
 * last chunk until the whole content is known to match. On a mismatch it
 * fails with ERR_DIGEST_MISMATCH instead of ending, so a request body it
 * feeds never reaches its declared length, and no upload fed from it can be
 * closed: the registry never commits the blob.
 *
 * Every source opens its blobs through here: OCI layouts and archives
 * against the blob's digest, docker-archive (and daemon) layers against the
 * config's diff_id, gzipped ones against both.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { Digester, type Digest } from '../../oci/index.js';
import { ClientError } from '../errors.js';

// node:zlib loads at the first layer checked against a diff ID (decision 0132).
const requireBuiltin = createRequire(import.meta.url);
let zlibModule: typeof Zlib | undefined;
const zlib = (): typeof Zlib => (zlibModule ??= requireBuiltin('node:zlib') as typeof Zlib);

export interface Expected {
  /** The digest of the bytes as they are read. */
  digest?: Digest;
  /** What `digest` is called in a message (default `digest`; an uncompressed layer's is its `diff_id`). */
  digestName?: string;
  /** The digest of the bytes once gunzipped (a gzipped layer's diff_id). */
  diffID?: Digest;
  /** Bytes the content must have, when known. */
  size?: number;
  /** Names the blob in the error: `oci:/x: layer 2 (blobs/sha256/ab…)`. */
  what: string;
}

function mismatch(what: string, detail: string): ClientError {
  return new ClientError('ERR_DIGEST_MISMATCH', `${what} ${detail}; nothing was published`);
}

/**
 * Passes `source` through after checking it against `expected`; the first
 * `skip` bytes are read and hashed but not passed on (a resumed upload).
 */
export function verified(source: Readable, expected: Expected, skip = 0): Readable {
  const digester = expected.digest ? new Digester(expected.digest.algorithm) : undefined;
  let unzipped: Digester | undefined;
  let gunzip: Transform | undefined;
  let gunzipDone: Promise<void> | undefined;
  if (expected.diffID) {
    const diff = new Digester(expected.diffID.algorithm);
    unzipped = diff;
    gunzip = zlib().createGunzip();
    gunzip.on('data', (c: Buffer) => diff.update(c));
    gunzipDone = new Promise<void>((resolve, reject) => {
      gunzip!.once('end', resolve);
      gunzip!.once('error', reject);
    });
    // Observed at the end; a stream destroyed earlier must not leave an unhandled rejection.
    gunzipDone.catch(() => undefined);
  }
  let toSkip = skip;
  let held: Buffer | undefined;
  let size = 0;
  // The last chunk is held back until flush: a mismatch is found before it is passed on.
  const passOn = (chunk: Buffer, cb: TransformCallback) => {
    let c = chunk;
    if (toSkip > 0) {
      if (c.length <= toSkip) {
        toSkip -= c.length;
        return cb();
      }
      c = c.subarray(toSkip);
      toSkip = 0;
    }
    const previous = held;
    held = c;
    cb(null, previous);
  };
  const out = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      digester?.update(chunk);
      size += chunk.length;
      if (gunzip && !gunzip.write(chunk)) {
        gunzip.once('drain', () => passOn(chunk, cb));
        return;
      }
      passOn(chunk, cb);
    },
    flush(cb: TransformCallback) {
      const finish = (err?: Error) => {
        if (err) return cb(err);
        if (expected.size !== undefined && size !== expected.size) return cb(mismatch(expected.what, `has ${size} bytes, not the ${expected.size} that reference it`));
        if (digester && expected.digest && !digester.digest().equals(expected.digest)) {
          return cb(mismatch(expected.what, `does not match its ${expected.digestName ?? 'digest'} ${expected.digest.toString()}${expected.digestName === 'diff_id' ? ' in the image config' : ''}`));
        }
        if (unzipped && expected.diffID && !unzipped.digest().equals(expected.diffID)) {
          return cb(mismatch(expected.what, `does not match its diff_id ${expected.diffID.toString()} in the image config`));
        }
        if (held) this.push(held);
        cb();
      };
      if (!gunzip || !gunzipDone) return finish();
      gunzip.end();
      gunzipDone.then(
        () => finish(),
        (cause: unknown) => finish(new ClientError('ERR_DIGEST_MISMATCH', `${expected.what} is not a valid gzip stream; nothing was published`, { cause })),
      );
    },
    destroy(err, cb) {
      gunzip?.destroy();
      source.destroy();
      cb(err);
    },
  });
  source.once('error', (err) => out.destroy(err));
  source.pipe(out);
  return out;
}
