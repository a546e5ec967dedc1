/**
 * The library entry point: a {@link Client} holds the connection pool, the
 * credential store and the cache, and hands out one {@link Registry} per
 * host. Everything `pier push/pull/copy/tag/tags/inspect/delete` does is a method
 * here, callable from TypeScript.
 */
import type { KeyObject } from 'node:crypto';
import type { Digest, ImageReference} from '../oci/index.js';
import { parseManifest } from '../oci/index.js';
import type { Credential } from './auth.js';
import { PierCache, defaultCacheDir } from './cache.js';
import { CredentialStore } from './credentials.js';
import type { ManifestUsers } from './delete.js';
import type { EventSink } from './events.js';
import type { DestinationSpec } from './dest/index.js';
import type { PullOptions, PullResult } from './pull.js';
import { pushImage, type PushOptions, type PushResult } from './push.js';
import { Registry } from './registry.js';
import { RegistrySource } from './sources/registry-source.js';
import type { SignOptions, SignResult } from './sign.js';
import type { ImageSource } from './sources/source.js';
import { HttpPool } from './http.js';
import { GzipWorkers } from './gzip.js';
import type { RetryPolicy } from './transport.js';

export interface ClientOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Hosts that may fall back to plain HTTP when the TLS handshake finds no
   * TLS, besides loopback ones (`--insecure` = all, `PIER_INSECURE_REGISTRIES`).
   */
  insecure?: string[] | true;
  caFiles?: string[];
  cacheDir?: string;
  /** Credentials to use instead of the stored ones (`--username`). */
  credential?: Credential;
  retry?: RetryPolicy;
  /** Connection pool to share (default: one of the client's own). */
  pool?: HttpPool;
  onEvent?: EventSink;
  /** One line for the user that is not progress (a wait the registry asked for); the CLI writes it to stderr. */
  onNotice?: (line: string) => void;
}

/** The push engine's options that a caller chooses (the client supplies registry, cache and events). */
export type ClientPushOptions = Pick<PushOptions, 'jobs' | 'chunkSize' | 'compression' | 'gzip' | 'platform' | 'signal'>;

/** The pull engine's options that a caller chooses. */
export type ClientPullOptions = Pick<PullOptions, 'jobs' | 'platform' | 'signal'>;

export class Client {
  readonly credentials: CredentialStore;
  readonly cache: PierCache;
  private readonly pool: HttpPool;
  private readonly ownsPool: boolean;
  private readonly registries = new Map<string, Registry>();
  private readonly env: NodeJS.ProcessEnv;
  /** Compression threads shared by this client's pushes; ended by {@link close}. */
  private readonly gzipWorkers = new GzipWorkers();

  constructor(private readonly options: ClientOptions = {}) {
    this.env = options.env ?? process.env;
    this.credentials = new CredentialStore({ env: this.env });
    this.cache = new PierCache(options.cacheDir ?? defaultCacheDir(this.env));
    this.ownsPool = !options.pool;
    this.pool = options.pool ?? new HttpPool({ caFiles: options.caFiles, env: this.env });
  }

  /** True when the user listed the host (or all hosts); undefined leaves the loopback rule to the Registry. */
  private isInsecure(host: string): true | undefined {
    if (this.options.insecure === true) return true;
    const list = [...(this.options.insecure ?? []), ...(this.env.PIER_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean)];
    return list.includes(host) ? true : undefined;
  }

  registry(ref: Pick<ImageReference, 'registry' | 'apiHost'>): Registry {
    let r = this.registries.get(ref.registry);
    if (!r) {
      const explicit = this.options.credential;
      r = new Registry(ref.registry, ref.apiHost, {
        pool: this.pool,
        ...(this.isInsecure(ref.apiHost) ? { insecure: true } : {}),
        credential: explicit ? async () => explicit : () => this.credentials.get(ref.registry),
        retry: this.options.retry,
        onRetry: (i) => this.options.onEvent?.({ type: 'retry', attempt: i.attempt, delay: i.delay, reason: `${i.url.host}: ${i.reason}` }),
        onWait: (i) => {
          this.options.onNotice?.(`${i.url.host}: too many requests (HTTP ${i.status}); waiting ${i.seconds} s as the registry asks (Retry-After)`);
        },
      });
      this.registries.set(ref.registry, r);
    }
    return r;
  }

  async push(source: ImageSource, dest: ImageReference, options: ClientPushOptions = {}): Promise<PushResult> {
    return pushImage(source, dest, {
      ...options,
      registry: this.registry(dest),
      cache: this.cache,
      gzipWorkers: this.gzipWorkers,
      onEvent: this.options.onEvent,
      retry: this.options.retry,
    });
  }

  /** Registry to registry; blobs are mounted when both are the same registry. */
  async copy(src: ImageReference, dest: ImageReference, options: ClientPushOptions = {}): Promise<PushResult> {
    const source = new RegistrySource(this.registry(src), src);
    const target = dest.tag || dest.digest ? dest : src.tag ? dest.withTag(src.tag) : dest;
    return this.push(source, target, options);
  }

  /**
   * Registry to files: writes `src` to an OCI layout, an oci-archive or a
   * docker-archive, every blob checked against its digest while it streams.
   * Without a tag or name in `dest`, the source's tag (oci) or reference
   * (docker-archive RepoTags) is used. On failure `dest` is left as it was.
   */
  async pull(src: ImageReference, dest: DestinationSpec, options: ClientPullOptions = {}): Promise<PullResult> {
    const source = new RegistrySource(this.registry(src), src);
    // Pull, sign and delete are loaded by the call that needs them: `pier push` starts without them.
    const [{ openWriter }, { pullImage }] = await Promise.all([import('./dest/index.js'), import('./pull.js')]);
    const writer = await openWriter(dest, { tag: src.tag, name: src.tag ? `${src.registry}/${src.repository}:${src.tag}` : undefined });
    try {
      return await pullImage(source, src, writer, { ...options, onEvent: this.options.onEvent, retry: this.options.retry });
    } finally {
      await source.close();
    }
  }

  /** Gives an image another tag: the manifest is PUT again, no blob is sent. */
  async tag(ref: ImageReference, newTag: string): Promise<{ digest: Digest; size: number }> {
    const reg = this.registry(ref);
    const m = await reg.getManifest(ref.repository, ref.manifestReference, ['pull', 'push']);
    await reg.putManifest(ref.repository, newTag, m.bytes, m.mediaType);
    return { digest: m.digest, size: m.bytes.length };
  }

  /** Signs `ref` with a private key in cosign's layout (sign.ts): the `.sig` tag, and with `bundle` a Sigstore bundle referrer. */
  async sign(ref: ImageReference, key: KeyObject, options: SignOptions = {}): Promise<SignResult> {
    const { signImage } = await import('./sign.js');
    return signImage(this.registry(ref), ref, key, options);
  }

  async tags(repo: ImageReference): Promise<string[]> {
    return this.registry(repo).listTags(repo.repository);
  }

  /** Removes one tag; the manifest and its other tags stay. Returns the digest it pointed at (see delete.ts). */
  async deleteTag(ref: ImageReference): Promise<Digest> {
    const { deleteTag } = await import('./delete.js');
    return deleteTag(this.registry(ref), ref);
  }

  /** The tags and tagged indexes that use the manifest `ref.digest`. */
  async manifestUsers(ref: ImageReference & { digest: Digest }): Promise<ManifestUsers> {
    const { findManifestUsers } = await import('./delete.js');
    return findManifestUsers(this.registry(ref), ref.repository, ref.digest);
  }

  /** Deletes the manifest `ref.digest` and every tag on it (see delete.ts for `force`). */
  async deleteManifest(ref: ImageReference & { digest: Digest }, options: { force?: boolean } = {}): Promise<void> {
    const { deleteManifest } = await import('./delete.js');
    return deleteManifest(this.registry(ref), ref.repository, ref.digest, options);
  }

  async inspect(ref: ImageReference): Promise<Inspection> {
    const reg = this.registry(ref);
    const top = await reg.getManifest(ref.repository, ref.manifestReference);
    const parsed = parseManifest(top.bytes, top.mediaType);
    const result: Inspection = { reference: ref.toString(), digest: top.digest.toString(), mediaType: parsed.mediaType, size: top.bytes.length, manifest: JSON.parse(top.bytes.toString('utf8')) as unknown };
    if (parsed.kind === 'index') {
      result.platforms = parsed.manifests.map((m) => ({
        platform: m.platform ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}` : 'unknown',
        digest: m.digest.toString(),
        size: m.size,
      }));
      return result;
    }
    result.layers = parsed.layers.map((l) => ({ digest: l.digest.toString(), size: l.size, mediaType: l.mediaType }));
    result.totalSize = parsed.layers.reduce((s, l) => s + l.size, 0) + (parsed.config?.size ?? 0);
    if (parsed.config) {
      const cfg = await reg.getBlob(ref.repository, parsed.config.digest);
      const chunks: Buffer[] = [];
      for await (const c of cfg.body as AsyncIterable<Buffer>) chunks.push(c);
      result.config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    }
    return result;
  }

  /**
   * Releases everything the client opened: compression threads, the cache's
   * files, and (when it made it) the connection pool. Every step runs even
   * when one fails; the first failure is thrown after all.
   */
  async close(): Promise<void> {
    const steps = [() => this.gzipWorkers.close(), () => this.cache.close(), async () => (this.ownsPool ? this.pool.close() : undefined)];
    const failures = (await Promise.allSettled(steps.map((s) => s()))).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures[0]) throw failures[0].reason;
  }
}

export interface Inspection {
  reference: string;
  digest: string;
  mediaType: string;
  size: number;
  manifest: unknown;
  config?: unknown;
  layers?: { digest: string; size: number; mediaType: string }[];
  totalSize?: number;
  platforms?: { platform: string; digest: string; size: number }[];
}
