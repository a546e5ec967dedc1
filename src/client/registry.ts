/**
 * One registry as the OCI distribution API sees it: blobs, upload sessions,
 * manifests, tags. Every method is one protocol step; policies (what to
 * upload, resume, parallelism) live in the push engine.
 *
 * Errors are ClientErrors naming the registry and repository; a refusal
 * (401, 403, 429) says what the registry reported (errors.ts refusalError).
 *
 * Transport: HTTPS first for every host; a host that may be reached over
 * plain HTTP (loopback by resolved address, like docker's 127.0.0.0/8 and
 * ::1, or `insecure`) falls back to HTTP when the TLS handshake finds no
 * TLS there (transport.ts httpsFirst, decision 0040).
 */
import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import { isLoopback } from '../shared/loopback.js';
import type { Readable } from 'node:stream';
import type { HttpPool } from './http.js';
import { Digest, baseMediaType, type RepositoryName } from '../oci/index.js';
import { Authenticator, parseChallenge, type Credential } from './auth.js';
import { ClientError, refusalError, reportedError } from './errors.js';
import {
  DEFAULT_RETRY,
  compose,
  drain,
  header,
  httpsFirst,
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
  type WaitInfo,
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
  /**
   * May fall back to plain HTTP when the TLS handshake finds no TLS
   * (`--insecure`). Default: when the host is or resolves to a loopback address.
   */
  insecure?: boolean;
  retry?: RetryPolicy;
  onRetry?: (info: { attempt: number; delay: number; reason: string; url: URL }) => void;
  /** A short wait the registry asked for (429 with Retry-After ≤ 10 s), before it happens. */
  onWait?: (info: { seconds: number; status: number; url: URL }) => void;
  userAgent?: string;
}

/** The host part of `host[:port]` or `[v6]:port`. */
function hostname(host: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  return m ? m[1]! : host.replace(/:\d+$/, '');
}

/**
 * Docker's rule for registries reachable over plain HTTP without being
 * listed: the host is, or resolves to, a loopback address.
 */
export async function resolvesToLoopback(host: string): Promise<boolean> {
  if (isLoopback(host)) return true;
  const name = hostname(host);
  if (isIP(name)) return false;
  try {
    // node:dns loads only for a name that needs resolving (decision 0132).
    const { lookup } = await import('node:dns/promises');
    return (await lookup(name, { all: true })).some((a) => isLoopback(a.address));
  } catch {
    return false;
  }
}

export { isLoopback };

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
    this.base = new URL(`https://${apiHost}`);
    const insecure = options.insecure;
    const scheme = httpsFirst(this.base.host, insecure === undefined ? () => resolvesToLoopback(apiHost) : async () => insecure);
    const send = compose(sender(options.pool), scheme);
    const ua = userAgent(options.userAgent ?? USER_AGENT);
    const policy = options.retry ?? DEFAULT_RETRY;
    const onRetry = options.onRetry ? (i: { req: HttpRequest; attempt: number; delay: number; reason: string }) => options.onRetry?.({ ...i, url: i.req.url }) : undefined;
    const onWait = options.onWait ? (i: WaitInfo) => options.onWait?.({ seconds: i.seconds, status: i.status, url: i.req.url }) : undefined;
    this.auth = new Authenticator({
      host: this.base.host,
      registry,
      credential: options.credential ?? (async () => undefined),
      send: compose(send, ua, retry(policy, onRetry, onWait)),
    });
    this.handler = compose(send, ua, this.auth.layer(), retry(policy, onRetry, onWait), redirect());
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    return this.handler(req);
  }

  private url(path: string): URL {
    return new URL(path, this.base);
  }

  /**
   * The error for an unexpected response: reads the OCI error body and lets
   * errors.ts refusalError (the one status → message table) word it.
   * `actions` are the rights the request needed, named only when known.
   */
  async fail(res: HttpResponse, what: string, repository?: string, actions?: Action[]): Promise<ClientError> {
    const reported = reportedError((await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8'));
    const presented = await this.auth.presented();
    const challenge = parseChallenge(header(res, 'www-authenticate'));
    return refusalError({
      status: res.status,
      what,
      where: repository ? `${this.registry}/${repository}` : this.registry,
      registry: this.registry,
      ...(reported ? { reported } : {}),
      ...(header(res, 'retry-after') ? { retryAfter: header(res, 'retry-after') } : {}),
      ...(challenge?.params.error ? { authError: challenge.params.error } : {}),
      credentials: presented !== 'none',
      password: presented === 'password',
      ...(actions ? { actions } : {}),
    });
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
