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
 * Hashing: sha256 is computed while bytes arrive (kept in memory per upload
 * between appends of one process). After a restart, a failed append, or for
 * sha512, commit re-reads the upload file instead.
 *
 * Files are private to the service user: folders 0700, files 0600 (behind
 * nginx with `accelRedirect`, run nginx's workers as that user or give them
 * read access to blobs/).
 *
 * Write failures: an append writes 1 MiB batches with writev, one batch in
 * flight while the next fills, and checks each write's outcome before it
 * takes the next chunk, so a full device (ENOSPC, EDQUOT) or an I/O error
 * surfaces as a {@link BlobStoreError} (ERR_STORAGE_FULL, ERR_STORAGE_FAILED)
 * from the call that caused it, within a batch; an append that fails cuts
 * its upload back to the last wholly written batch and leaves it resumable. New bytes are refused below the {@link SpaceGuard}'s minimum.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
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

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WRITE_BUFFER = 1024 * 1024;
/**
 * Bytes of an upload gathered into one write (writev): large, so a GiB is a
 * thousand system calls, and small enough that many concurrent uploads stay
 * cheap (at most two batches per upload: one being written, one filling).
 */
const APPEND_BUFFER = 1024 * 1024;
/** Free space is checked again after this many bytes of one append. */
const SPACE_CHECK_EVERY = 4 * 1024 * 1024;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

interface LiveUpload {
  /** Running sha256 of exactly `size` bytes, or undefined when it must be recomputed. */
  hash: Hash | undefined;
  size: number;
  busy: boolean;
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
    this.live.set(id, { hash: createHash('sha256'), size: 0, busy: false });
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
      live = this.live.get(id) ?? { hash: size === 0 ? createHash('sha256') : undefined, size, busy: false };
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
    /** Bytes wholly in the file: where the upload resumes if this append fails. */
    let kept = live.size;
    /** The batch filling up from the request. */
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    /** The batch being written: at most one, so the next fills while it runs (no await per write, two batches of memory at most). */
    let inFlight: Promise<void> | undefined;
    /** The device's failure, as the store's error: set by the write, thrown at the next step of the loop. */
    let failure: Error | undefined;
    const startWrite = () => {
      if (pendingBytes === 0 || !handle) return;
      const batch = pending;
      const bytes = pendingBytes;
      pending = [];
      pendingBytes = 0;
      inFlight = writeAll(handle, batch).then(
        () => {
          kept += bytes;
        },
        (err: unknown) => {
          const mapped = writeError(err, `writing upload ${id}`);
          failure = mapped instanceof Error ? mapped : new Error(String(mapped));
        },
      );
    };
    /** Waits for the batch in flight; throws the device's failure, if any. */
    const settle = async () => {
      if (inFlight) await inFlight;
      inFlight = undefined;
      if (failure !== undefined) throw failure;
    };
    try {
      await this.space.ensureRoom(options.expectedBytes ?? 0);
      try {
        handle = await open(file, 'a', FILE_MODE);
      } catch (err) {
        if (isNotFound(err)) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
        throw writeError(err, `opening upload ${id}`);
      }
      let written = 0;
      let nextCheck = SPACE_CHECK_EVERY;
      // Leaving the loop early must not destroy `data`: the caller still answers on its connection.
      for await (const chunk of data.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (options.maxBytes !== undefined && written > options.maxBytes) {
          throw new BlobStoreError('ERR_SIZE_MISMATCH', `more than ${options.maxBytes} bytes sent`);
        }
        if (failure !== undefined) throw failure;
        live.hash?.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= APPEND_BUFFER) {
          await settle();
          startWrite();
        }
        if (written >= nextCheck) {
          nextCheck = written + SPACE_CHECK_EVERY;
          await this.space.ensureRoom(0);
        }
      }
      await settle();
      startWrite();
      await settle();
      live.size = kept;
      return { size: live.size };
    } catch (err) {
      // The running hash no longer matches the file: commit re-reads it.
      live.hash = undefined;
      // A failing source keeps what arrived (the client resumes after it);
      // a failing device keeps only what was wholly written.
      await inFlight;
      if (failure === undefined) {
        startWrite();
        await inFlight;
      }
      if (handle) await handle.truncate(kept).catch(() => undefined);
      live.size = kept;
      throw err;
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
        let actual: string;
        if (live.hash && digest.algorithm === 'sha256' && live.size === size) {
          actual = live.hash.copy().digest('hex');
        } else {
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
      this.live.delete(id);
      return { size };
    } catch (err) {
      if (err instanceof BlobStoreError && (err.code === 'ERR_DIGEST_MISMATCH' || err.code === 'ERR_SIZE_MISMATCH')) {
        this.live.delete(id);
        await unlink(file).catch(() => undefined);
      }
      throw err;
    } finally {
      live.busy = false;
    }
  }

  async cancelUpload(id: string): Promise<void> {
    if (!UPLOAD_ID.test(id)) return;
    this.live.delete(id);
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

  async close(): Promise<void> {
    this.live.clear();
  }
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
