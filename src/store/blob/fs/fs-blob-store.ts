/**
 * The filesystem blob store. On-disk layout under `root`:
 *
 *   blobs/<algorithm>/<first two hex>/<hex>   committed blobs, read-only, named by digest
 *   uploads/<id>                             bytes of an upload in progress
 *
 * A blob appears under blobs/ only by rename(2) from uploads/ after its
 * digest was verified and the file fsync'd, followed by an fsync of the
 * directory: a crash at any moment leaves either no blob or a whole, correct
 * one. Upload ids are UUIDs, checked before any path is built from them.
 *
 * Hashing: sha256 is computed while bytes arrive, inline, or on the hash
 * thread (src/shared/hash-thread.ts) when other uploads were receiving as
 * the upload's bytes began, and kept per upload between appends of one
 * process. After a restart, a failed append, a lost hash thread, or for
 * sha512, commit re-reads the upload file instead.
 *
 * Files are private to the service user: folders 0700, files 0600 (behind
 * nginx with `accelRedirect`, run nginx's workers as that user or give them
 * read access to blobs/).
 *
 * Receiving: an append takes the body with 'data' events (no promise per
 * piece) and copies the pieces into pooled batches (1 MiB, 512 KiB while
 * others receive); each full batch is written and hashed while the next
 * fills; the body is paused while a full batch waits, so an upload holds
 * at most two batches.
 * Every 4 MiB received (more with several uploads) it asks V8 for a
 * young-generation collection, which frees the copied pieces (decisions
 * 0128, 0129, 0134, 0135).
 *
 * Write failures: a write's failure stops the append before it takes more
 * of the body, so a full device (ENOSPC, EDQUOT) or an I/O error surfaces
 * as a {@link BlobStoreError} (ERR_STORAGE_FULL, ERR_STORAGE_FAILED) from
 * the call that caused it, within a batch; an append that fails cuts its
 * upload back to the last wholly written batch and leaves it resumable.
 * New bytes are refused below the {@link SpaceGuard}'s minimum.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Digest } from '../../../oci/digest.js';
import {
  BlobStoreError,
  type BlobFileOpener,
  type BlobInfo,
  type BlobLocation,
  type BlobLocator,
  type BlobStore,
  type ByteRange,
  type UploadInfo,
} from '../blob-store.js';
import { NO_GUARD, type SpaceGuard } from '../../disk-space.js';
import { noteBytesReceived, receiving as markReceiving, uploadsReceiving } from '../../../shared/young-gc.js';
import { BufferPool } from '../../../shared/buffer-pool.js';
import { ChoosingHash, type RunningHash } from '../../../shared/hash-thread.js';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WRITE_BUFFER = 1024 * 1024;
/**
 * Bytes of an upload gathered into one write (writev): large, so a GiB is a
 * thousand system calls, and small enough that many concurrent uploads stay
 * cheap (at most two batches per upload: one being written, one filling).
 */
const APPEND_BUFFER = 1024 * 1024;
/**
 * The batch size while other uploads are receiving too: with 150 uploads at
 * once (50 pushes of 3 layers), 1 MiB batches held ~290–380 MB of RSS, 512
 * KiB ~160–280 MB at about the same wall time; 256 KiB was slower (more
 * writes and hash messages). Decision 0135.
 */
const SHARED_BATCH = 512 * 1024;
/** Batches over shared memory (the hash thread reads them in place); a few idle ones of each size are kept. */
const loneBatches = new BufferPool(APPEND_BUFFER, 4, true);
const sharedBatches = new BufferPool(SHARED_BATCH, 16, true);
/** A batch for an upload receiving now: smaller while others receive too. */
function takeBatch(): Buffer {
  return uploadsReceiving() > 1 ? sharedBatches.take() : loneBatches.take();
}
function giveBatch(buffer: Buffer): void {
  (buffer.length === SHARED_BATCH ? sharedBatches : loneBatches).give(buffer);
}
/**
 * Copies as much of `source` from `sourceStart` as fits into `target` at
 * `targetStart`; returns the bytes copied. `fill` with a buffer of exactly
 * the range's length is one native memcpy; node 20's `copy` goes through
 * `TypedArray.prototype.set`, which V8 does byte by byte with relaxed
 * atomics for a shared target (3x slower: ~5 % of the registry's CPU with
 * 50 pushes at once).
 */
function copyInto(target: Buffer, targetStart: number, source: Buffer, sourceStart: number): number {
  const n = Math.min(target.length - targetStart, source.length - sourceStart);
  if (n > 0) target.fill(source.subarray(sourceStart, sourceStart + n), targetStart, targetStart + n);
  return n;
}

/** Free space is checked again after this many bytes of one append. */
const SPACE_CHECK_EVERY = 4 * 1024 * 1024;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

interface LiveUpload {
  /** Running sha256 of exactly `size` bytes (inline or on the hash thread), or undefined when it must be recomputed. */
  hash: RunningHash | undefined;
  size: number;
  busy: boolean;
}

/** A running sha256 for a new upload: on the hash thread if other uploads are receiving when its bytes start to arrive. */
function uploadHash(): RunningHash {
  return new ChoosingHash(() => uploadsReceiving() > 1);
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** A failed write as the store's error: ERR_STORAGE_FULL for a full device, ERR_STORAGE_FAILED otherwise. */
export function writeError(err: unknown, what: string): unknown {
  if (err instanceof BlobStoreError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BlobStoreError('ERR_STORAGE_FULL', `the registry is out of storage: ${what}: no space left on the device (${code})`, { cause: err });
  }
  if (typeof code === 'string' && code.startsWith('E') && code !== 'ENOENT') {
    return new BlobStoreError('ERR_STORAGE_FAILED', `storage failed: ${what}: ${code}`, { cause: err });
  }
  return err;
}

/** Writes all of `buffers` at the end of `handle` (short writes continued). */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest);
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) skip -= b.length;
      else {
        next.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    if (bytesWritten === 0 && next.length > 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    rest = next;
  }
}

export class FsBlobStore implements BlobStore, BlobFileOpener, BlobLocator {
  private readonly blobsDir: string;
  private readonly uploadsDir: string;
  private readonly live = new Map<string, LiveUpload>();

  private constructor(
    readonly root: string,
    private readonly space: SpaceGuard,
    private readonly accelRedirect: string | undefined,
  ) {
    this.blobsDir = path.join(root, 'blobs');
    this.uploadsDir = path.join(root, 'uploads');
  }

  /**
   * Opens (creating, private) the store under `root`; `space` refuses new
   * bytes when free space is low. With `accelRedirect` (a URL path prefix
   * ending in `/`), {@link locate} hands blobs to a front nginx instead of
   * streaming them.
   */
  static async open(root: string, options: { space?: SpaceGuard; accelRedirect?: string } = {}): Promise<FsBlobStore> {
    const store = new FsBlobStore(root, options.space ?? NO_GUARD, options.accelRedirect);
    await mkdir(root, { recursive: true, mode: DIR_MODE });
    await mkdir(store.blobsDir, { recursive: true, mode: DIR_MODE });
    await mkdir(store.uploadsDir, { recursive: true, mode: DIR_MODE });
    // Private even when an older version created them world-readable.
    await chmod(store.blobsDir, DIR_MODE);
    await chmod(store.uploadsDir, DIR_MODE);
    return store;
  }

  private blobPath(digest: Digest): string {
    return path.join(this.blobsDir, digest.algorithm, digest.encoded.slice(0, 2), digest.encoded);
  }

  private uploadPath(id: string): string {
    if (!UPLOAD_ID.test(id)) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${JSON.stringify(id.slice(0, 80))} not found`);
    return path.join(this.uploadsDir, id);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.blobPath(digest));
      return { size: s.size };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * With `accelRedirect` set: the blob's internal path for nginx,
   * `<prefix><algorithm>/<first two hex>/<hex>` (its path under blobs/,
   * which the nginx location aliases); nginx answers `range` itself.
   * Without it: undefined (the registry sends the file).
   */
  async locate(digest: Digest): Promise<BlobLocation | undefined> {
    if (this.accelRedirect === undefined) return undefined;
    return { kind: 'internal', path: `${this.accelRedirect}${digest.algorithm}/${digest.encoded.slice(0, 2)}/${digest.encoded}` };
  }

  async openFile(digest: Digest): Promise<FileHandle> {
    try {
      return await open(this.blobPath(digest), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new BlobStoreError('ERR_BLOB_NOT_FOUND', `blob ${digest.toString()} not found`);
      throw err;
    }
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    const handle = await this.openFile(digest);
    return createReadStream('', {
      fd: handle,
      highWaterMark: WRITE_BUFFER,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async startUpload(): Promise<string> {
    await this.space.ensureRoom(0);
    const id = randomUUID();
    try {
      const handle = await open(this.uploadPath(id), 'wx', FILE_MODE);
      await handle.close();
    } catch (err) {
      throw writeError(err, 'starting an upload');
    }
    this.live.set(id, { hash: uploadHash(), size: 0, busy: false });
    return id;
  }

  async uploadInfo(id: string): Promise<UploadInfo> {
    const file = this.uploadPath(id);
    const live = this.live.get(id);
    if (live && !live.busy) return { size: live.size };
    try {
      return { size: (await stat(file)).size };
    } catch (err) {
      if (isNotFound(err)) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
      throw err;
    }
  }

  private async liveUpload(id: string): Promise<LiveUpload> {
    let live = this.live.get(id);
    if (!live) {
      const { size } = await this.uploadInfo(id);
      live = this.live.get(id) ?? { hash: size === 0 ? uploadHash() : undefined, size, busy: false };
      this.live.set(id, live);
    }
    return live;
  }

  async append(id: string, offset: number, data: Readable, options: { maxBytes?: number; expectedBytes?: number } = {}): Promise<UploadInfo> {
    const file = this.uploadPath(id);
    const live = await this.liveUpload(id);
    if (live.busy) throw new BlobStoreError('ERR_UPLOAD_BUSY', `upload ${id} is receiving data already`);
    if (offset !== live.size) {
      throw new BlobStoreError('ERR_UPLOAD_OFFSET', `upload ${id} has ${live.size} bytes; cannot write at ${offset}`);
    }
    live.busy = true;
    let handle: FileHandle | undefined;
    try {
      await this.space.ensureRoom(options.expectedBytes ?? 0);
      try {
        handle = await open(file, 'a', FILE_MODE);
      } catch (err) {
        if (isNotFound(err)) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
        throw writeError(err, `opening upload ${id}`);
      }
      const outcome = await receive(data, handle, live.hash, live.size, { id, maxBytes: options.maxBytes, space: this.space });
      live.size = outcome.kept;
      if (outcome.error !== undefined) {
        // The running hash no longer matches the file: commit re-reads it.
        live.hash?.dispose();
        live.hash = undefined;
        await handle.truncate(outcome.kept).catch(() => undefined);
        throw outcome.error;
      }
      return { size: live.size };
    } finally {
      await handle?.close().catch(() => undefined);
      live.busy = false;
    }
  }

  async commit(id: string, digest: Digest, expectedSize?: number): Promise<BlobInfo> {
    const file = this.uploadPath(id);
    const live = await this.liveUpload(id);
    if (live.busy) throw new BlobStoreError('ERR_UPLOAD_BUSY', `upload ${id} is receiving data`);
    live.busy = true;
    try {
      const handle = await open(file, 'r+');
      let size: number;
      try {
        size = (await handle.stat()).size;
        let actual = live.hash && digest.algorithm === 'sha256' && live.size === size ? await live.hash.digest() : undefined;
        if (actual === undefined) {
          const hash = createHash(digest.algorithm);
          for await (const chunk of createReadStream('', { fd: handle, autoClose: false, start: 0, highWaterMark: WRITE_BUFFER })) {
            hash.update(chunk as Buffer);
          }
          actual = hash.digest('hex');
        }
        if (actual !== digest.encoded) {
          throw new BlobStoreError('ERR_DIGEST_MISMATCH', `upload content has digest ${digest.algorithm}:${actual}, not ${digest.toString()}`);
        }
        if (expectedSize !== undefined && expectedSize !== size) {
          throw new BlobStoreError('ERR_SIZE_MISMATCH', `upload has ${size} bytes, expected ${expectedSize}`);
        }
        await handle.sync().catch((err: unknown) => {
          throw writeError(err, `syncing upload ${id}`);
        });
      } finally {
        await handle.close();
      }
      const target = this.blobPath(digest);
      const dir = path.dirname(target);
      try {
        await mkdir(dir, { recursive: true, mode: DIR_MODE });
        await rename(file, target);
        await syncDir(dir);
      } catch (err) {
        throw writeError(err, `storing blob ${digest.toString()}`);
      }
      this.forget(id);
      return { size };
    } catch (err) {
      if (err instanceof BlobStoreError && (err.code === 'ERR_DIGEST_MISMATCH' || err.code === 'ERR_SIZE_MISMATCH')) {
        this.forget(id);
        await unlink(file).catch(() => undefined);
      }
      throw err;
    } finally {
      live.busy = false;
    }
  }

  async cancelUpload(id: string): Promise<void> {
    if (!UPLOAD_ID.test(id)) return;
    this.forget(id);
    await rm(path.join(this.uploadsDir, id), { force: true });
  }

  async staleUploads(before: Date): Promise<string[]> {
    const stale: string[] = [];
    for (const name of await readdir(this.uploadsDir)) {
      if (!UPLOAD_ID.test(name) || this.live.get(name)?.busy) continue;
      try {
        if ((await stat(path.join(this.uploadsDir, name))).mtime < before) stale.push(name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return stale;
  }

  async statWithTime(digest: Digest): Promise<(BlobInfo & { modifiedAt: Date }) | undefined> {
    try {
      const s = await stat(this.blobPath(digest));
      return { size: s.size, modifiedAt: s.mtime };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(): AsyncIterable<Digest> {
    for (const algorithm of await readdirOrEmpty(this.blobsDir)) {
      if (!Digest.isAlgorithm(algorithm)) continue;
      for (const prefix of await readdirOrEmpty(path.join(this.blobsDir, algorithm))) {
        for (const name of await readdirOrEmpty(path.join(this.blobsDir, algorithm, prefix))) {
          const digest = name.startsWith(prefix) ? Digest.tryParse(`${algorithm}:${name}`) : undefined;
          if (digest) yield digest;
        }
      }
    }
  }

  async delete(digest: Digest): Promise<void> {
    try {
      await unlink(this.blobPath(digest));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Drops what this process keeps of upload `id` (its running hash included). */
  private forget(id: string): void {
    this.live.get(id)?.hash?.dispose();
    this.live.delete(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.live.keys()]) this.forget(id);
  }
}

/** What {@link receive} wrote: `kept` bytes of the file are whole; `error` is why it stopped early, if it did. */
interface Received {
  kept: number;
  error: Error | undefined;
}

/**
 * Reads `data` to its end into `handle` (opened for append, holding `size`
 * bytes), adding every byte to `hash` batch by batch. Chunks are taken
 * with 'data' events (no promise per chunk) and copied into batches from
 * a pool ({@link takeBatch}), each written as it fills, one in flight
 * while the next fills; while a full batch waits for the write, or free
 * space is being checked, `data` is paused, so at most two batches of one
 * upload are in memory. The copy lets each body piece (a fresh Buffer
 * from node's HTTP parser) die as soon as its event returns, so a
 * young-generation collection frees it however many uploads are in
 * flight; held until written, pieces outlived collections, were promoted
 * and freed only by full collections (decision 0134).
 *
 * It never rejects: it settles once nothing is in flight. A failing source
 * keeps what arrived (what is gathered is written); a failing write (as
 * the store's error), `maxBytes` passed (ERR_SIZE_MISMATCH) or free space
 * below the guard's minimum stop it at once, keeping only what was wholly
 * written. `data` is left paused and not destroyed: the caller still
 * answers on its connection.
 */
function receive(
  data: Readable,
  handle: FileHandle,
  hash: RunningHash | undefined,
  size: number,
  options: { id: string; maxBytes: number | undefined; space: SpaceGuard },
): Promise<Received> {
  return new Promise<Received>((resolve) => {
    let kept = size;
    let received = 0;
    let nextCheck = SPACE_CHECK_EVERY;
    /** The batch being filled (from the pool) and how full it is. */
    let batch: Buffer | undefined;
    let filled = 0;
    /** Pieces that arrived while the batch was full and the previous one still being written. */
    let overflow: Buffer[] = [];
    let writing = false;
    let checking = false;
    let ended = false;
    let settled = false;
    /** Why receiving stops; `keepPending`: the source failed, so what arrived is still written. */
    let stop: { error: Error; keepPending: boolean } | undefined;
    const doneReceiving = markReceiving();

    const full = () => batch !== undefined && filled === batch.length;
    const gathered = () => filled > 0 || overflow.length > 0;

    /** Settles once nothing is in flight and the source ended or receiving stopped; writes what is left first. */
    const finish = () => {
      if (settled || writing || checking) return;
      if (gathered() && (stop === undefined ? ended : stop.keepPending)) {
        if (stop !== undefined) stop.keepPending = false;
        write();
        return;
      }
      if (stop === undefined && !ended) return;
      settled = true;
      if (batch !== undefined) giveBatch(batch);
      batch = undefined;
      overflow = [];
      doneReceiving();
      cleanup();
      data.pause();
      resolve({ kept, error: stop?.error });
    };
    const fail = (error: unknown, keepPending: boolean) => {
      if (stop === undefined) stop = { error: error instanceof Error ? error : new Error(String(error)), keepPending };
      data.pause();
      finish();
    };
    /** Resumes the source unless a full batch or a space check holds it. */
    const pump = () => {
      if (stop !== undefined || ended) return finish();
      if (full() || overflow.length > 0) {
        if (writing) return;
        write();
      }
      if (!checking && data.isPaused()) data.resume();
    };
    /**
     * Writes the batch (as far as it is filled) and any overflow after it,
     * and adds them to the hash (inline, or on the hash thread meanwhile);
     * the batch goes back to the pool once both are done.
     */
    const write = () => {
      const buffer = batch;
      const pieces = buffer !== undefined && filled > 0 ? [buffer.subarray(0, filled), ...overflow] : overflow;
      const bytes = filled + overflow.reduce((n, b) => n + b.length, 0);
      batch = undefined;
      filled = 0;
      overflow = [];
      writing = true;
      const written = () => {
        writing = false;
        if (buffer !== undefined) giveBatch(buffer);
      };
      const hashed = hash === undefined ? undefined : Promise.all(pieces.map((piece) => hash.update(piece)));
      void Promise.allSettled([writeAll(handle, pieces), hashed]).then(([write]) => {
        written();
        if (write.status === 'fulfilled') {
          kept += bytes;
          pump();
        } else {
          fail(writeError(write.reason, `writing upload ${options.id}`), false);
        }
      });
    };
    /** Copies `chunk` into batches, writing each as it fills; what finds no room while a write is in flight waits in `overflow`. */
    const gather = (chunk: Buffer) => {
      let offset = 0;
      while (offset < chunk.length) {
        if (full()) {
          if (writing) {
            overflow.push(offset === 0 ? chunk : chunk.subarray(offset));
            data.pause();
            return;
          }
          write();
        }
        batch ??= takeBatch();
        const n = copyInto(batch, filled, chunk, offset);
        filled += n;
        offset += n;
      }
      if (full()) {
        if (writing) data.pause();
        else write();
      }
    };
    const onData = (chunk: Buffer) => {
      if (stop !== undefined) return;
      received += chunk.length;
      if (options.maxBytes !== undefined && received > options.maxBytes) {
        return fail(new BlobStoreError('ERR_SIZE_MISMATCH', `more than ${options.maxBytes} bytes sent`), false);
      }
      noteBytesReceived(chunk.length);
      if (overflow.length > 0) {
        overflow.push(chunk);
        data.pause();
      } else {
        gather(chunk);
      }
      if (received >= nextCheck) {
        nextCheck = received + SPACE_CHECK_EVERY;
        checking = true;
        data.pause();
        options.space.ensureRoom(0).then(
          () => {
            checking = false;
            pump();
          },
          (err: unknown) => {
            checking = false;
            fail(err, false);
          },
        );
      }
    };
    const onEnd = () => {
      ended = true;
      finish();
    };
    const onError = (err: unknown) => fail(err, true);
    const onClose = () => {
      if (!ended) fail(Object.assign(new Error('the request ended before its body did'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }), true);
    };
    const cleanup = () => {
      data.off('data', onData);
      data.off('end', onEnd);
      data.off('error', onError);
      data.off('close', onClose);
    };
    if (data.readableEnded) {
      ended = true;
      finish();
      return;
    }
    if (data.destroyed) {
      fail(data.errored ?? Object.assign(new Error('the request ended before its body did'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }), true);
      return;
    }
    data.on('data', onData);
    data.on('end', onEnd);
    data.on('error', onError);
    data.on('close', onClose);
  });
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
