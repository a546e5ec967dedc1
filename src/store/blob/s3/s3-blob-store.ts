/**
 * The S3 blob store: blobs in any S3-compatible object store (AWS S3, Ceph
 * RGW, MinIO), through the AWS SDK v3 (decision 0080). Layout in the
 * bucket, after distribution's:
 *
 *   blobs/<algorithm>/<first two hex>/<hex>    committed blobs, named by digest
 *   uploads/<id>/data                          a session's multipart object
 *   uploads/<id>/staged/<offset>               a session's tail shorter than a part
 *
 * Upload sessions continue on any replica: their state (size, multipart id,
 * parts, staged tail) is in the database ({@link UploadStateStore}), never
 * in this process. S3 parts must be at least 5 MiB (all but the last), so
 * a chunk's tail shorter than that is staged as its own object and folded
 * into the next part, read back once (decision 0081).
 *
 * A blob appears under blobs/ only by one PutObject or CopyObject after its
 * digest and size were verified: S3 writes an object whole or not at all,
 * so a crash never leaves a half-written blob.
 *
 * Hashing: SHA-256 runs on Node's native hash while bytes arrive, kept in
 * memory per session between appends of one process (a cache keyed by the
 * session and its size). When a session's chunks came through another
 * process, commit reads the assembled object back once instead (decision
 * 0082).
 *
 * Errors: the object store's failures are {@link BlobStoreError}s
 * (ERR_STORAGE_FAILED with the cause); this module never speaks HTTP.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Digest } from '../../../oci/digest.js';
import { BlobStoreError, type BlobBody, type BlobBodyOpener, type BlobInfo, type BlobLocation, type BlobLocator, type BlobStore, type ByteRange, type UploadInfo } from '../blob-store.js';
import type { UploadPart, UploadState, UploadStateStore } from '../upload-state.js';
import { rawGet } from './raw-get.js';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
export const MIN_PART = 5 * MiB;
/** S3's most parts per upload. */
const MAX_PARTS = 10_000;
/** S3's largest single CopyObject; larger blobs are copied part by part. */
const MAX_COPY = 5 * 1024 * MiB;
const COPY_PART = 512 * MiB;
/** How long a writer holds a session before another may take it; renewed while it writes. */
const HOLD_MS = 20_000;
/** How long a presigned URL is valid (distribution's default). */
const PRESIGN_SECONDS = 20 * 60;

export interface S3Options {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
  /** Answer blob GETs with a presigned URL (the BlobLocator role). */
  redirect: boolean;
  /** Seconds a request may make no progress (connect, or a byte either way) before it fails, each SDK attempt alike; default 60. */
  timeout?: number | undefined;
}

interface LiveHash {
  hash: Hash;
  /** Bytes the hash has seen: valid only while the session's size is this. */
  size: number;
  /** When it last saw bytes: entries of sessions that moved elsewhere are dropped once stale. */
  at: number;
}

/**
 * Part size for part `number` (1-based): 8 MiB, doubling every 2,000 parts,
 * so 10,000 parts hold about 480 GiB while one append buffers little.
 */
function partSize(number: number): number {
  return 8 * MiB * 2 ** Math.floor((number - 1) / 2000);
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

function storageError(err: unknown, what: string): unknown {
  if (err instanceof BlobStoreError) return err;
  const e = err as { name?: string; message?: string };
  return new BlobStoreError('ERR_STORAGE_FAILED', `storage failed: ${what}: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, { cause: err });
}

async function readAll(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Takes exactly `n` bytes from the front of `buffers` (which hold at least that many). */
function take(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let need = n;
  while (need > 0) {
    const b = buffers[0]!;
    if (b.length <= need) {
      out.push(b);
      buffers.shift();
      need -= b.length;
    } else {
      out.push(b.subarray(0, need));
      buffers[0] = b.subarray(need);
      need = 0;
    }
  }
  return out;
}

export class S3BlobStore implements BlobStore, BlobLocator, BlobBodyOpener {
  private readonly live = new Map<string, LiveHash>();

  private constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly states: UploadStateStore,
    private readonly redirect: boolean,
    /** Blob GETs read the socket directly (`http:` endpoints; decision 0127). */
    private readonly direct: boolean,
    private readonly timeoutMs: number,
  ) {}

  /**
   * A store over `options.bucket`, which must exist and be reachable
   * (checked once here: ERR_STORAGE_FAILED naming the bucket otherwise).
   * Session state goes to `states` (the database).
   */
  static async open(options: S3Options, states: UploadStateStore): Promise<S3BlobStore> {
    // Pier supports Node 20; the SDK's multi-line "Node 22 from 2027" warning on stderr would break the one-line rule (decision 0080).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      ...(options.accessKeyId && options.secretAccessKey ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } } : {}),
      // Streamed bodies as plain Content-Length requests: Ceph RGW refuses the SDK's aws-chunked CRC32 trailers (411).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK waits forever by default: a store that stops answering would hang every request (and the start).
      requestHandler: { connectionTimeout: (options.timeout ?? 60) * 1000, requestTimeout: (options.timeout ?? 60) * 1000, throwOnRequestTimeout: true },
    });
    try {
      await client.send(new HeadBucketCommand({ Bucket: options.bucket }));
    } catch (err) {
      client.destroy();
      throw storageError(err, `bucket ${options.bucket} at ${options.endpoint ?? 'AWS'}`);
    }
    return new S3BlobStore(client, options.bucket, states, options.redirect, options.endpoint?.startsWith('http:') ?? false, (options.timeout ?? 60) * 1000);
  }

  private blobKey(digest: Digest): string {
    return `blobs/${digest.algorithm}/${digest.encoded.slice(0, 2)}/${digest.encoded}`;
  }

  private dataKey(id: string): string {
    return `uploads/${id}/data`;
  }

  private checkId(id: string): void {
    if (!UPLOAD_ID.test(id)) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${JSON.stringify(id.slice(0, 80))} not found`);
  }

  // ---- blobs

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const s = await this.statWithTime(digest);
    return s ? { size: s.size } : undefined;
  }

  async statWithTime(digest: Digest): Promise<(BlobInfo & { modifiedAt: Date }) | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageError(err, `stat ${digest.toString()}`);
    }
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    try {
      const got = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return got.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new BlobStoreError('ERR_BLOB_NOT_FOUND', `blob ${digest.toString()} not found`);
      throw storageError(err, `reading ${digest.toString()}`);
    }
  }

  /**
   * The blob's bytes read straight from the endpoint's socket into a pooled
   * buffer (src/store/blob/s3/raw-get.ts), for `http:` endpoints; undefined
   * otherwise (use {@link open}, the SDK's stream).
   */
  async openBody(digest: Digest, range?: ByteRange): Promise<BlobBody | undefined> {
    if (!this.direct) return undefined;
    let url: string;
    try {
      url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), { expiresIn: 60 });
    } catch (err) {
      throw storageError(err, `signing a GET of ${digest.toString()}`);
    }
    return rawGet(new URL(url), range, this.timeoutMs, `blob ${digest.toString()}`);
  }

  /** A presigned GET URL when `redirect` is on (the client sends its own Range); undefined streams instead. */
  async locate(digest: Digest): Promise<BlobLocation | undefined> {
    if (!this.redirect) return undefined;
    const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }), { expiresIn: PRESIGN_SECONDS });
    return { kind: 'redirect', url, expiresAt: new Date(Date.now() + PRESIGN_SECONDS * 1000) };
  }

  async delete(digest: Digest): Promise<void> {
    await this.deleteKey(this.blobKey(digest));
  }

  async *list(): AsyncIterable<Digest> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: 'blobs/', ...(token ? { ContinuationToken: token } : {}) }));
      } catch (err) {
        throw storageError(err, 'listing blobs');
      }
      for (const o of page.Contents ?? []) {
        const [, algorithm, prefix, encoded] = (o.Key ?? '').split('/');
        if (!algorithm || !prefix || !encoded || !encoded.startsWith(prefix) || !Digest.isAlgorithm(algorithm)) continue;
        const digest = Digest.tryParse(`${algorithm}:${encoded}`);
        if (digest) yield digest;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  // ---- uploads

  async startUpload(): Promise<string> {
    const id = randomUUID();
    await this.states.create(id);
    this.live.set(id, { hash: createHash('sha256'), size: 0, at: Date.now() });
    return id;
  }

  async uploadInfo(id: string): Promise<UploadInfo> {
    this.checkId(id);
    const state = await this.states.get(id);
    if (!state) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
    return { size: state.size };
  }

  /**
   * Holds the session for the duration of `work` (renewing the hold while
   * it runs): ERR_UPLOAD_BUSY when another writer holds it.
   */
  private async holding<T>(id: string, work: (token: string) => Promise<T>): Promise<T> {
    this.checkId(id);
    const token = randomUUID();
    const got = await this.states.acquire(id, token, HOLD_MS);
    if (got === 'missing') throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
    if (got === 'busy') throw new BlobStoreError('ERR_UPLOAD_BUSY', `upload ${id} is receiving data already`);
    const renew = setInterval(() => {
      this.states.acquire(id, token, HOLD_MS).catch(() => undefined);
    }, HOLD_MS / 3);
    try {
      return await work(token);
    } finally {
      clearInterval(renew);
      await this.states.release(id, token).catch(() => undefined);
    }
  }

  private async save(id: string, token: string, state: UploadState): Promise<void> {
    if (!(await this.states.save(id, token, state))) {
      throw new BlobStoreError('ERR_UPLOAD_BUSY', `upload ${id} was taken over by another writer or ended`);
    }
  }

  append(id: string, offset: number, data: Readable, options: { maxBytes?: number; expectedBytes?: number } = {}): Promise<UploadInfo> {
    return this.holding(id, async (token) => {
      const state = await this.states.get(id);
      if (!state) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
      if (state.assembled) throw new BlobStoreError('ERR_UPLOAD_BUSY', `upload ${id} is being committed`);
      if (offset !== state.size) throw new BlobStoreError('ERR_UPLOAD_OFFSET', `upload ${id} has ${state.size} bytes; cannot write at ${offset}`);
      const cached = this.live.get(id);
      // The cached hash counts only if it saw exactly the bytes the database says the session holds.
      const live: LiveHash | undefined = cached?.size === state.size ? cached : state.size === 0 ? { hash: createHash('sha256'), size: 0, at: 0 } : undefined;
      this.live.delete(id);
      const buffers: Buffer[] = [];
      let buffered = 0;
      /** Staged bytes not yet in a part (the next part starts with them). */
      let staged = state.staged.reduce((n, s) => n + s.size, 0);
      let partsQueued = state.parts.length;
      let received = 0;
      let inFlight: Promise<void> | undefined;
      /** Writes the staged tail + `body` as the next part, then records it (the new size with it). */
      const writePart = async (body: Buffer[], bytes: number) => {
        const number = state.parts.length + 1;
        if (number > MAX_PARTS) throw new BlobStoreError('ERR_STORAGE_FAILED', `storage failed: upload ${id} would need more than ${MAX_PARTS} parts`);
        const head = state.staged.length > 0 ? await this.readStaged(state.staged) : [];
        const part = Buffer.concat([...head, ...body]);
        state.multipartId ??= await this.createMultipart(id, token, state);
        const etag = await this.uploadPart(id, state.multipartId, number, part);
        const obsolete = state.staged;
        state.parts.push({ number, etag, size: part.length });
        state.staged = [];
        state.size += bytes;
        await this.save(id, token, state);
        for (const s of obsolete) await this.deleteKey(s.key).catch(() => undefined);
      };
      /** Stages `body` (a tail shorter than a part) as its own object, then records it. */
      const stage = async (body: Buffer[]) => {
        const bytes = Buffer.concat(body);
        const key = `uploads/${id}/staged/${state.size}`;
        await this.put(key, bytes);
        state.staged.push({ key, size: bytes.length });
        state.size += bytes.length;
        await this.save(id, token, state);
      };
      /** Waits for the part in flight, then makes what is still buffered a part (with the staged tail) or stages it. */
      const flushTail = async () => {
        if (inFlight) await inFlight;
        inFlight = undefined;
        if (buffered === 0) return;
        const n = buffered;
        const body = take(buffers, n);
        buffered = 0;
        if (staged + n >= MIN_PART) {
          await writePart(body, n);
          staged = 0;
        } else {
          await stage(body);
          staged += n;
        }
      };
      let storageFailed = false;
      try {
        for await (const chunk of data.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
          received += chunk.length;
          if (options.maxBytes !== undefined && received > options.maxBytes) {
            throw new BlobStoreError('ERR_SIZE_MISMATCH', `more than ${options.maxBytes} bytes sent`);
          }
          live?.hash.update(chunk);
          buffers.push(chunk);
          buffered += chunk.length;
          const want = partSize(partsQueued + 1) - staged;
          if (buffered >= want) {
            // One part uploads while the next fills: at most two parts of memory per session.
            if (inFlight) await inFlight;
            const body = take(buffers, want);
            buffered -= want;
            partsQueued++;
            staged = 0;
            inFlight = writePart(body, want).catch((err: unknown) => {
              storageFailed = true;
              throw err;
            });
            inFlight.catch(() => undefined);
          }
        }
        await flushTail();
        if (live) this.live.set(id, { hash: live.hash, size: state.size, at: Date.now() });
        return { size: state.size };
      } catch (err) {
        // A failing source keeps what arrived (the client resumes after it); a failing store keeps what was recorded.
        if (!storageFailed && !(err instanceof BlobStoreError && err.code === 'ERR_STORAGE_FAILED')) {
          try {
            await flushTail();
            if (live) this.live.set(id, { hash: live.hash, size: state.size, at: Date.now() });
          } catch {
            // Not written, so not part of the session: the database says where to resume.
          }
        }
        throw err;
      }
    });
  }

  commit(id: string, digest: Digest, expectedSize?: number): Promise<BlobInfo> {
    return this.holding(id, async (token) => {
      const state = await this.states.get(id);
      if (!state) throw new BlobStoreError('ERR_UPLOAD_NOT_FOUND', `upload ${id} not found`);
      const cached = this.live.get(id);
      this.live.delete(id);
      try {
        if (state.multipartId === undefined && !state.assembled) {
          // Shorter than a part: the staged chunks are the whole blob; one read, one write.
          const bytes = Buffer.concat(await this.readStaged(state.staged));
          this.verify(createHash(digest.algorithm).update(bytes).digest('hex'), digest, bytes.length, expectedSize);
          if (!(await this.stat(digest))) await this.put(this.blobKey(digest), bytes);
        } else {
          if (!state.assembled) {
            const folded = state.staged;
            if (folded.length > 0) {
              const number = state.parts.length + 1;
              const tail = Buffer.concat(await this.readStaged(folded));
              state.parts.push({ number, etag: await this.uploadPart(id, state.multipartId!, number, tail), size: tail.length });
              state.staged = [];
            }
            await this.complete(id, state.multipartId!, state.parts, state.size);
            state.assembled = true;
            await this.save(id, token, state);
            for (const s of folded) await this.deleteKey(s.key).catch(() => undefined);
          }
          const actual =
            cached?.size === state.size && digest.algorithm === 'sha256' ? cached.hash.digest('hex') : await this.hashObject(this.dataKey(id), digest.algorithm);
          this.verify(actual, digest, state.size, expectedSize);
          if (!(await this.stat(digest))) await this.copy(this.dataKey(id), this.blobKey(digest), state.size);
        }
      } catch (err) {
        if (err instanceof BlobStoreError && (err.code === 'ERR_DIGEST_MISMATCH' || err.code === 'ERR_SIZE_MISMATCH')) await this.discard(id, state);
        throw err;
      }
      await this.discard(id, state);
      return { size: state.size };
    });
  }

  private verify(actual: string, digest: Digest, size: number, expectedSize: number | undefined): void {
    if (actual !== digest.encoded) {
      throw new BlobStoreError('ERR_DIGEST_MISMATCH', `upload content has digest ${digest.algorithm}:${actual}, not ${digest.toString()}`);
    }
    if (expectedSize !== undefined && expectedSize !== size) throw new BlobStoreError('ERR_SIZE_MISMATCH', `upload has ${size} bytes, expected ${expectedSize}`);
  }

  /** Discards the session; with no session row, whatever a crash left under uploads/<id>/ (objects, an open multipart upload). */
  async cancelUpload(id: string): Promise<void> {
    if (!UPLOAD_ID.test(id)) return;
    this.live.delete(id);
    const state = await this.states.get(id);
    if (state) {
      await this.discard(id, state);
      return;
    }
    for (const u of await this.openMultipart(`uploads/${id}/`)) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.key, UploadId: u.uploadId })).catch((err: unknown) => {
        if (!isNotFound(err)) throw storageError(err, `aborting upload ${id}`);
      });
    }
    for (const o of await this.objects(`uploads/${id}/`)) await this.deleteKey(o.key);
  }

  /**
   * Sessions idle since `before` (not held by a writer), and the ids of
   * leftovers in the bucket with no session row (a crash between writing
   * and recording), older than `before`.
   */
  async staleUploads(before: Date): Promise<string[]> {
    const stale = new Set(await this.states.idleSince(before));
    for (const [id, live] of this.live) if (live.at < before.getTime()) this.live.delete(id);
    const candidates = new Set<string>();
    for (const u of await this.openMultipart('uploads/')) if (u.initiated < before) candidates.add(u.key.split('/')[1] ?? '');
    for (const o of await this.objects('uploads/')) if (o.modified < before) candidates.add(o.key.split('/')[1] ?? '');
    for (const id of candidates) {
      if (UPLOAD_ID.test(id) && !stale.has(id) && !(await this.states.get(id))) stale.add(id);
    }
    return [...stale];
  }

  async close(): Promise<void> {
    this.live.clear();
    this.client.destroy();
  }

  // ---- object-store steps

  /** Removes every object of a session and aborts its multipart upload, then forgets it. */
  private async discard(id: string, state: UploadState): Promise<void> {
    if (state.multipartId !== undefined && !state.assembled) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.dataKey(id), UploadId: state.multipartId }));
      } catch (err) {
        if (!isNotFound(err)) throw storageError(err, `aborting upload ${id}`);
      }
    }
    if (state.assembled) await this.deleteKey(this.dataKey(id));
    for (const s of state.staged) await this.deleteKey(s.key);
    await this.states.delete(id);
  }

  private async createMultipart(id: string, token: string, state: UploadState): Promise<string> {
    let uploadId: string | undefined;
    try {
      uploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.dataKey(id) }))).UploadId;
    } catch (err) {
      throw storageError(err, `starting multipart upload ${id}`);
    }
    if (!uploadId) throw new BlobStoreError('ERR_STORAGE_FAILED', `storage failed: no multipart upload id for ${id}`);
    // Recorded at once, so cancel and expiry can abort it even if the first part never lands.
    await this.save(id, token, { ...state, multipartId: uploadId });
    return uploadId;
  }

  private async uploadPart(id: string, uploadId: string, number: number, body: Buffer): Promise<string> {
    try {
      const out = await this.client.send(
        new UploadPartCommand({ Bucket: this.bucket, Key: this.dataKey(id), UploadId: uploadId, PartNumber: number, Body: body, ContentLength: body.length }),
      );
      if (!out.ETag) throw new Error('no ETag for the part');
      return out.ETag;
    } catch (err) {
      throw storageError(err, `writing part ${number} of upload ${id}`);
    }
  }

  /**
   * Completes the multipart upload into the session's object. If an earlier
   * commit completed it but died before recording that, the object is
   * already there with the session's size: that counts as done.
   */
  private async complete(id: string, uploadId: string, parts: UploadPart[], size: number): Promise<void> {
    try {
      // The response's ETag is empty on RGW 16; nothing here relies on it.
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.dataKey(id),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload') {
        const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.dataKey(id) })).catch(() => undefined);
        if (head?.ContentLength === size) return;
      }
      throw storageError(err, `assembling upload ${id}`);
    }
  }

  private async put(key: string, body: Buffer): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }));
    } catch (err) {
      throw storageError(err, `writing ${key}`);
    }
  }

  private async readStaged(staged: { key: string }[]): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const s of staged) {
      try {
        const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: s.key }));
        out.push(await readAll(got.Body));
      } catch (err) {
        throw storageError(err, `reading ${s.key}`);
      }
    }
    return out;
  }

  private async hashObject(key: string, algorithm: string): Promise<string> {
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const hash = createHash(algorithm);
      for await (const c of got.Body as AsyncIterable<Buffer>) hash.update(c);
      return hash.digest('hex');
    } catch (err) {
      throw storageError(err, `reading ${key}`);
    }
  }

  /** Server-side copy: one CopyObject up to 5 GiB, a multipart copy beyond. */
  private async copy(from: string, to: string, size: number): Promise<void> {
    const source = `${this.bucket}/${from}`;
    try {
      if (size <= MAX_COPY) {
        await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source }));
        return;
      }
      const uploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to }))).UploadId!;
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let start = 0, n = 1; start < size; start += COPY_PART, n++) {
        const end = Math.min(size, start + COPY_PART) - 1;
        const out = await this.client.send(
          new UploadPartCopyCommand({ Bucket: this.bucket, Key: to, UploadId: uploadId, PartNumber: n, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
        );
        parts.push({ PartNumber: n, ETag: out.CopyPartResult?.ETag ?? '' });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      throw storageError(err, `storing ${to}`);
    }
  }

  private async objects(prefix: string): Promise<{ key: string; modified: Date }[]> {
    const out: { key: string; modified: Date }[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, modified: o.LastModified ?? new Date(0) });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw storageError(err, `listing ${prefix}`);
    }
    return out;
  }

  private async openMultipart(prefix: string): Promise<{ key: string; uploadId: string; initiated: Date }[]> {
    const out: { key: string; uploadId: string; initiated: Date }[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    try {
      for (;;) {
        const page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) }),
        );
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        idMarker = page.NextUploadIdMarker;
      }
    } catch (err) {
      throw storageError(err, `listing multipart uploads under ${prefix}`);
    }
    return out;
  }

  private async deleteKey(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (!isNotFound(err)) throw storageError(err, `deleting ${key}`);
    }
  }
}
