/**
 * One registry as the OCI distribution API sees it: blobs, upload sessions,
 * manifests, tags. Every method is one protocol step; policies (what to
 * upload, resume, parallelism) live in the push engine.
 *
 * Errors are ClientErrors naming the registry and repository; a 401/403
 * says which right was missing.
 */
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { HttpPool } from './http.js';
import { Digest, baseMediaType, type RepositoryName } from '../oci/index.js';
import { Authenticator, type Credential } from './auth.js';
import { ClientError } from './errors.js';
import {
  DEFAULT_RETRY,
  compose,
  drain,
  header,
  readBody,
  redirect,
  retry,
  sender,
  userAgent,
  type Handler,
  type HttpRequest,
  type HttpResponse,
  type RequestBody,
  type RetryPolicy,
} from './transport.js';

export const USER_AGENT = 'pier/0.1';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface RegistryOptions {
  pool: HttpPool;
  credential?: () => Promise<Credential | undefined>;
  /** Use plain HTTP. Default: only for loopback hosts. */
  insecure?: boolean;
  retry?: RetryPolicy;
  onRetry?: (info: { attempt: number; delay: number; reason: string; url: URL }) => void;
  userAgent?: string;
}

export function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export type Action = 'pull' | 'push' | 'delete' | '*';

export function scope(repository: string, ...actions: Action[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

export interface UploadSession {
  location: URL;
  /** `OCI-Chunk-Min-Length`, when the registry sent it. */
  minChunk?: number;
}

export interface ManifestResponse {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

export class Registry {
  readonly base: URL;
  readonly auth: Authenticator;
  private readonly handler: Handler;

  /**
   * @param registry host as in an image reference (`docker.io`, `127.0.0.1:5000`)
   * @param apiHost host to connect to (`registry-1.docker.io` for docker.io)
   */
  constructor(
    readonly registry: string,
    apiHost: string,
    options: RegistryOptions,
  ) {
    const plain = options.insecure ?? isLoopback(apiHost);
    this.base = new URL(`${plain ? 'http' : 'https'}://${apiHost}`);
    const send = sender(options.pool);
    const ua = userAgent(options.userAgent ?? USER_AGENT);
    const policy = options.retry ?? DEFAULT_RETRY;
    const onRetry = options.onRetry ? (i: { req: HttpRequest; attempt: number; delay: number; reason: string }) => options.onRetry?.({ ...i, url: i.req.url }) : undefined;
    this.auth = new Authenticator({
      host: this.base.host,
      registry,
      credential: options.credential ?? (async () => undefined),
      send: compose(send, ua, retry(policy, onRetry)),
    });
    this.handler = compose(send, ua, this.auth.layer(), retry(policy, onRetry), redirect());
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    return this.handler(req);
  }

  private url(path: string): URL {
    return new URL(path, this.base);
  }

  /** An error for an unexpected response; reads the OCI error body for detail. */
  async fail(res: HttpResponse, what: string, repository?: string, actions?: Action[]): Promise<ClientError> {
    let detail = '';
    try {
      const text = (await readBody(res, 64 * 1024)).toString('utf8');
      const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      const e = body.errors?.[0];
      if (e) detail = `${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`;
    } catch {
      // no JSON body
    }
    const where = repository ? `${this.registry}/${repository}` : this.registry;
    const suffix = detail ? ` (${detail})` : '';
    const rights = actions?.join(',') ?? 'pull';
    switch (res.status) {
      case 401:
        return new ClientError('ERR_UNAUTHORIZED', `${what}: ${where}: not authorized to ${rights}${suffix}; run 'pier login ${this.registry}' with an account that has ${rights} rights`, { status: 401 });
      case 403:
        return new ClientError('ERR_DENIED', `${what}: ${where}: access denied, the account lacks the ${rights} right${suffix}`, { status: 403 });
      case 404:
        return new ClientError('ERR_NOT_FOUND', `${what}: ${where}: not found${suffix}`, { status: 404 });
      case 413:
        return new ClientError('ERR_TOO_LARGE', `${what}: ${where}: request too large (HTTP 413)${suffix}`, { status: 413 });
      case 507:
        // Final: trying again cannot help until someone frees space on the registry.
        return new ClientError('ERR_HTTP_STATUS', `${what}: ${where}: the registry is out of storage (HTTP 507)`, { status: 507 });
      default:
        return new ClientError('ERR_HTTP_STATUS', `${what}: ${where}: HTTP ${res.status}${suffix}`, {
          status: res.status,
          retryable: res.status === 408 || res.status === 429 || res.status >= 500,
        });
    }
  }

  /** `GET /v2/`: checks reachability and credentials (login). */
  async ping(): Promise<void> {
    const res = await this.request({ method: 'GET', url: this.url('/v2/'), scopes: [] });
    if (res.status === 200) return drain(res);
    throw await this.fail(res, 'checking the registry');
  }

  /**
   * Whether the repository has the blob. A failed or timed-out HEAD is
   * retried by the transport and then thrown: never taken as missing.
   */
  async hasBlob(repository: RepositoryName, digest: Digest, actions: Action[] = ['pull'], signal?: AbortSignal): Promise<boolean> {
    const res = await this.request({
      signal,
      method: 'HEAD',
      url: this.url(`/v2/${repository}/blobs/${digest.toString()}`),
      scopes: [scope(repository, ...actions)],
      headersTimeout: 30_000,
    });
    await drain(res);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.fail(res, `checking blob ${digest.toString()}`, repository, actions);
  }

  /**
   * Asks to mount `digest` from `from` into `repository`. Returns 'mounted'
   * or, when the registry refuses, the upload session it opened instead.
   */
  async mountBlob(repository: RepositoryName, digest: Digest, from: string, signal?: AbortSignal): Promise<'mounted' | UploadSession> {
    const url = this.url(`/v2/${repository}/blobs/uploads/`);
    url.searchParams.set('mount', digest.toString());
    url.searchParams.set('from', from);
    const res = await this.request({ method: 'POST', url, scopes: [scope(repository, 'pull', 'push'), scope(from, 'pull')], signal });
    if (res.status === 201) {
      await drain(res);
      return 'mounted';
    }
    if (res.status === 202) return this.session(res, repository);
    throw await this.fail(res, `mounting blob ${digest.toString()} from ${from}`, repository, ['pull', 'push']);
  }

  async startUpload(repository: RepositoryName, signal?: AbortSignal): Promise<UploadSession> {
    const res = await this.request({
      signal,
      method: 'POST',
      url: this.url(`/v2/${repository}/blobs/uploads/`),
      scopes: [scope(repository, 'pull', 'push')],
    });
    if (res.status === 202) return this.session(res, repository);
    throw await this.fail(res, 'starting an upload', repository, ['pull', 'push']);
  }

  private async session(res: HttpResponse, repository: string): Promise<UploadSession> {
    await drain(res);
    const location = header(res, 'location');
    if (!location) throw new ClientError('ERR_HTTP_STATUS', `${this.registry}/${repository}: upload started without a Location`);
    const s: UploadSession = { location: new URL(location, res.url) };
    const min = Number(header(res, 'oci-chunk-min-length'));
    if (Number.isSafeInteger(min) && min > 0) s.minChunk = min;
    return s;
  }

  /**
   * How many bytes the registry holds for an upload (GET on its location),
   * and the location to continue at. Undefined when the session is gone.
   */
  async uploadStatus(repository: RepositoryName, location: URL, signal?: AbortSignal): Promise<{ offset: number; location: URL } | undefined> {
    const res = await this.request({ method: 'GET', url: location, scopes: [scope(repository, 'pull', 'push')], signal });
    await drain(res);
    if (res.status === 404 || res.status === 400 || res.status === 410) return undefined;
    if (res.status !== 204 && res.status !== 200) throw await this.fail(res, 'checking an upload', repository, ['pull', 'push']);
    const range = header(res, 'range');
    const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : null;
    // distribution answers `0-0` for an empty upload as well as for one byte; take it as empty
    // (at worst one byte is sent again).
    const end = m ? Number(m[1]) : -1;
    const offset = end > 0 ? end + 1 : 0;
    const next = header(res, 'location');
    return { offset, location: next ? new URL(next, res.url) : location };
  }

  /**
   * Sends `body` to an upload session. With `digest` it is the closing PUT
   * (monolithic when the body is the whole blob); without, one PATCH
   * (`range` = [start, endInclusive] when known). Returns the next location.
   */
  async sendUpload(
    repository: RepositoryName,
    location: URL,
    body: RequestBody | undefined,
    options: { digest?: Digest; length?: number; range?: [number, number]; signal?: AbortSignal },
  ): Promise<URL> {
    const url = new URL(location);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (options.length !== undefined) headers['content-length'] = String(options.length);
    if (options.range) headers['content-range'] = `${options.range[0]}-${options.range[1]}`;
    const method = options.digest ? 'PUT' : 'PATCH';
    if (options.digest) url.searchParams.set('digest', options.digest.toString());
    const res = await this.request({
      method,
      url,
      headers,
      body: body ?? Buffer.alloc(0),
      scopes: [scope(repository, 'pull', 'push')],
      signal: options.signal,
    });
    const ok = options.digest ? res.status === 201 : res.status === 202 || res.status === 204;
    if (!ok) {
      if (res.status === 416) {
        await drain(res);
        throw new ClientError('ERR_UPLOAD_LOST', `${this.registry}/${repository}: the registry disagreed about the upload offset`, { retryable: true, status: 416 });
      }
      const what = options.digest ? `finishing upload of ${options.digest.toString()}` : 'uploading a chunk';
      throw await this.fail(res, what, repository, ['pull', 'push']);
    }
    await drain(res);
    const next = header(res, 'location');
    return next ? new URL(next, res.url) : location;
  }

  /**
   * Cancels an upload session (`DELETE` on its location), so bytes that
   * failed verification are never committed. A registry that cannot cancel
   * (404: already gone; 405) is fine: the session was never closed.
   */
  async cancelUpload(repository: RepositoryName, location: URL, signal?: AbortSignal): Promise<void> {
    const res = await this.request({ method: 'DELETE', url: location, scopes: [scope(repository, 'pull', 'push')], signal });
    await drain(res);
  }

  /** Opens a blob for reading (follows redirects to storage). */
  async getBlob(repository: RepositoryName, digest: Digest): Promise<{ body: Readable; size: number }> {
    const res = await this.request({ method: 'GET', url: this.url(`/v2/${repository}/blobs/${digest.toString()}`), scopes: [scope(repository, 'pull')] });
    if (res.status !== 200) throw await this.fail(res, `fetching blob ${digest.toString()}`, repository);
    return { body: res.body, size: Number(header(res, 'content-length') ?? -1) };
  }

  async getManifest(repository: RepositoryName, reference: string, actions: Action[] = ['pull']): Promise<ManifestResponse> {
    const res = await this.request({
      method: 'GET',
      url: this.url(`/v2/${repository}/manifests/${reference}`),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [scope(repository, ...actions)],
    });
    if (res.status !== 200) throw await this.fail(res, `fetching manifest ${reference}`, repository, actions);
    const bytes = await readBody(res, 4 * 1024 * 1024);
    const digest = Digest.of(bytes);
    const asked = Digest.tryParse(reference);
    if (asked && !asked.equals(digest)) {
      throw new ClientError('ERR_DIGEST_MISMATCH', `${this.registry}/${repository}: manifest ${reference} has digest ${digest.toString()}`);
    }
    this.checkStatedDigest(res, digest, `fetching manifest ${reference}`, repository);
    return { bytes, mediaType: baseMediaType(header(res, 'content-type') ?? ''), digest };
  }

  /** The digest of a manifest, or undefined when it does not exist. */
  async headManifest(repository: RepositoryName, reference: string, actions: Action[] = ['pull']): Promise<{ digest?: Digest; mediaType: string; size: number } | undefined> {
    const res = await this.request({
      method: 'HEAD',
      url: this.url(`/v2/${repository}/manifests/${reference}`),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [scope(repository, ...actions)],
      headersTimeout: 30_000,
    });
    await drain(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.fail(res, `checking manifest ${reference}`, repository, actions);
    const d = header(res, 'docker-content-digest');
    return { digest: d ? Digest.tryParse(d) : undefined, mediaType: baseMediaType(header(res, 'content-type') ?? ''), size: Number(header(res, 'content-length') ?? 0) };
  }

  async putManifest(repository: RepositoryName, reference: string, bytes: Uint8Array, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    const res = await this.request({
      signal,
      method: 'PUT',
      url: this.url(`/v2/${repository}/manifests/${reference}`),
      headers: { 'content-type': mediaType },
      body: bytes,
      scopes: [scope(repository, 'pull', 'push')],
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.fail(res, `pushing manifest ${reference}`, repository, ['pull', 'push']);
    await drain(res);
    const digest = Digest.of(bytes);
    this.checkStatedDigest(res, digest, `pushing manifest ${reference}`, repository);
    return digest;
  }

  /** A `Docker-Content-Digest` the registry states must be the digest of the bytes (absent is fine). */
  private checkStatedDigest(res: HttpResponse, digest: Digest, what: string, repository: string): void {
    const stated = header(res, 'docker-content-digest');
    if (stated === undefined) return;
    const parsed = Digest.tryParse(stated.trim());
    // Another algorithm cannot be compared without the registry's canonical form: only sha256 is checked.
    if (parsed && parsed.algorithm !== digest.algorithm) return;
    if (!parsed || !parsed.equals(digest)) {
      throw new ClientError('ERR_DIGEST_MISMATCH', `${what}: ${this.registry}/${repository}: the registry reports digest ${stated.slice(0, 100)}, the bytes have ${digest.toString()}`);
    }
  }

  async deleteManifest(repository: RepositoryName, digest: Digest): Promise<void> {
    const res = await this.request({
      method: 'DELETE',
      url: this.url(`/v2/${repository}/manifests/${digest.toString()}`),
      scopes: [scope(repository, 'delete')],
    });
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) throw await this.fail(res, `deleting ${digest.toString()}`, repository, ['delete']);
    await drain(res);
  }

  /** Every tag of a repository, following `Link` pagination. */
  async listTags(repository: RepositoryName): Promise<string[]> {
    const tags: string[] = [];
    let url: URL | undefined = this.url(`/v2/${repository}/tags/list?n=1000`);
    for (let page = 0; url && page < 10_000; page++) {
      const res: HttpResponse = await this.request({ method: 'GET', url, scopes: [scope(repository, 'pull')] });
      if (res.status !== 200) throw await this.fail(res, 'listing tags', repository);
      const body = JSON.parse((await readBody(res)).toString('utf8')) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const link = header(res, 'link');
      const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      url = m ? new URL(m[1]!, url) : undefined;
    }
    return tags;
  }
}
