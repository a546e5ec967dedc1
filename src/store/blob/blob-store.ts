/**
 * The blob store: bytes named by their digest. It knows nothing of
 * repositories, tags or HTTP. Small role interfaces, composed into
 * {@link BlobStore}; every adapter runs the shared suite in
 * test/store/blob-store-suite.ts.
 *
 * Errors are {@link BlobStoreError}s with a stable `code`; the registry's
 * http-errors module is the one place that maps them to OCI errors.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/digest.js';
import { PierError } from '../../oci/pier-error.js';

export type BlobStoreErrorCode =
  | 'ERR_BLOB_NOT_FOUND'
  | 'ERR_UPLOAD_NOT_FOUND'
  | 'ERR_UPLOAD_OFFSET'
  | 'ERR_UPLOAD_BUSY'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_SIZE_MISMATCH'
  | 'ERR_RANGE_NOT_SATISFIABLE'
  /** The device is full (ENOSPC, EDQUOT): nothing more can be written until space is freed. */
  | 'ERR_STORAGE_FULL'
  /** Free space is below the configured minimum: new upload bytes are refused before the device fills. */
  | 'ERR_STORAGE_LOW'
  /** Any other write failure of the device (EIO, EROFS, ...). */
  | 'ERR_STORAGE_FAILED';

export class BlobStoreError extends PierError {
  constructor(
    readonly code: BlobStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BlobStoreError';
  }
}

export interface BlobInfo {
  size: number;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStatter {
  /** Size of a stored blob, or undefined if absent. */
  stat(digest: Digest): Promise<BlobInfo | undefined>;
}

export interface BlobReader {
  /**
   * A stream of the blob's bytes (or of `range`, which the caller has
   * checked against the size). Throws ERR_BLOB_NOT_FOUND.
   */
  open(digest: Digest, range?: ByteRange): Promise<Readable>;
}

export interface UploadInfo {
  /** Bytes received so far. */
  size: number;
}

/**
 * Resumable uploads. An upload is a byte sequence appended in order; it
 * becomes a blob only in {@link BlobIngester.commit}, after the digest of
 * everything received is verified and the bytes are durable.
 *
 * Concurrency: appends to one upload are serialised; a second append while
 * one runs fails with ERR_UPLOAD_BUSY. Different uploads are independent.
 */
export interface BlobIngester {
  /** Starts an empty upload with a fresh unguessable id. */
  startUpload(): Promise<string>;
  /** Throws ERR_UPLOAD_NOT_FOUND for unknown ids. */
  uploadInfo(id: string): Promise<UploadInfo>;
  /**
   * Appends a stream at `offset`, which must equal the current size
   * (ERR_UPLOAD_OFFSET otherwise). If the stream fails midway, whatever
   * arrived is kept and the size reflects it, so a client can resume.
   *
   * If writing fails (ERR_STORAGE_FULL, ERR_STORAGE_FAILED) or free space
   * falls below the store's minimum (ERR_STORAGE_LOW, checked before the
   * first byte against `expectedBytes` and again while bytes arrive), it
   * throws at once without reading the rest of `data`; the upload keeps
   * the bytes that were wholly written before the failure (a torn tail is
   * cut off), stays usable, and its size says where to resume.
   */
  append(id: string, offset: number, data: Readable, options?: { maxBytes?: number; expectedBytes?: number }): Promise<UploadInfo>;
  /**
   * Verifies the upload against `digest` (ERR_DIGEST_MISMATCH) and an
   * optional expected size (ERR_SIZE_MISMATCH), then moves it durably into
   * place. On mismatch the upload is discarded. Idempotent if the blob
   * already exists.
   */
  commit(id: string, digest: Digest, expectedSize?: number): Promise<BlobInfo>;
  /** Discards an upload; unknown ids are ignored. */
  cancelUpload(id: string): Promise<void>;
  /** Ids of uploads not written to since `before` (for expiry). */
  staleUploads(before: Date): Promise<string[]>;
}

export interface BlobDeleter {
  /** Removes a blob; absent blobs are ignored. */
  delete(digest: Digest): Promise<void>;
}

export interface BlobLister {
  /**
   * Every stored blob's digest, in no particular order, for garbage
   * collection. Blobs written or deleted during the walk may or may not
   * appear.
   */
  list(): AsyncIterable<Digest>;
  /** Size and last write time of a stored blob (GC's grace period), or undefined if absent. */
  statWithTime(digest: Digest): Promise<(BlobInfo & { modifiedAt: Date }) | undefined>;
}

export interface BlobStore extends BlobStatter, BlobReader, BlobIngester, BlobDeleter, BlobLister {
  close(): Promise<void>;
}

/**
 * Where a client or a front proxy can read a blob without the registry
 * streaming it: a URL to redirect to (an S3 presigned URL) or an internal
 * path for the proxy to serve (nginx `X-Accel-Redirect`).
 */
export type BlobLocation = { kind: 'redirect'; url: string; expiresAt: Date } | { kind: 'internal'; path: string };

/**
 * An optional role: a store that can hand out a location for a blob. The
 * registry checks for the role ({@link canLocate}) and never for an
 * adapter; the filesystem store does not implement it (it streams).
 */
export interface BlobLocator {
  /** A location for the blob (or `range` of it), or undefined to stream it instead. */
  locate(digest: Digest, range?: ByteRange): Promise<BlobLocation | undefined>;
}

export function canLocate(store: object): store is BlobLocator {
  return typeof (store as Partial<BlobLocator>).locate === 'function';
}

/**
 * An optional role: a store whose blobs are local files. The registry sends
 * such a blob with its own read/write loop (src/registry/send-file.ts) rather
 * than through {@link BlobReader.open}'s stream. The caller closes the handle.
 */
export interface BlobFileOpener {
  /** An open read-only handle on the blob's file. Throws ERR_BLOB_NOT_FOUND. */
  openFile(digest: Digest): Promise<FileHandle>;
}

export function canOpenFile(store: object): store is BlobFileOpener {
  return typeof (store as Partial<BlobFileOpener>).openFile === 'function';
}

/**
 * Where a store's own read loop writes a blob's bytes (the registry's
 * connection to the client). The store never learns more of HTTP than this.
 */
export interface ByteSink {
  /**
   * Writes `chunk`. Resolves true once `chunk` may be reused (it is in the
   * kernel's socket buffer), false if the sink closed (the reader stops).
   */
  write(chunk: Buffer): Promise<boolean>;
}

/** A blob's bytes (or a range of them): the store has answered, no byte is read yet. */
export interface BlobBody {
  /** How many bytes {@link sendTo} will send. */
  readonly length: number;
  /**
   * Sends every byte to `sink`, one chunk at a time, each after the
   * previous write resolved. Resolves when all are written or the sink
   * closed; rejects with ERR_STORAGE_FAILED if the store fails midway or
   * sends fewer bytes. The store's connection is released either way.
   */
  sendTo(sink: ByteSink): Promise<void>;
  /** Releases the store's connection without sending. */
  close(): void;
}

/**
 * An optional role: a store that sends blob bytes with its own read loop
 * (reused buffers, no stream layers) instead of {@link BlobReader.open}'s
 * stream. The S3 store reads its HTTP endpoint's socket straight into a
 * pooled buffer (decision 0127).
 */
export interface BlobBodyOpener {
  /**
   * The blob's body (or `range` of it, which the caller checked against
   * the size); undefined when this store cannot for this blob (use
   * {@link BlobReader.open}). Throws ERR_BLOB_NOT_FOUND, ERR_STORAGE_FAILED.
   */
  openBody(digest: Digest, range?: ByteRange): Promise<BlobBody | undefined>;
}

export function canOpenBody(store: object): store is BlobBodyOpener {
  return typeof (store as Partial<BlobBodyOpener>).openBody === 'function';
}
