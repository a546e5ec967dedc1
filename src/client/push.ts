/**
 * The push engine: plan → transfer → manifest commit.
 *
 * - first, like crane: when the destination reference already names the
 *   manifest this push would PUT (the source's own, or one built from the
 *   diffID cache), every blob is there and nothing is sent;
 * - plan: every blob of every image is checked with HEAD (a failed HEAD is
 *   retried, never taken as missing); blobs recorded in another repository
 *   of the same registry are mounted (pull on the source, push on the
 *   target), falling back to upload when the registry refuses.
 * - transfer: at most `jobs` blobs at once; bodies are streamed from the
 *   source, so memory stays flat whatever the layer size. One monolithic
 *   PUT by default; chunked PATCHes when the registry asks
 *   (`OCI-Chunk-Min-Length`), when `chunkSize` is set, or after a 413.
 *   Uncompressed layers are gzipped on the fly on worker threads, and the
 *   result recorded in the diffID cache so the next push compresses nothing.
 *   A broken upload asks the registry how much it has and continues from
 *   there; the session is journalled so a killed command resumes too.
 * - commit: manifests are PUT (children by digest, then the index by tag).
 */
import { setMaxListeners } from 'node:events';
import { PassThrough, Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { Digest, Digester, MediaTypes, type Descriptor, type ImageReference, type RepositoryName } from '../oci/index.js';
import type { PierCache } from './cache.js';
import { ClientError, isRetryable } from './errors.js';
import { shortId, type EventSink, type PushEvent } from './events.js';
import { DEFAULT_GZIP, GzipWorkers, createParallelGzip, gzipCodec, type GzipSettings } from './gzip.js';
import { Limiter, OrderedLimiter } from './limiter.js';
import type { Registry, UploadSession } from './registry.js';
import type { ImageSource, RawLayer, SourceImage, SourceRoot, StoredBlob } from './sources/source.js';
import { DEFAULT_RETRY, backoff, sleep, type RetryPolicy } from './transport.js';

export type Compression = 'gzip' | 'none';

export interface PushOptions {
  registry: Registry;
  cache: PierCache;
  /** Parallel blob transfers (default 4). */
  jobs?: number;
  /** Upload in PATCH chunks of this many bytes. */
  chunkSize?: number;
  /** How raw layers (docker-archive, daemon) are sent (default gzip). */
  compression?: Compression;
  gzip?: GzipSettings;
  /** The compression threads to use (a {@link Client}'s); without, the push starts its own and ends them when done. */
  gzipWorkers?: GzipWorkers;
  /** `os/arch[/variant]`: push one platform of an index. */
  platform?: string;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** Upload-level retry policy (broken connections, 5xx on PATCH/PUT). */
  retry?: RetryPolicy;
}

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

export interface PushResult {
  reference: ImageReference;
  digest: Digest;
  size: number;
  mediaType: string;
  stats: PushStats;
}

/** The default chunk size once a 413 says monolithic uploads are too large. */
const FALLBACK_CHUNK = 16 * 1024 * 1024;
const MIN_CHUNK = 256 * 1024;
/** Raw layers up to this size are compressed in memory before anything is sent. */
const SMALL_LAYER = 8 * 1024 * 1024;
/** Uploads at least this large are journalled for resuming after a kill. */
const JOURNAL_MIN = 4 * 1024 * 1024;

function matchesPlatform(p: { os?: string; architecture?: string; variant?: string } | undefined, want: string): boolean {
  if (!p) return false;
  const [os, arch, variant] = want.split('/');
  return p.os === os && p.architecture === arch && (!variant || p.variant === variant);
}

/** Counts bytes through, reporting progress; drops the first `skip` bytes. */
function meter(skip: number, onBytes: (n: number) => void): Transform {
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
interface Produced {
  stream: Readable;
  digest: () => Promise<Digest>;
  /** Total size, when known up front. */
  size?: number;
  /** The digest, when known before reading (allows one monolithic PUT). */
  known?: Digest;
  /** Total size, once the stream is read (compressed output). */
  sizeAfter?: () => number;
}

export class PushEngine {
  /** Transfers (uploads) in flight: `jobs`. */
  private readonly limiter: OrderedLimiter;
  /** Existence checks and mounts in flight: cheap requests whose latency dominates re-pushes. */
  private readonly checks: Limiter;
  /** Small layers compressed in memory at once (bounds memory to jobs × 8 MiB). */
  private readonly compressing: Limiter;
  private readonly blobs = new Map<string, Promise<Descriptor>>();
  private chunkSize: number | undefined;
  private warned413 = false;
  readonly stats: PushStats = { compressed: 0, existed: 0, mounted: 0, pushed: 0, resumed: 0, bytesSent: 0 };
  private readonly gzip: GzipSettings;
  private readonly compression: Compression;
  /** Aborted by the user's signal or by the first failure, so no transfer outlives the push. */
  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;
  /** Compression threads: the caller's, or this push's own (ended when it ends). */
  private readonly workers: GzipWorkers;
  private readonly ownsWorkers: boolean;

  constructor(
    private readonly options: PushOptions,
    private readonly dest: ImageReference,
    private readonly mountFrom?: { registry: string; repository: string },
  ) {
    this.limiter = new OrderedLimiter(Math.max(1, options.jobs ?? 4));
    this.checks = new Limiter(Math.max(16, (options.jobs ?? 4) * 4));
    this.compressing = new Limiter(Math.max(1, options.jobs ?? 4));
    this.chunkSize = options.chunkSize;
    this.gzip = options.gzip ?? DEFAULT_GZIP;
    this.compression = options.compression ?? 'gzip';
    this.ownsWorkers = !options.gzipWorkers;
    this.workers = options.gzipWorkers ?? new GzipWorkers();
    this.signal = options.signal ? AbortSignal.any([options.signal, this.abort.signal]) : this.abort.signal;
    // Every request in flight listens on the signal: many at once is expected.
    setMaxListeners(0, this.signal, this.abort.signal);
  }

  private emit(e: PushEvent): void {
    this.options.onEvent?.(e);
  }

  private get registry(): Registry {
    return this.options.registry;
  }

  private get repo(): RepositoryName {
    return this.dest.repository;
  }

  private checkAbort(): void {
    if (this.signal.aborted) throw new ClientError('ERR_ABORTED', 'cancelled');
  }

  /** Pushes a whole source root; returns the top manifest's digest. */
  async push(root: SourceRoot): Promise<PushResult> {
    try {
      return await this.pushRoot(root);
    } catch (err) {
      // Stop every other transfer and wait for them: the first error is the one reported.
      this.abort.abort();
      await Promise.allSettled(this.blobs.values());
      if (this.options.signal?.aborted && !(err instanceof ClientError && err.code === 'ERR_ABORTED')) {
        throw new ClientError('ERR_ABORTED', 'cancelled; run the same command again to resume', { cause: err });
      }
      throw err;
    } finally {
      if (this.ownsWorkers) await this.workers.close();
    }
  }

  private async pushRoot(root: SourceRoot): Promise<PushResult> {
    let top: SourceRoot = root;
    if (root.kind === 'index' && this.options.platform) {
      const found = root.images.find((i) => matchesPlatform(i.descriptor.platform ?? i.image.platform, this.options.platform!));
      if (!found) {
        const have = root.images.map((i) => { const p = i.descriptor.platform; return p ? `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}` : '?'; }).join(', ');
        throw new ClientError('ERR_SOURCE', `no ${this.options.platform} image in the index (has ${have})`);
      }
      top = found.image;
    }
    const tagRef = this.dest.tag ?? this.dest.digest?.toString() ?? 'latest';
    const images = top.kind === 'image' ? [top] : top.images.map((i) => i.image);
    for (const image of images) this.announce(image);
    // Like crane: when the reference already names this very manifest, every blob is there.
    const predicted = top.kind === 'index' ? top.manifest : await this.predictManifest(top);
    // Layers never compressed before will be: boot the workers while the registry is asked.
    if (!predicted && this.compression !== 'none' && images.some((i) => i.layers.some((l) => l.kind === 'raw'))) this.workers.start();
    if (predicted && (await this.alreadyPushed(tagRef, predicted.bytes))) {
      for (const image of images) this.reportExisting(image);
      return this.upToDate(predicted.bytes, predicted.mediaType);
    }
    if (top.kind === 'image') {
      const m = await this.pushImage(top);
      const digest = await this.commit(tagRef, m.bytes, m.mediaType);
      return this.result(digest, m.bytes.length, m.mediaType);
    }
    const children = await Promise.all(top.images.map(async ({ descriptor, image }) => {
      const m = await this.pushImage(image);
      if (!Digest.of(m.bytes).equals(descriptor.digest)) {
        throw new ClientError('ERR_SOURCE', `index child ${descriptor.digest.toString()} does not match its manifest`);
      }
      return m;
    }));
    for (const c of children) await this.registry.putManifest(this.repo, Digest.of(c.bytes).toString(), c.bytes, c.mediaType, this.signal);
    const digest = await this.commit(tagRef, top.manifest.bytes, top.manifest.mediaType);
    return this.result(digest, top.manifest.bytes.length, top.manifest.mediaType);
  }

  /**
   * The manifest a push of `image` will PUT, when it can be known without
   * sending or compressing anything: the source's own, or one built from the
   * diffID cache. Undefined when a layer has never been compressed.
   */
  private async predictManifest(image: SourceImage): Promise<{ bytes: Buffer; mediaType: string } | undefined> {
    if (image.manifest) return image.manifest;
    const codec = gzipCodec(this.gzip);
    const layers: Descriptor[] = [];
    for (const l of image.layers) {
      if (l.kind === 'stored') layers.push(l.descriptor);
      else if (this.compression === 'none') layers.push({ mediaType: MediaTypes.ociLayer, digest: l.diffID, size: l.size });
      else {
        const known = await this.options.cache.compressedForm(l.diffID, codec);
        const digest = known ? Digest.tryParse(known.digest) : undefined;
        if (!known || !digest) return undefined;
        layers.push({ mediaType: MediaTypes.dockerLayerGzip, digest, size: known.size });
      }
    }
    return this.buildManifest(image.config.descriptor, layers);
  }

  /** Whether `reference` already names a manifest with exactly these bytes. Any doubt means no. */
  private async alreadyPushed(reference: string, bytes: Buffer): Promise<boolean> {
    this.checkAbort();
    try {
      const head = await this.registry.headManifest(this.repo, reference, ['pull', 'push']);
      return head?.digest?.equals(Digest.of(bytes)) ?? false;
    } catch (err) {
      // A registry that will not say (401/403 before push rights are checked, odd statuses): push normally.
      if (err instanceof ClientError && err.code !== 'ERR_NETWORK' && err.code !== 'ERR_ABORTED') return false;
      throw err;
    }
  }

  private reportExisting(image: SourceImage): void {
    for (const l of image.layers) {
      const id = l.kind === 'stored' ? shortId(l.descriptor.digest) : shortId(l.diffID);
      this.stats.existed++;
      this.emit({ type: 'blob', id, kind: 'layer', status: 'exists' });
    }
    this.stats.existed++;
    const config = image.config.descriptor.digest;
    this.emit({ type: 'blob', id: shortId(config), kind: 'config', status: 'exists', digest: config.toString() });
  }

  /** The result of a push that found everything in place: nothing sent, the manifest reported. */
  private upToDate(bytes: Buffer, mediaType: string): PushResult {
    const digest = Digest.of(bytes);
    const ev: PushEvent = { type: 'manifest', reference: this.dest.toString(), digest: digest.toString(), size: bytes.length, mediaType };
    if (this.dest.tag) ev.tag = this.dest.tag;
    this.emit(ev);
    return this.result(digest, bytes.length, mediaType);
  }

  private result(digest: Digest, size: number, mediaType: string): PushResult {
    return { reference: this.dest.withDigest(digest), digest, size, mediaType, stats: this.stats };
  }

  private async commit(reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    this.checkAbort();
    const digest = await this.registry.putManifest(this.repo, reference, bytes, mediaType, this.signal);
    const ev: PushEvent = { type: 'manifest', reference: this.dest.toString(), digest: digest.toString(), size: bytes.length, mediaType };
    if (this.dest.tag) ev.tag = this.dest.tag;
    this.emit(ev);
    return digest;
  }

  private announce(image: SourceImage): void {
    for (const l of image.layers) {
      const id = l.kind === 'stored' ? shortId(l.descriptor.digest) : shortId(l.diffID);
      this.emit({ type: 'blob', id, kind: 'layer', status: 'preparing' });
    }
  }

  /** Pushes an image's blobs; returns its manifest (the source's, or one built for compressed layers). */
  private async pushImage(image: SourceImage): Promise<{ bytes: Buffer; mediaType: string }> {
    const config = this.storedBlob({ kind: 'stored', descriptor: image.config.descriptor, open: async () => Readable.from([image.config.bytes]) }, 'config');
    const layers = image.layers.map((l) => (l.kind === 'stored' ? this.storedBlob(l, 'layer') : this.rawLayer(l)));
    const [configDesc, ...layerDescs] = await Promise.all([config, ...layers]);
    if (image.manifest) return { bytes: image.manifest.bytes, mediaType: image.manifest.mediaType };
    return this.buildManifest(configDesc, layerDescs);
  }

  /** The manifest for an image whose layers were compressed here (or sent uncompressed). */
  private buildManifest(config: Descriptor, layers: Descriptor[]): { bytes: Buffer; mediaType: string } {
    const oci = this.compression === 'none';
    const doc = {
      schemaVersion: 2,
      mediaType: oci ? MediaTypes.ociManifest : MediaTypes.dockerManifest,
      config: { mediaType: oci ? MediaTypes.ociConfig : MediaTypes.dockerConfig, size: config.size, digest: config.digest.toString() },
      layers: layers.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest.toString() })),
    };
    return { bytes: Buffer.from(JSON.stringify(doc)), mediaType: doc.mediaType };
  }

  private storedBlob(blob: StoredBlob, kind: 'layer' | 'config'): Promise<Descriptor> {
    const key = blob.descriptor.digest.toString();
    let p = this.blobs.get(key);
    if (!p) {
      p = this.transferStored(blob, kind);
      this.blobs.set(key, p);
    }
    return p;
  }

  private rawLayer(layer: RawLayer): Promise<Descriptor> {
    const key = `diffid:${layer.diffID.toString()}`;
    let p = this.blobs.get(key);
    if (!p) {
      p = this.transferRaw(layer);
      this.blobs.set(key, p);
    }
    return p;
  }

  /** Compresses a small layer into memory: its chunks as produced (not joined: no copy), digest and size. */
  private async compressSmall(id: string, layer: RawLayer): Promise<{ chunks: Buffer[]; size: number; digest: Digest }> {
    this.stats.compressed++;
    this.emit({ type: 'compress', id, diffID: layer.diffID.toString() });
    const chunks: Buffer[] = [];
    const digester = new Digester();
    const gz = pipeline(await layer.open(), createParallelGzip(this.gzip, this.workers), () => undefined);
    for await (const c of gz as AsyncIterable<Buffer>) {
      chunks.push(c);
      digester.update(c);
    }
    return { chunks, size: digester.size, digest: digester.digest() };
  }

  /** Runs `fn`; if it throws, gives up the ticket so later uploads are not held back. */
  private async skipOnFailure<T>(ticket: number, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.limiter.skip(ticket);
      throw err;
    }
  }

  /** HEAD, then mount, then upload. Returns how it went. */
  private async ensure(
    id: string,
    kind: 'layer' | 'config',
    digest: Digest,
  ): Promise<{ done: true } | { done: false; session?: UploadSession }> {
    this.checkAbort();
    if (await this.registry.hasBlob(this.repo, digest, ['pull', 'push'], this.signal)) {
      this.stats.existed++;
      this.emit({ type: 'blob', id, kind, status: 'exists', digest: digest.toString() });
      await this.options.cache.recordBlob(this.registry.registry, this.repo, digest);
      return { done: true };
    }
    const candidates = (await this.options.cache.repositoriesWithBlob(this.registry.registry, digest)).filter((r) => r !== this.repo);
    if (this.mountFrom && this.mountFrom.registry === this.registry.registry && this.mountFrom.repository !== this.repo) {
      candidates.unshift(this.mountFrom.repository);
    }
    for (const from of [...new Set(candidates)].slice(0, 3)) {
      try {
        const r = await this.registry.mountBlob(this.repo, digest, from, this.signal);
        if (r === 'mounted') {
          this.stats.mounted++;
          this.emit({ type: 'blob', id, kind, status: 'mounted', digest: digest.toString(), from });
          await this.options.cache.recordBlob(this.registry.registry, this.repo, digest);
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

  private async transferStored(blob: StoredBlob, kind: 'layer' | 'config'): Promise<Descriptor> {
    const d = blob.descriptor;
    const id = shortId(d.digest);
    const ticket = this.limiter.ticket();
    const r = await this.skipOnFailure(ticket, () => this.checks.run(() => this.ensure(id, kind, d.digest)));
    if (r.done) {
      this.limiter.skip(ticket);
      return d;
    }
    this.emit({ type: 'blob', id, kind, status: 'pushing', digest: d.digest.toString(), size: d.size });
    await this.limiter.run(ticket, () => this.upload(id, d.digest.toString(), r.session, (offset) => this.produceStored(blob, offset), d.size));
    this.stats.pushed++;
    this.emit({ type: 'blob', id, kind, status: 'pushed', digest: d.digest.toString(), size: d.size });
    await this.options.cache.recordBlob(this.registry.registry, this.repo, d.digest);
    return d;
  }

  private async produceStored(blob: StoredBlob, offset: number): Promise<Produced> {
    return { stream: await blob.open(offset), digest: async () => blob.descriptor.digest, size: blob.descriptor.size, known: blob.descriptor.digest };
  }

  private async transferRaw(layer: RawLayer): Promise<Descriptor> {
    const id = shortId(layer.diffID);
    const ticket = this.limiter.ticket();
    if (this.compression === 'none') {
      const blob: StoredBlob = { kind: 'stored', descriptor: { mediaType: MediaTypes.ociLayer, digest: layer.diffID, size: layer.size }, open: async () => layer.open() };
      const r = await this.skipOnFailure(ticket, () => this.checks.run(() => this.ensure(id, 'layer', layer.diffID)));
      if (r.done) this.limiter.skip(ticket);
      else {
        this.emit({ type: 'blob', id, kind: 'layer', status: 'pushing', size: layer.size });
        await this.limiter.run(ticket, () => this.upload(id, layer.diffID.toString(), r.session, async (offset) => {
          const stream = pipeline(await layer.open(), meter(offset, () => {}), () => {});
          return { stream, digest: async () => layer.diffID, size: layer.size, known: layer.diffID };
        }, layer.size));
        this.stats.pushed++;
        this.emit({ type: 'blob', id, kind: 'layer', status: 'pushed', digest: layer.diffID.toString(), size: layer.size });
        await this.options.cache.recordBlob(this.registry.registry, this.repo, layer.diffID);
      }
      return blob.descriptor;
    }
    const codec = gzipCodec(this.gzip);
    const mediaType = MediaTypes.dockerLayerGzip;
    const known = await this.skipOnFailure(ticket, () => this.options.cache.compressedForm(layer.diffID, codec));
    let session: UploadSession | undefined;
    if (known) {
      const digest = Digest.parse(known.digest);
      const r = await this.skipOnFailure(ticket, () => this.checks.run(() => this.ensure(id, 'layer', digest)));
      if (r.done) {
        this.limiter.skip(ticket);
        return { mediaType, digest, size: known.size };
      }
      session = r.session;
    }
    if (!known && layer.size <= SMALL_LAYER) {
      // Small layers are compressed in memory first: the digest is then known, so the
      // blob may already exist or be mountable, and an upload is one monolithic PUT.
      const compressed = await this.skipOnFailure(ticket, () => this.compressing.run(() => this.compressSmall(id, layer)));
      await this.options.cache.recordCompressedForm(layer.diffID, codec, { digest: compressed.digest.toString(), size: compressed.size, mediaType });
      const descriptor: Descriptor = { mediaType, digest: compressed.digest, size: compressed.size };
      const r = await this.skipOnFailure(ticket, () => this.checks.run(() => this.ensure(id, 'layer', compressed.digest)));
      if (r.done) {
        this.limiter.skip(ticket);
        return descriptor;
      }
      this.emit({ type: 'blob', id, kind: 'layer', status: 'pushing', digest: compressed.digest.toString(), size: compressed.size });
      await this.limiter.run(ticket, () =>
        this.upload(id, compressed.digest.toString(), r.session, async (offset) => ({ stream: pipeline(Readable.from(compressed.chunks), meter(offset, () => {}), () => {}), digest: async () => compressed.digest, size: compressed.size, known: compressed.digest }), compressed.size),
      );
      this.stats.pushed++;
      this.emit({ type: 'blob', id, kind: 'layer', status: 'pushed', digest: compressed.digest.toString(), size: compressed.size });
      await this.options.cache.recordBlob(this.registry.registry, this.repo, compressed.digest);
      return descriptor;
    }
    this.emit({ type: 'blob', id, kind: 'layer', status: 'pushing', size: known?.size });
    let compressedOnce = false;
    const digestOut = await this.limiter.run(ticket, () => this.upload(id, `diffid:${layer.diffID.toString()}:${codec}`, session, async (offset) => {
      if (!compressedOnce) {
        compressedOnce = true;
        this.stats.compressed++;
        this.emit({ type: 'compress', id, diffID: layer.diffID.toString() });
      }
      const raw = await layer.open();
      const digester = new Digester();
      const tap = new Transform({
        highWaterMark: 1 << 20,
        transform(chunk: Buffer, _e, cb: TransformCallback) {
          digester.update(chunk);
          cb(null, chunk);
        },
      });
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      const finished = new Promise<void>((resolve, reject) => {
        tap.once('end', resolve);
        tap.once('error', reject);
        tap.once('close', () => reject(new ClientError('ERR_ABORTED', 'compression stopped')));
      });
      // Observed only when the digest is asked for; a destroyed attempt must not be an unhandled rejection.
      finished.catch(() => undefined);
      pipeline(raw, createParallelGzip(this.gzip, this.workers), tap, meter(offset, () => {}), out, () => {});
      return {
        stream: out,
        digest: async () => {
          await finished;
          return digester.digest();
        },

        sizeAfter: () => digester.size,
      };
    }, layer.size));
    const size = digestOut.size;
    await this.options.cache.recordCompressedForm(layer.diffID, codec, { digest: digestOut.digest.toString(), size, mediaType });
    this.stats.pushed++;
    this.emit({ type: 'blob', id, kind: 'layer', status: 'pushed', digest: digestOut.digest.toString(), size });
    await this.options.cache.recordBlob(this.registry.registry, this.repo, digestOut.digest);
    return { mediaType, digest: digestOut.digest, size };
  }

  /**
   * Uploads one blob, resuming across broken connections and runs.
   * `journalKey` names it in the journal; `produce(offset)` gives the bytes
   * from `offset`. Returns the digest and total size.
   */
  private async upload(
    id: string,
    journalKey: string,
    session: UploadSession | undefined,
    produce: (offset: number) => Promise<Produced>,
    sizeHint: number,
  ): Promise<{ digest: Digest; size: number }> {
    const cache = this.options.cache;
    // Small blobs are cheaper to send again than to journal and resume.
    const journalled = sizeHint >= JOURNAL_MIN;
    const journal = async (loc: URL) => {
      if (journalled) await cache.writeJournal({ registry: registryName, repository: this.repo, blob: journalKey, location: loc.toString() });
    };
    const registryName = this.registry.registry;
    const policy = this.options.retry ?? DEFAULT_RETRY;
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
          const s = await this.registry.startUpload(this.repo, this.signal);
          location = s.location;
          if (s.minChunk && !this.chunkSize) this.chunkSize = Math.max(s.minChunk, FALLBACK_CHUNK);
          await journal(location);
        }
        let offset = 0;
        if (checkOffset) {
          const st = await this.registry.uploadStatus(this.repo, location, this.signal);
          if (!st) {
            // The registry forgot the session: start a new one.
            location = undefined;
            checkOffset = false;
            continue;
          }
          offset = st.offset;
          location = st.location;
          if (offset > 0) {
            this.stats.resumed++;
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
          this.stats.bytesSent += n;
          this.emit({ type: 'progress', id, current: sent, total });
        };
        const body = pipeline(produced.stream, meter(0, report), () => {});
        const chunkSize = this.chunkSize;
        if (chunkSize === undefined) {
          if (offset === 0 && total !== undefined && produced.known) {
            await this.registry.sendUpload(this.repo, location, body, { digest: produced.known, length: total, signal: this.signal });
          } else {
            const opts: { length?: number; range?: [number, number]; signal?: AbortSignal } = { signal: this.signal };
            if (total !== undefined) {
              opts.length = total - offset;
              if (total > offset) opts.range = [offset, total - 1];
            }
            if (total === undefined || total > offset) location = await this.registry.sendUpload(this.repo, location, body, opts);
            else body.resume();
            await journal(location);
            const digest = await produced.digest();
            await this.registry.sendUpload(this.repo, location, undefined, { digest, length: 0, signal: this.signal });
          }
        } else {
          let at = offset;
          for await (const chunk of chunksOf(body, chunkSize)) {
            location = await this.registry.sendUpload(this.repo, location, chunk, {
              length: chunk.length,
              range: [at, at + chunk.length - 1],
              signal: this.signal,
            });
            at += chunk.length;
            await journal(location);
          }
          const digest = await produced.digest();
          await this.registry.sendUpload(this.repo, location, undefined, { digest, length: 0, signal: this.signal });
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
        if (this.signal.aborted || (err instanceof ClientError && err.code === 'ERR_ABORTED')) {
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
          if (this.chunkSize > MIN_CHUNK && this.options.chunkSize === undefined) {
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
          await sleep(delay, this.signal);
          checkOffset = location !== undefined;
          continue;
        }
        throw err;
      }
    }
  }
}

/** Pushes `source` to `dest`. The library entry point behind `pier push`. */
export async function pushImage(source: ImageSource, dest: ImageReference, options: PushOptions): Promise<PushResult> {
  const root = await source.root();
  const engine = new PushEngine(options, dest, source.mountFrom);
  try {
    return await engine.push(root);
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('ERR_SOURCE', `pushing ${source.description} to ${dest.toString()}`, { cause: err });
  }
}
