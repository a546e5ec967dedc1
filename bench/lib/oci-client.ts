/**
 * A deliberately small raw-HTTP registry client for the benchmarks (undici):
 * exactly the requests a real pusher sends, nothing cached, every response
 * status checked. It is not the product's client (src/client), so that the
 * harness measures the registry and not our own push engine.
 */
import { createReadStream } from 'node:fs';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export class RegistryHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'RegistryHttpError';
  }
}

type Body = Buffer | string | NodeJS.ReadableStream | null;

export interface Response {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** One registry origin, a bounded connection pool, and the OCI calls the scenarios need. */
export class RegistryClient {
  private readonly pool: Pool;

  /** `timeoutMs` bounds the wait for response headers and between body chunks (a 1 GiB PUT to S3 can exceed 2 minutes). */
  constructor(
    readonly baseUrl: string,
    connections = 64,
    timeoutMs = 120_000,
  ) {
    this.pool = new Pool(baseUrl, {
      connections,
      pipelining: 1,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Sends one request; reads the whole (small) response body unless HEAD. */
  async send(
    method: Dispatcher.HttpMethod,
    pathOrUrl: string,
    headers: Record<string, string> = {},
    body: Body = null,
  ): Promise<Response> {
    const u = new URL(pathOrUrl, this.baseUrl);
    const res = await this.pool.request({
      origin: u.origin,
      path: u.pathname + u.search,
      method,
      headers,
      body: body as Dispatcher.DispatchOptions['body'],
    });
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  }

  private expect(res: Response, ok: readonly number[], what: string): Response {
    if (!ok.includes(res.status)) {
      throw new RegistryHttpError(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`, res.status);
    }
    return res;
  }

  private location(res: Response, what: string): string {
    const loc = header(res, 'location');
    if (!loc) throw new Error(`${what}: no Location header`);
    return new URL(loc, this.baseUrl).toString();
  }

  /** HEAD a blob in a repository: true on 200, false on 404. */
  async blobExists(repo: string, digest: string): Promise<boolean> {
    const res = this.expect(await this.send('HEAD', `/v2/${repo}/blobs/${digest}`), [200, 404], `HEAD blob ${repo}@${digest}`);
    return res.status === 200;
  }

  /** POST an upload session; returns its absolute Location. */
  async startUpload(repo: string): Promise<string> {
    const res = this.expect(await this.send('POST', `/v2/${repo}/blobs/uploads/`, { 'content-length': '0' }), [202], `POST upload ${repo}`);
    return this.location(res, `POST upload ${repo}`);
  }

  /** Monolithic upload: POST, then one PUT with every byte and `?digest=`. */
  async uploadMonolithic(repo: string, digest: string, size: number, body: () => Body): Promise<void> {
    const loc = await this.startUpload(repo);
    const res = await this.send('PUT', withQuery(loc, 'digest', digest), {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
    }, body());
    this.expect(res, [201], `PUT blob ${repo}@${digest}`);
  }

  /** Chunked upload of a file: POST, PATCH chunks of `chunkSize` with Content-Range, PUT `?digest=`. */
  async uploadChunkedFile(repo: string, digest: string, file: string, size: number, chunkSize: number): Promise<number> {
    let loc = await this.startUpload(repo);
    let chunks = 0;
    for (let start = 0; start < size; start += chunkSize) {
      const end = Math.min(size, start + chunkSize); // exclusive
      const res = await this.send('PATCH', loc, {
        'content-type': 'application/octet-stream',
        'content-length': String(end - start),
        'content-range': `${start}-${end - 1}`,
      }, createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 }));
      this.expect(res, [202], `PATCH ${repo} ${start}-${end - 1}`);
      loc = this.location(res, `PATCH ${repo}`);
      chunks++;
    }
    const res = await this.send('PUT', withQuery(loc, 'digest', digest), { 'content-length': '0' });
    this.expect(res, [201], `PUT (close) ${repo}@${digest}`);
    return chunks;
  }

  /** Uploads `data` unless the repository already has it (HEAD first, like docker and skopeo). */
  async pushBlob(repo: string, digest: string, data: Buffer): Promise<'exists' | 'uploaded'> {
    if (await this.blobExists(repo, digest)) return 'exists';
    await this.uploadMonolithic(repo, digest, data.length, () => data);
    return 'uploaded';
  }

  /** Cross-repository mount; falls back to uploading `data` if the registry opens a session instead. */
  async mountBlob(repo: string, digest: string, from: string, data: Buffer): Promise<'mounted' | 'uploaded'> {
    const res = await this.send('POST', `/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}`, { 'content-length': '0' });
    this.expect(res, [201, 202], `mount ${digest} from ${from} into ${repo}`);
    if (res.status === 201) return 'mounted';
    const loc = this.location(res, `mount ${repo}`);
    const put = await this.send('PUT', withQuery(loc, 'digest', digest), {
      'content-type': 'application/octet-stream',
      'content-length': String(data.length),
    }, data);
    this.expect(put, [201], `PUT blob ${repo}@${digest}`);
    return 'uploaded';
  }

  /** GETs a blob and throws its bytes away; returns how many arrived. */
  async fetchBlob(repo: string, digest: string): Promise<number> {
    const res = await this.pool.request({ path: `/v2/${repo}/blobs/${digest}`, method: 'GET' });
    let n = 0;
    for await (const c of res.body) n += (c as Buffer).length;
    if (res.statusCode !== 200) throw new RegistryHttpError(`GET blob ${repo}@${digest}: HTTP ${res.statusCode}`, res.statusCode);
    return n;
  }

  async putManifest(repo: string, ref: string, body: Buffer, mediaType: string): Promise<string | undefined> {
    const res = await this.send('PUT', `/v2/${repo}/manifests/${ref}`, {
      'content-type': mediaType,
      'content-length': String(body.length),
    }, body);
    this.expect(res, [201], `PUT manifest ${repo}:${ref}`);
    return header(res, 'docker-content-digest');
  }

  async getManifest(repo: string, ref: string): Promise<Response> {
    const res = await this.send('GET', `/v2/${repo}/manifests/${ref}`, { accept: MANIFEST_ACCEPT });
    return this.expect(res, [200], `GET manifest ${repo}:${ref}`);
  }

  /**
   * Lists every tag of `repo`, `n` per page, following `Link: <...>; rel="next"`.
   * Bounded: at most `maxPages` requests.
   */
  async listTags(repo: string, n: number, maxPages: number): Promise<{ tags: string[]; pages: number }> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${repo}/tags/list?n=${n}`;
    let pages = 0;
    while (next !== undefined) {
      if (pages >= maxPages) throw new Error(`tag listing of ${repo} did not end within ${maxPages} pages`);
      const res = this.expect(await this.send('GET', next), [200], `GET ${next}`);
      pages++;
      const page = JSON.parse(res.body.toString('utf8')) as { tags?: string[] | null };
      tags.push(...(page.tags ?? []));
      next = nextLink(header(res, 'link'));
    }
    return { tags, pages };
  }
}

/** The target of a `rel="next"` Link header, if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}
