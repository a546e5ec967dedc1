/**
 * The transfer state machine of the push engine: for one blob, whether the
 * registry needs it (HEAD, then a cross-repository mount), and its upload:
 * a session (started, or continued from the journal), the bytes from the
 * registry's offset as one monolithic PUT, one streamed PATCH and a closing
 * PUT, or PATCH chunks; after a broken connection it asks the registry how
 * much it holds and continues there, with the transport's retry policy and
 * backoff. A 413 switches to chunks (halving until accepted). A source that
 * fails verification cancels the session: nothing of it is committed.
 */
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import type { Digest, RepositoryName } from '../oci/index.js';
import type { PierCache } from './cache.js';
import { ClientError, isRetryable } from './errors.js';
import type { PushEvent } from './events.js';
import type { Registry, UploadSession } from './registry.js';
import { DEFAULT_RETRY, backoff, sleep, type RetryPolicy } from './transport.js';

export interface PushStats {
  /** Layers compressed in this run. */
  compressed: number;
  existed: number;
  mounted: number;
  pushed: number;
  /** Uploads continued from a non-zero offset. */
  resumed: number;
  /** Blob bytes sent in request bodies. */
  bytesSent: number;
}

/** The default chunk size once a 413 says monolithic uploads are too large. */
const FALLBACK_CHUNK = 16 * 1024 * 1024;
const MIN_CHUNK = 256 * 1024;
/** Uploads at least this large are journalled for resuming after a kill. */
const JOURNAL_MIN = 4 * 1024 * 1024;

/** Counts bytes through, reporting progress; drops the first `skip` bytes. */
export function meter(skip: number, onBytes: (n: number) => void): Transform {
  let toSkip = skip;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      if (toSkip > 0) {
        if (chunk.length <= toSkip) {
          toSkip -= chunk.length;
          return cb();
        }
        chunk = chunk.subarray(toSkip);
        toSkip = 0;
      }
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

/** Reads exactly `size`-byte buffers (the last may be shorter) from a stream. */
async function* chunksOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let c = chunk;
    while (have + c.length >= size) {
      const take = size - have;
      parts.push(c.subarray(0, take));
      yield Buffer.concat(parts, size);
      c = c.subarray(take);
      parts = [];
      have = 0;
    }
    if (c.length > 0) {
      parts.push(c);
      have += c.length;
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}

/** What one upload attempt reads: the bytes from `offset`, and the digest once they are all read. */
export interface Produced {
  stream: Readable;
  digest: () => Promise<Digest>;
  /** Total size, when known up front. */
  size?: number;
  /** The digest, when known before reading (allows one monolithic PUT). */
  known?: Digest;
  /** Total size, once the stream is read (compressed output). */
  sizeAfter?: () => number;
}

/** Whether a blob must be sent: no when it exists or was mounted; else maybe with the session a refused mount opened. */
export type Needed = { done: true } | { done: false; session?: UploadSession };

export interface TransferContext {
  registry: Registry;
  repository: RepositoryName;
  cache: PierCache;
  /** The transport's policy, used for whole-upload retries too (default {@link DEFAULT_RETRY}). */
  retry?: RetryPolicy;
  /** PATCH chunks of this size, when the user chose it. */
  chunkSize?: number;
  signal: AbortSignal;
  emit(e: PushEvent): void;
  stats: PushStats;
  /** Where the source's blobs can be mounted from. */
  mountFrom?: { registry: string; repository: string };
}

/** Checks and uploads blobs to one repository; keeps what it learns of the registry (chunking) across blobs. */
export class BlobTransfer {
  private chunkSize: number | undefined;
  private warned413 = false;

  constructor(private readonly ctx: TransferContext) {
    this.chunkSize = ctx.chunkSize;
  }

  private get registry(): Registry {
    return this.ctx.registry;
  }

  private get repo(): RepositoryName {
    return this.ctx.repository;
  }

  private emit(e: PushEvent): void {
    this.ctx.emit(e);
  }

  private checkAbort(): void {
    if (this.ctx.signal.aborted) throw new ClientError('ERR_ABORTED', 'cancelled');
  }

  /** HEAD, then mount, then upload. Returns how it went. */
  async ensure(
    id: string,
    kind: 'layer' | 'config',
    digest: Digest,
  ): Promise<Needed> {
    this.checkAbort();
    if (await this.registry.hasBlob(this.repo, digest, ['pull', 'push'], this.ctx.signal)) {
      this.ctx.stats.existed++;
      this.emit({ type: 'blob', id, kind, status: 'exists', digest: digest.toString() });
      await this.ctx.cache.recordBlob(this.registry.registry, this.repo, digest);
      return { done: true };
    }
    const candidates = (await this.ctx.cache.repositoriesWithBlob(this.registry.registry, digest)).filter((r) => r !== this.repo);
    if (this.ctx.mountFrom && this.ctx.mountFrom.registry === this.registry.registry && this.ctx.mountFrom.repository !== this.repo) {
      candidates.unshift(this.ctx.mountFrom.repository);
    }
    for (const from of [...new Set(candidates)].slice(0, 3)) {
      try {
        const r = await this.registry.mountBlob(this.repo, digest, from, this.ctx.signal);
        if (r === 'mounted') {
          this.ctx.stats.mounted++;
          this.emit({ type: 'blob', id, kind, status: 'mounted', digest: digest.toString(), from });
          await this.ctx.cache.recordBlob(this.registry.registry, this.repo, digest);
          return { done: true };
        }
        return { done: false, session: r };
      } catch (err) {
        if (err instanceof ClientError && (err.code === 'ERR_UNAUTHORIZED' || err.code === 'ERR_DENIED' || err.code === 'ERR_NOT_FOUND')) continue;
        throw err;
      }
    }
    return { done: false };
  }

  /**
   * Uploads one blob, resuming across broken connections and runs.
   * `journalKey` names it in the journal; `produce(offset)` gives the bytes
   * from `offset`. Returns the digest and total size.
   */
  async upload(
    id: string,
    journalKey: string,
    session: UploadSession | undefined,
    produce: (offset: number) => Promise<Produced>,
    sizeHint: number,
  ): Promise<{ digest: Digest; size: number }> {
    const cache = this.ctx.cache;
    // Small blobs are cheaper to send again than to journal and resume.
    const journalled = sizeHint >= JOURNAL_MIN;
    const journal = async (loc: URL) => {
      if (journalled) await cache.writeJournal({ registry: registryName, repository: this.repo, blob: journalKey, location: loc.toString() });
    };
    const registryName = this.registry.registry;
    const policy = this.ctx.retry ?? DEFAULT_RETRY;
    let location = session?.location;
    let checkOffset = false;
    if (session?.minChunk && !this.chunkSize) this.chunkSize = Math.max(session.minChunk, FALLBACK_CHUNK);
    if (!location && journalled) {
      const j = await cache.journal(registryName, this.repo, journalKey);
      if (j) {
        location = new URL(j.location);
        checkOffset = true;
      }
    } else if (location) {
      await journal(location);
    }
    let failures = 0;
    let lastOffset = -1;
    for (;;) {
      this.checkAbort();
      let produced: Produced | undefined;
      try {
        if (!location) {
          const s = await this.registry.startUpload(this.repo, this.ctx.signal);
          location = s.location;
          if (s.minChunk && !this.chunkSize) this.chunkSize = Math.max(s.minChunk, FALLBACK_CHUNK);
          await journal(location);
        }
        let offset = 0;
        if (checkOffset) {
          const st = await this.registry.uploadStatus(this.repo, location, this.ctx.signal);
          if (!st) {
            // The registry forgot the session: start a new one.
            location = undefined;
            checkOffset = false;
            continue;
          }
          offset = st.offset;
          location = st.location;
          if (offset > 0) {
            this.ctx.stats.resumed++;
            this.emit({ type: 'resume', id, offset });
          }
        }
        if (offset > lastOffset) failures = 0;
        lastOffset = Math.max(lastOffset, offset);
        produced = await produce(offset);
        const digestOf = produced.digest;
        let digestPromise: Promise<Digest> | undefined;
        produced.digest = () => (digestPromise ??= digestOf());
        const total = produced.size;
        let sent = offset;
        const report = (n: number) => {
          sent += n;
          this.ctx.stats.bytesSent += n;
          this.emit({ type: 'progress', id, current: sent, total });
        };
        const body = pipeline(produced.stream, meter(0, report), () => {});
        const chunkSize = this.chunkSize;
        if (chunkSize === undefined) {
          if (offset === 0 && total !== undefined && produced.known) {
            await this.registry.sendUpload(this.repo, location, body, { digest: produced.known, length: total, signal: this.ctx.signal });
          } else {
            const opts: { length?: number; range?: [number, number]; signal?: AbortSignal } = { signal: this.ctx.signal };
            if (total !== undefined) {
              opts.length = total - offset;
              if (total > offset) opts.range = [offset, total - 1];
            }
            if (total === undefined || total > offset) location = await this.registry.sendUpload(this.repo, location, body, opts);
            else body.resume();
            await journal(location);
            const digest = await produced.digest();
            await this.registry.sendUpload(this.repo, location, undefined, { digest, length: 0, signal: this.ctx.signal });
          }
        } else {
          let at = offset;
          for await (const chunk of chunksOf(body, chunkSize)) {
            location = await this.registry.sendUpload(this.repo, location, chunk, {
              length: chunk.length,
              range: [at, at + chunk.length - 1],
              signal: this.ctx.signal,
            });
            at += chunk.length;
            await journal(location);
          }
          const digest = await produced.digest();
          await this.registry.sendUpload(this.repo, location, undefined, { digest, length: 0, signal: this.ctx.signal });
        }
        const digest = await produced.digest();
        const size = produced.sizeAfter?.() ?? total ?? sent;
        if (journalled) await cache.clearJournal(registryName, this.repo, journalKey);
        return { digest, size };
      } catch (err) {
        produced?.stream.destroy();
        if (err instanceof ClientError && err.code === 'ERR_DIGEST_MISMATCH') {
          // The source failed verification: the session is never closed, and cancelled so the
          // registry drops what it holds; nothing of it is resumed.
          if (location) await this.registry.cancelUpload(this.repo, location, AbortSignal.timeout(10_000)).catch(() => undefined);
          if (journalled) await cache.clearJournal(registryName, this.repo, journalKey);
          throw err;
        }
        if (this.ctx.signal.aborted || (err instanceof ClientError && err.code === 'ERR_ABORTED')) {
          throw new ClientError('ERR_ABORTED', 'cancelled; run the same command again to resume', { cause: err });
        }
        if (err instanceof ClientError && err.code === 'ERR_TOO_LARGE') {
          if (this.chunkSize === undefined) {
            this.chunkSize = FALLBACK_CHUNK;
            if (!this.warned413) {
              this.warned413 = true;
              this.emit({ type: 'warning', message: `${registryName} refused a whole-blob upload as too large (HTTP 413); switching to ${FALLBACK_CHUNK >> 20} MiB chunks` });
            }
            checkOffset = true;
            continue;
          }
          if (this.chunkSize > MIN_CHUNK && this.ctx.chunkSize === undefined) {
            // Halve until the limit is found (at most log2(16 MiB / 256 KiB) = 6 times).
            this.chunkSize = Math.max(MIN_CHUNK, Math.floor(this.chunkSize / 2));
            checkOffset = true;
            continue;
          }
        }
        if (err instanceof ClientError && err.code === 'ERR_NOT_FOUND' && location && failures < policy.attempts) {
          // The session vanished (expired, or the registry restarted).
          failures++;
          location = undefined;
          checkOffset = false;
          continue;
        }
        if (isRetryable(err) && ++failures < policy.attempts) {
          const delay = backoff(policy, failures);
          this.emit({ type: 'retry', id, attempt: failures, delay, reason: (err as Error).message });
          await sleep(delay, this.ctx.signal);
          checkOffset = location !== undefined;
          continue;
        }
        throw err;
      }
    }
  }
}
