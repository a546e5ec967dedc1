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
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Digest } from '../../../oci/digest.js';
import {
  BlobStoreError,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type UploadInfo,
} from '../blob-store.js';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WRITE_BUFFER = 1024 * 1024;
/** Bytes an upload may hold in memory before waiting for the disk: small, so many concurrent uploads stay cheap. */
const APPEND_BUFFER = 256 * 1024;

interface LiveUpload {
  /** Running sha256 of exactly `size` bytes, or undefined when it must be recomputed. */
  hash: Hash | undefined;
  size: number;
  busy: boolean;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class FsBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly uploadsDir: string;
  private readonly live = new Map<string, LiveUpload>();

  private constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.uploadsDir = path.join(root, 'uploads');
  }

  static async open(root: string): Promise<FsBlobStore> {
    const store = new FsBlobStore(root);
    await mkdir(store.blobsDir, { recursive: true });
    await mkdir(store.uploadsDir, { recursive: true });
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

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    let handle;
    try {
      handle = await open(this.blobPath(digest), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new BlobStoreError('ERR_BLOB_NOT_FOUND', `blob ${digest.toString()} not found`);
      throw err;
    }
    return createReadStream('', {
      fd: handle,
      highWaterMark: WRITE_BUFFER,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  async startUpload(): Promise<string> {
    const id = randomUUID();
    const handle = await open(this.uploadPath(id), 'wx');
    await handle.close();
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

  async append(id: string, offset: number, data: Readable, options: { maxBytes?: number } = {}): Promise<UploadInfo> {
    const file = this.uploadPath(id);
    const live = await this.liveUpload(id);
    if (live.busy) throw new BlobStoreError('ERR_UPLOAD_BUSY', `upload ${id} is receiving data already`);
    if (offset !== live.size) {
      throw new BlobStoreError('ERR_UPLOAD_OFFSET', `upload ${id} has ${live.size} bytes; cannot write at ${offset}`);
    }
    live.busy = true;
    const out = createWriteStream(file, { flags: 'a', highWaterMark: APPEND_BUFFER });
    let written = 0;
    try {
      await once(out, 'open');
      for await (const chunk of data as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (options.maxBytes !== undefined && written > options.maxBytes) {
          throw new BlobStoreError('ERR_SIZE_MISMATCH', `more than ${options.maxBytes} bytes sent`);
        }
        live.hash?.update(chunk);
        if (!out.write(chunk)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
      live.size += written;
      return { size: live.size };
    } catch (err) {
      // Keep what reached the disk; the running hash no longer matches it.
      out.destroy();
      await once(out, 'close').catch(() => undefined);
      live.hash = undefined;
      try {
        live.size = (await stat(file)).size;
      } catch {
        this.live.delete(id);
      }
      throw err;
    } finally {
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
        await handle.sync();
      } finally {
        await handle.close();
      }
      const target = this.blobPath(digest);
      const dir = path.dirname(target);
      await mkdir(dir, { recursive: true });
      await rename(file, target);
      await syncDir(dir);
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
