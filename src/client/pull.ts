/**
 * The pull engine: an image (or index) from a registry into a file
 * destination (`oci:`, `oci-archive:`, `docker-archive:`).
 *
 * - the manifests and configs come from the {@link RegistrySource}, which
 *   checks them against their digests;
 * - `platform` narrows an index to one image; a destination that holds one
 *   image (docker-archive) takes the host's platform when none is given;
 * - each distinct layer is streamed once, at most `jobs` at a time, through a
 *   hash that fails the stream when the bytes do not match the descriptor
 *   (digest and size): the writer never completes a bad blob;
 * - a broken connection is retried from the start of that blob;
 * - any failure aborts the other transfers and discards the staging area,
 *   so the destination is left as it was; the error names the blob.
 */
import { setMaxListeners } from 'node:events';
import { arch, platform as osPlatform } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Descriptor, Digest, ImageReference, Platform } from '../oci/index.js';
import { ClientError, isRetryable } from './errors.js';
import { shortId, type EventSink, type PushEvent } from './events.js';
import type { ImageWriter } from './dest/destination.js';
import { verifier } from './dest/verify.js';
import { Limiter } from './limiter.js';
import type { ImageSource, SourceImage, SourceRoot, StoredBlob } from './sources/source.js';
import { DEFAULT_RETRY, backoff, sleep, type RetryPolicy } from './transport.js';

export interface PullOptions {
  /** Parallel blob downloads (default 4). */
  jobs?: number;
  /** `os/arch[/variant]`: pull one platform of an index. */
  platform?: string;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** Retries of a blob whose transfer broke (default: the transport's policy). */
  retry?: RetryPolicy;
}

export interface PullResult {
  /** The digest of the manifest (or index) written. */
  digest: Digest;
  size: number;
  mediaType: string;
  /** Where it was written (`oci:/path:tag`). */
  destination: string;
  stats: { downloaded: number; existed: number; bytes: number };
}

function platformText(p: Platform | undefined): string {
  return p ? `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}` : 'unknown';
}

function matchesPlatform(p: Platform | undefined, want: string): boolean {
  if (!p) return false;
  const [os, architecture, variant] = want.split('/');
  return p.os === os && p.architecture === architecture && (!variant || p.variant === variant);
}

/** The platform of this machine in OCI terms (`linux/amd64`, `linux/arm64`). */
export function hostPlatform(): string {
  const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const os = osPlatform() === 'win32' ? 'windows' : osPlatform();
  return `${os}/${goArch[arch()] ?? arch()}`;
}

/** Narrows `root` to what is written: one platform when asked, or when the writer holds one image. */
export function selectPlatform(root: SourceRoot, want: string | undefined, holdsIndex: boolean, what: string): SourceRoot {
  if (root.kind !== 'index') return root;
  if (!want && holdsIndex) return root;
  if (!want && root.images.length === 1) return root.images[0]!.image;
  const target = want ?? hostPlatform();
  const found = root.images.find((i) => matchesPlatform(i.descriptor.platform ?? i.image.platform, target));
  if (!found) {
    const have = root.images.map((i) => platformText(i.descriptor.platform)).join(', ');
    throw new ClientError('ERR_SOURCE', `${what}: no ${target} image in the index (has ${have})${want ? '' : '; choose one with --platform'}`);
  }
  return found.image;
}

interface Job {
  image: SourceImage;
  index: number;
  blob: StoredBlob;
}

/** Pulls `source` (the image `ref` names) into `writer`; the writer is committed on success and discarded on failure. */
export async function pullImage(source: ImageSource, ref: ImageReference, writer: ImageWriter, options: PullOptions = {}): Promise<PullResult> {
  const abort = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;
  setMaxListeners(0, signal, abort.signal);
  const emit = (e: PushEvent) => options.onEvent?.(e);
  const stats = { downloaded: 0, existed: 0, bytes: 0 };
  const from = `${ref.registry}/${ref.repository}`;
  const policy = options.retry ?? DEFAULT_RETRY;
  const limiter = new Limiter(Math.max(1, options.jobs ?? 4));
  const running: Promise<void>[] = [];
  try {
    const root = selectPlatform(await source.root(), options.platform, writer.holdsIndex, ref.toString());
    writer.check(root);
    const images = root.kind === 'index' ? root.images.map((i) => i.image) : [root];
    // One job per distinct layer digest (platforms share base layers).
    const jobs = new Map<string, Job>();
    for (const image of images) {
      image.layers.forEach((l, index) => {
        if (l.kind !== 'stored') throw new ClientError('ERR_SOURCE', `${ref.toString()}: a registry image has stored layers only`);
        const key = l.descriptor.digest.toString();
        if (!jobs.has(key)) jobs.set(key, { image, index, blob: l });
      });
    }
    for (const job of jobs.values()) emit({ type: 'blob', id: shortId(job.blob.descriptor.digest), kind: 'layer', status: 'waiting', size: job.blob.descriptor.size });

    const fetchOne = async (job: Job): Promise<void> => {
      const d = job.blob.descriptor;
      const id = shortId(d.digest);
      // Queued behind a failure: start nothing.
      if (signal.aborted) throw new ClientError('ERR_ABORTED', 'cancelled');
      if (await writer.has(d.digest)) {
        stats.existed++;
        emit({ type: 'blob', id, kind: 'layer', status: 'exists', digest: d.digest.toString(), size: d.size });
        return;
      }
      const label = `layer ${d.digest.toString()} (${job.index + 1} of ${job.image.layers.length}) from ${from}`;
      emit({ type: 'blob', id, kind: 'layer', status: 'pulling', digest: d.digest.toString(), size: d.size });
      let received = 0;
      // One verified stream into the writer, fed by one response or, after a broken one, by Range requests
      // from where it broke: the hash (and a docker-archive's gunzip) never start over.
      const check = verify(d, label, (n) => emit({ type: 'progress', id, current: (received += n), total: d.size }));
      // The writer's pipeline reports check's errors; until it is attached they must not go unhandled.
      check.on('error', () => undefined);
      const writing = writer.putLayer(job.image, job.index, d, check);
      writing.catch(() => undefined);
      try {
        await feed(job.blob, check, signal, policy, (attempt, delay, reason) => emit({ type: 'retry', id, attempt, delay, reason: `${label}: ${reason}` }));
      } catch (err) {
        check.destroy(err as Error);
      }
      try {
        await writing;
      } catch (err) {
        if (signal.aborted) throw new ClientError('ERR_ABORTED', 'cancelled', { cause: err });
        // A layer that does not gunzip (docker-archive) is as corrupt as one that does not hash:
        // whichever the stream noticed first, the message names the layer.
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && code.startsWith('Z_')) {
          throw new ClientError('ERR_DIGEST_MISMATCH', `${label} is not valid gzip (${(err as Error).message})`, { cause: err });
        }
        if (err instanceof ClientError) throw err;
        throw new ClientError('ERR_NETWORK', `${label}: ${(err as Error).message}`, { cause: err });
      }
      stats.bytes += received;
      stats.downloaded++;
      emit({ type: 'blob', id, kind: 'layer', status: 'pulled', digest: d.digest.toString(), size: d.size });
    };

    for (const job of jobs.values()) running.push(limiter.run(() => fetchOne(job)));
    await Promise.all(running);
    await writer.commit(root);
    const top = root.manifest;
    if (!top) throw new ClientError('ERR_SOURCE', `${ref.toString()}: no manifest`);
    const ev: PushEvent = { type: 'manifest', reference: ref.toString(), digest: top.digest.toString(), size: top.bytes.length, mediaType: top.mediaType };
    if (ref.tag) ev.tag = ref.tag;
    emit(ev);
    emit({ type: 'saved', destination: writer.description, digest: top.digest.toString() });
    return { digest: top.digest, size: top.bytes.length, mediaType: top.mediaType, destination: writer.description, stats };
  } catch (err) {
    abort.abort();
    await Promise.allSettled(running);
    await writer.discard();
    if (options.signal?.aborted && !(err instanceof ClientError && err.code === 'ERR_ABORTED')) throw new ClientError('ERR_ABORTED', 'cancelled', { cause: err });
    if (err instanceof ClientError && err.code === 'ERR_DIGEST_MISMATCH') {
      throw new ClientError(err.code, `${err.message}; nothing was written to ${writer.description}`, { cause: err.cause });
    }
    throw err;
  }
}

function verify(d: Descriptor, label: string, onBytes: (n: number) => void) {
  return verifier(d.digest, { size: d.size, onBytes, message: (seen) => `${label} does not match its digest (${seen})` });
}

/**
 * Writes the blob's bytes into `into` and ends it. A response that breaks
 * (a retryable error) is followed by a request from the byte where it broke,
 * up to the retry policy; any other error, or `signal`, is thrown.
 */
async function feed(blob: StoredBlob, into: Writable, signal: AbortSignal, policy: RetryPolicy, onRetry: (attempt: number, delay: number, reason: string) => void): Promise<void> {
  let written = 0;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw new ClientError('ERR_ABORTED', 'cancelled');
    let body: Readable | undefined;
    const onAbort = () => body?.destroy(new ClientError('ERR_ABORTED', 'cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      body = await blob.open(written);
      if (signal.aborted) onAbort();
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (into.destroyed) throw new ClientError('ERR_ABORTED', 'the destination stopped reading');
        written += chunk.length;
        if (!into.write(chunk)) await drained(into);
      }
      into.end();
      return;
    } catch (err) {
      body?.destroy();
      if (signal.aborted || into.destroyed || !isRetryable(err) || attempt >= policy.attempts) throw err;
      const delay = backoff(policy, attempt);
      onRetry(attempt, delay, `${(err as Error).message}; continuing from byte ${written}`);
      await sleep(delay, signal);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** Resolves when `w` wants more, or rejects when it is destroyed first (the writer failed). */
function drained(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.destroyed) return reject(new ClientError('ERR_ABORTED', 'the destination stopped reading'));
    const done = () => {
      w.off('drain', done);
      w.off('close', closed);
      resolve();
    };
    const closed = () => {
      w.off('drain', done);
      reject(new ClientError('ERR_ABORTED', 'the destination stopped reading'));
    };
    w.once('drain', done);
    w.once('close', closed);
  });
}
