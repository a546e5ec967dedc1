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
import { Readable, pipeline } from 'node:stream';
import { Digest, MediaTypes, type Descriptor, type ImageReference, type RepositoryName } from '../oci/index.js';
import type { PierCache } from './cache.js';
import { ClientError } from './errors.js';
import { shortId, type EventSink, type PushEvent } from './events.js';
import { DEFAULT_GZIP, GzipWorkers, gzipCodec, type GzipSettings } from './gzip.js';
import { Limiter, OrderedLimiter } from './limiter.js';
import { compressInMemory, compressing, replay } from './push-compress.js';
import { buildManifest, matchesPlatform, platformName, type BuiltManifest } from './push-manifest.js';
import { BlobTransfer, meter, type Needed, type Produced, type PushStats } from './push-transfer.js';
import type { Registry, UploadSession } from './registry.js';
import type { ImageSource, RawLayer, SourceImage, SourceRoot, StoredBlob } from './sources/source.js';
import type { RetryPolicy } from './transport.js';

export type { PushStats } from './push-transfer.js';

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

export interface PushResult {
  reference: ImageReference;
  digest: Digest;
  size: number;
  mediaType: string;
  stats: PushStats;
}

/** Raw layers up to this size are compressed in memory before anything is sent. */
const SMALL_LAYER = 8 * 1024 * 1024;

/**
 * One push of a source root to a reference. The plan (what is there
 * already) and the order are here; each blob's check and upload is
 * {@link BlobTransfer}'s, compression push-compress.ts's, built manifests
 * push-manifest.ts's.
 */
export class PushEngine {
  /** Transfers (uploads) in flight: `jobs`. */
  private readonly limiter: OrderedLimiter;
  /** Existence checks and mounts in flight: cheap requests whose latency dominates re-pushes. */
  private readonly checks: Limiter;
  /** Small layers compressed in memory at once (bounds memory to jobs × 8 MiB). */
  private readonly compressingSmall: Limiter;
  private readonly blobs = new Map<string, Promise<Descriptor>>();
  readonly stats: PushStats = { compressed: 0, existed: 0, mounted: 0, pushed: 0, resumed: 0, bytesSent: 0 };
  private readonly gzip: GzipSettings;
  private readonly compression: Compression;
  /** Aborted by the user's signal or by the first failure, so no transfer outlives the push. */
  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;
  /** Compression threads: the caller's, or this push's own (ended when it ends). */
  private readonly workers: GzipWorkers;
  private readonly ownsWorkers: boolean;
  private readonly transfer: BlobTransfer;

  constructor(
    private readonly options: PushOptions,
    private readonly dest: ImageReference,
    mountFrom?: { registry: string; repository: string },
  ) {
    this.limiter = new OrderedLimiter(Math.max(1, options.jobs ?? 4));
    this.checks = new Limiter(Math.max(16, (options.jobs ?? 4) * 4));
    this.compressingSmall = new Limiter(Math.max(1, options.jobs ?? 4));
    this.gzip = options.gzip ?? DEFAULT_GZIP;
    this.compression = options.compression ?? 'gzip';
    this.ownsWorkers = !options.gzipWorkers;
    this.workers = options.gzipWorkers ?? new GzipWorkers();
    this.signal = options.signal ? AbortSignal.any([options.signal, this.abort.signal]) : this.abort.signal;
    // Every request in flight listens on the signal: many at once is expected.
    setMaxListeners(0, this.signal, this.abort.signal);
    this.transfer = new BlobTransfer({
      registry: options.registry,
      repository: dest.repository,
      cache: options.cache,
      retry: options.retry,
      chunkSize: options.chunkSize,
      signal: this.signal,
      emit: (e) => this.emit(e),
      stats: this.stats,
      mountFrom,
    });
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
        const have = root.images.map((i) => platformName(i.descriptor.platform)).join(', ');
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
  private async predictManifest(image: SourceImage): Promise<BuiltManifest | undefined> {
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
    return buildManifest(image.config.descriptor, layers, this.compression === 'none');
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
  private async pushImage(image: SourceImage): Promise<BuiltManifest> {
    const configBlob: StoredBlob = { kind: 'stored', descriptor: image.config.descriptor, open: async () => Readable.from([image.config.bytes]) };
    const config = this.once(image.config.descriptor.digest.toString(), () => this.sendStored(configBlob, 'config'));
    const layers = image.layers.map((l) => (l.kind === 'stored' ? this.once(l.descriptor.digest.toString(), () => this.sendStored(l, 'layer')) : this.once(`diffid:${l.diffID.toString()}`, () => this.sendRaw(l))));
    const [configDesc, ...layerDescs] = await Promise.all([config, ...layers]);
    if (image.manifest) return { bytes: image.manifest.bytes, mediaType: image.manifest.mediaType };
    return buildManifest(configDesc, layerDescs, this.compression === 'none');
  }

  /** Each blob is transferred once per push, however many images of an index share it. */
  private once(key: string, transfer: () => Promise<Descriptor>): Promise<Descriptor> {
    let p = this.blobs.get(key);
    if (!p) {
      p = transfer();
      this.blobs.set(key, p);
    }
    return p;
  }

  /** Whether the blob must be sent (HEAD, mount); gives up its turn when not, or when the check fails. */
  private async need(ticket: number, id: string, kind: 'layer' | 'config', digest: Digest): Promise<Needed> {
    const r = await this.skipOnFailure(ticket, () => this.checks.run(() => this.transfer.ensure(id, kind, digest)));
    if (r.done) this.limiter.skip(ticket);
    return r;
  }

  /**
   * The transfer sequence, written once: wait for the blob's turn (manifest
   * order, at most `jobs` at once), report it, upload it, count and record it.
   */
  private async send(
    ticket: number,
    blob: { id: string; kind: 'layer' | 'config'; journalKey: string; session: UploadSession | undefined; size: number; digest?: Digest; reportSize?: number },
    produce: (offset: number) => Promise<Produced>,
  ): Promise<{ digest: Digest; size: number }> {
    this.emit({ type: 'blob', id: blob.id, kind: blob.kind, status: 'pushing', digest: blob.digest?.toString(), size: blob.reportSize });
    const out = await this.limiter.run(ticket, () => this.transfer.upload(blob.id, blob.journalKey, blob.session, produce, blob.size));
    this.stats.pushed++;
    this.emit({ type: 'blob', id: blob.id, kind: blob.kind, status: 'pushed', digest: out.digest.toString(), size: out.size });
    await this.options.cache.recordBlob(this.registry.registry, this.repo, out.digest);
    return out;
  }

  /** A blob pushed byte for byte (OCI layouts, registries, configs, gzipped archive layers). */
  private async sendStored(blob: StoredBlob, kind: 'layer' | 'config'): Promise<Descriptor> {
    const d = blob.descriptor;
    const id = shortId(d.digest);
    const ticket = this.limiter.ticket();
    const r = await this.need(ticket, id, kind, d.digest);
    if (r.done) return d;
    await this.send(ticket, { id, kind, journalKey: d.digest.toString(), session: r.session, size: d.size, digest: d.digest, reportSize: d.size }, async (offset) => ({
      stream: await blob.open(offset),
      digest: async () => d.digest,
      size: d.size,
      known: d.digest,
    }));
    return d;
  }

  /** An uncompressed layer (docker-archive, daemon): sent as is (`--compression none`) or gzipped. */
  private async sendRaw(layer: RawLayer): Promise<Descriptor> {
    const id = shortId(layer.diffID);
    const ticket = this.limiter.ticket();
    if (this.compression === 'none') {
      const descriptor: Descriptor = { mediaType: MediaTypes.ociLayer, digest: layer.diffID, size: layer.size };
      const r = await this.need(ticket, id, 'layer', layer.diffID);
      if (r.done) return descriptor;
      await this.send(ticket, { id, kind: 'layer', journalKey: layer.diffID.toString(), session: r.session, size: layer.size, reportSize: layer.size }, async (offset) => ({
        stream: pipeline(await layer.open(), meter(offset, () => {}), () => {}),
        digest: async () => layer.diffID,
        size: layer.size,
        known: layer.diffID,
      }));
      return descriptor;
    }
    const codec = gzipCodec(this.gzip);
    const mediaType = MediaTypes.dockerLayerGzip;
    const known = await this.skipOnFailure(ticket, () => this.options.cache.compressedForm(layer.diffID, codec));
    let session: UploadSession | undefined;
    if (known) {
      const digest = Digest.parse(known.digest);
      const r = await this.need(ticket, id, 'layer', digest);
      if (r.done) return { mediaType, digest, size: known.size };
      session = r.session;
    }
    if (!known && layer.size <= SMALL_LAYER) {
      // Small layers are compressed in memory first: the digest is then known, so the
      // blob may already exist or be mountable, and an upload is one monolithic PUT.
      const compressed = await this.skipOnFailure(ticket, () => this.compressingSmall.run(() => {
        this.stats.compressed++;
        this.emit({ type: 'compress', id, diffID: layer.diffID.toString() });
        return compressInMemory(layer, this.gzip, this.workers);
      }));
      await this.options.cache.recordCompressedForm(layer.diffID, codec, { digest: compressed.digest.toString(), size: compressed.size, mediaType });
      const descriptor: Descriptor = { mediaType, digest: compressed.digest, size: compressed.size };
      const r = await this.need(ticket, id, 'layer', compressed.digest);
      if (r.done) return descriptor;
      await this.send(ticket, { id, kind: 'layer', journalKey: compressed.digest.toString(), session: r.session, size: compressed.size, digest: compressed.digest, reportSize: compressed.size }, async (offset) => replay(compressed, offset));
      return descriptor;
    }
    let compressedOnce = false;
    const out = await this.send(ticket, { id, kind: 'layer', journalKey: `diffid:${layer.diffID.toString()}:${codec}`, session, size: layer.size, reportSize: known?.size }, async (offset) => {
      if (!compressedOnce) {
        compressedOnce = true;
        this.stats.compressed++;
        this.emit({ type: 'compress', id, diffID: layer.diffID.toString() });
      }
      return compressing(layer, offset, this.gzip, this.workers);
    });
    await this.options.cache.recordCompressedForm(layer.diffID, codec, { digest: out.digest.toString(), size: out.size, mediaType });
    return { mediaType, digest: out.digest, size: out.size };
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
