/**
 * The OCI distribution-spec conformance suite, v1.1.1
 * (opencontainers/distribution-spec, conformance/, tag v1.1.1), ported to
 * node:test so it runs here without Go.
 *
 * Every `g.Specify` of the Go suite is one subtest with the same title, in the
 * same order, nested in the same contexts (workflow → Setup / ... / Teardown),
 * sharing state between specs exactly as the Go closures do: a failing spec
 * stops at the failing expectation and later specs see whatever it had
 * assigned by then. `RunOnlyIf` / `SkipIfDisabled` skip at run time, as Ginkgo's
 * `g.Skip` does. Data is generated per run like the Go `init()`: sixteen
 * configs with a random author and sixteen manifests over them (the Go suite
 * makes `numWorkflows` = 1 << 4 of each), one gzip layer, random 42-byte blobs
 * A and B, and the referrers artifacts.
 *
 * Requests go out on the wire the way reggie (resty over Go's net/http) sends
 * them, because that is what a registry has to accept:
 * - a body is streamed with `Transfer-Encoding: chunked` and no Content-Length
 *   (reggie wraps bodies in a NopCloser, so Go cannot know their length); the
 *   `Content-Length` headers the Go tests set are dropped by net/http, so they
 *   are not sent here either;
 * - POST/PUT/PATCH without a body carry `Content-Length: 0`; a GET never carries
 *   a body (resty drops it);
 * - query parameters are appended to a Location's own query with `&`;
 * - a Location is followed by its path and query only (GetRelativeLocation);
 * - `User-Agent: distribution-spec-conformance-tests`, `Accept-Encoding: gzip`
 *   (not on HEAD) with transparent gunzip, redirects followed for GET/HEAD.
 * PIER_CONFORMANCE_CONTENT_LENGTH=1 sends bodies with a Content-Length instead,
 * as docker, containerd and skopeo do; a registry should pass both ways.
 *
 * By default the whole suite runs three times, each time against a fresh Pier from
 * `startTestRegistry`: with `uploads.automaticMount` on (OCI_AUTOMATIC_CROSSMOUNT=1)
 * and off (=0), then on with `storage.type: s3` (a bucket of its own on the
 * run's RGW, test/helpers/s3.ts). Environment:
 * - PIER_CONFORMANCE_URL: run once against that registry instead; the
 *   cross-mount expectation then comes from OCI_AUTOMATIC_CROSSMOUNT (unset:
 *   both automatic cross-mount checks are skipped, as in the Go suite).
 * - OCI_NAMESPACE (default `conformance/test-<random>`), OCI_CROSSMOUNT_NAMESPACE
 *   (default `conformance-<uuid>`, as in Go), OCI_DELETE_MANIFEST_BEFORE_BLOBS
 *   (default true in v1.1.1), OCI_TEST_PULL / _PUSH / _CONTENT_DISCOVERY /
 *   _CONTENT_MANAGEMENT (if none is set, all four run).
 * OCI_SKIP_EMPTY_LAYER_PUSH_TEST is declared but unused in v1.1.1 (the
 * no-layers manifest check only warns), so it is not read here.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { startTestRegistry } from './helpers/registry.js';
import { testBucket } from './helpers/s3.js';

const SUITE = 'OCI Distribution Conformance Tests';
const USER_AGENT = 'distribution-spec-conformance-tests';
const REQUEST_TIMEOUT_MS = 30_000;
const PASS_TIMEOUT_MS = 300_000;
/** Send bodies with Content-Length instead of chunked, unlike the Go suite. */
const SEND_CONTENT_LENGTH = process.env.PIER_CONFORMANCE_CONTENT_LENGTH === '1';

const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const MT_EMPTY = 'application/vnd.oci.empty.v1+json';
const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const TEST_TAG_NAME = 'tagtest0';
const EMPTY_LAYER_TEST_TAG = 'emptylayer';
const NONEXISTENT_MANIFEST = '.INVALID_MANIFEST_NAME';
const ARTIFACT_TYPE_FILTER = 'artifactType';
const ANNOTATION_KEY = 'org.opencontainers.conformance.test';

/**
 * The Go suite's `errorCodes` slice. Its constants start at iota 5 (after the
 * workflow bits), so indices 0-4 hold "" and `ContainElement` accepts an empty
 * code too; kept for fidelity.
 */
const ERROR_CODES = [
  '', '', '', '', '',
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_UNVERIFIED', 'NAME_INVALID', 'NAME_UNKNOWN',
  'SIZE_INVALID', 'TAG_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED',
];

type Workflow = 'Pull' | 'Push' | 'Content Discovery' | 'Content Management';

// ---------------------------------------------------------------------------
// Go-compatible helpers

/** strconv.ParseBool: accepts 1 t T TRUE true True 0 f F FALSE false False. */
function parseBool(v: string | undefined): { ok: boolean; value: boolean } {
  if (v === undefined) return { ok: false, value: false };
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return { ok: true, value: true };
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return { ok: true, value: false };
  return { ok: false, value: false };
}

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** url.QueryEscape: everything but unreserved characters is escaped, space is '+'. */
function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/** Go's json.MarshalIndent(v, "", "\t") for the plain values used here. */
function marshalIndent(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, '\t'));
}

// ---------------------------------------------------------------------------
// Test data (the Go suite's setup.go init(), with our own content)

interface TestBlob {
  content: Buffer;
  contentLength: string;
  digest: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  /** Not in image-spec; the suite sends it on every descriptor (null when unset, as Go marshals a nil []byte). */
  newUnspecifiedField: string | null;
}

function descriptor(mediaType: string, content: Uint8Array): Descriptor {
  return { mediaType, digest: sha256(content), size: content.length, newUnspecifiedField: null };
}

function testBlob(content: Buffer): TestBlob {
  return { content, contentLength: String(content.length), digest: sha256(content) };
}

/** A one-file ustar archive, gzipped: a real (tiny) layer. */
function makeLayer(): Buffer {
  const body = Buffer.from('Pier conformance layer: this file is all there is.\n');
  const header = Buffer.alloc(512);
  const put = (offset: number, width: number, text: string): void => {
    header.write(text, offset, width, 'ascii');
  };
  const octal = (n: number, width: number): string => `${n.toString(8).padStart(width - 1, '0')}\0`;
  put(0, 100, 'conformance.txt');
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(body.length, 12));
  put(136, 12, octal(0, 12));
  put(148, 8, ' '.repeat(8));
  put(156, 1, '0');
  put(257, 8, 'ustar\x0000');
  let sum = 0;
  for (const b of header) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return gzipSync(Buffer.concat([header, body, padding, Buffer.alloc(1024)]));
}

interface ChunkedBlob {
  blob: Buffer;
  digest: string;
  chunk1: Buffer;
  chunk1Length: string;
  chunk1Range: string;
  chunk2: Buffer;
  chunk2Length: string;
  chunk2Range: string;
}

/** setupChunkedBlob: a random blob split after size/2+1 bytes. */
function chunkedBlob(size: number): ChunkedBlob {
  const blob = randomBytes(size);
  const cut = Math.floor(size / 2) + 1;
  const chunk1 = blob.subarray(0, cut);
  const chunk2 = blob.subarray(cut);
  return {
    blob,
    digest: sha256(blob),
    chunk1,
    chunk1Length: String(chunk1.length),
    chunk1Range: `0-${chunk1.length - 1}`,
    chunk2,
    chunk2Length: String(chunk2.length),
    chunk2Range: `${chunk1.length}-${blob.length - 1}`,
  };
}

interface Fixtures {
  configs: TestBlob[];
  manifests: TestBlob[];
  layer: TestBlob;
  emptyLayerManifest: TestBlob;
  testBlobA: TestBlob;
  testBlobB: ChunkedBlob;
  dummyDigest: string;
  invalidManifestContent: Buffer;
  emptyJSONBlob: Buffer;
  emptyJSONDescriptor: Descriptor;
  refBlobA: TestBlob;
  refBlobB: TestBlob;
  artifactTypeA: string;
  artifactTypeB: string;
  artifactTypeIndex: string;
  refsManifestAConfig: TestBlob;
  refsManifestBConfig: TestBlob;
  refsManifestALayer: TestBlob;
  refsManifestBLayer: TestBlob;
  refsManifestCLayer: TestBlob;
  refsIndex: TestBlob;
  /** Annotation value expected on each referrer, by digest. */
  annotationValues: Map<string, string>;
}

function makeFixtures(): Fixtures {
  const numWorkflows = 16; // the Go constant: 1 << 4, after pull/push/discovery/management
  const configs: TestBlob[] = [];
  for (let i = 0; i < numWorkflows; i++) {
    configs.push(
      testBlob(
        marshalIndent({
          author: randomBytes(12).toString('base64url'),
          architecture: 'amd64',
          os: 'linux',
          rootfs: { type: 'layers', diff_ids: [] },
        }),
      ),
    );
  }
  const layer = testBlob(makeLayer());
  const layerDescriptor = descriptor(MT_LAYER, layer.content);
  const configDescriptor = (c: TestBlob): Descriptor => ({
    mediaType: MT_CONFIG,
    digest: c.digest,
    size: c.content.length,
    data: c.content.toString('base64'), // must be the config content
    newUnspecifiedField: Buffer.from('hello world').toString('base64'), // content does not matter
  });
  const manifests = configs.map((c) =>
    testBlob(
      marshalIndent({ schemaVersion: 2, mediaType: MT_MANIFEST, config: configDescriptor(c), layers: [layerDescriptor] }),
    ),
  );
  const config1 = configs[1];
  const m3 = manifests[3];
  const m4 = manifests[4];
  assert.ok(config1 && m3 && m4);
  // No mediaType, no layers: "Registry should accept a manifest upload with no layers".
  const emptyLayerManifest = testBlob(marshalIndent({ schemaVersion: 2, config: configDescriptor(config1), layers: [] }));

  const emptyJSONBlob = Buffer.from('{}');
  const emptyJSONDescriptor = descriptor(MT_EMPTY, emptyJSONBlob);
  const refBlobA = testBlob(Buffer.from('Pier referrers blob A: a signature, say'));
  const refBlobB = testBlob(Buffer.from('Pier referrers blob B: an SBOM, perhaps'));
  const artifactTypeA = 'application/vnd.pier.conformance.a';
  const artifactTypeB = 'application/vnd.pier.conformance.b';
  const artifactTypeIndex = 'application/vnd.pier.conformance.index';
  const subjectOf = (m: TestBlob): Descriptor => descriptor(MT_MANIFEST, m.content);
  const annotationValues = new Map<string, string>();
  const annotated = (value: Record<string, unknown>, note: string): TestBlob => {
    const blob = testBlob(marshalIndent({ ...value, annotations: { [ANNOTATION_KEY]: note } }));
    annotationValues.set(blob.digest, note);
    return blob;
  };

  // Artifacts whose type is their config mediaType.
  const configArtifact = (type: string, blob: TestBlob, note: string): TestBlob =>
    annotated(
      {
        schemaVersion: 2,
        mediaType: MT_MANIFEST,
        config: descriptor(type, blob.content),
        layers: [emptyJSONDescriptor],
        subject: subjectOf(m4),
      },
      note,
    );
  // Artifacts with artifactType set and the empty config.
  const layerArtifactValue = (type: string, blob: TestBlob, subject: TestBlob): Record<string, unknown> => ({
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    artifactType: type,
    config: emptyJSONDescriptor,
    layers: [descriptor(type, blob.content)],
    subject: subjectOf(subject),
  });
  const refsManifestAConfig = configArtifact(artifactTypeA, refBlobA, 'test config a');
  const refsManifestBConfig = configArtifact(artifactTypeB, refBlobB, 'test config b');
  const refsManifestALayer = annotated(layerArtifactValue(artifactTypeA, refBlobA, m4), 'test layer a');
  const refsManifestBLayer = annotated(layerArtifactValue(artifactTypeB, refBlobB, m4), 'test layer b');
  // Same as B, but its subject (manifests[3]) is never pushed before it; no annotations.
  const refsManifestCLayer = testBlob(marshalIndent(layerArtifactValue(artifactTypeB, refBlobB, m3)));
  const refsIndex = annotated(
    {
      schemaVersion: 2,
      mediaType: MT_INDEX,
      artifactType: artifactTypeIndex,
      manifests: [descriptor(MT_MANIFEST, refsManifestAConfig.content), descriptor(MT_MANIFEST, refsManifestALayer.content)],
      subject: subjectOf(m4),
    },
    'test index',
  );

  return {
    configs,
    manifests,
    layer,
    emptyLayerManifest,
    testBlobA: testBlob(randomBytes(42)),
    testBlobB: chunkedBlob(42),
    dummyDigest: sha256('hello world'),
    invalidManifestContent: Buffer.from('blablabla'),
    emptyJSONBlob,
    emptyJSONDescriptor,
    refBlobA,
    refBlobB,
    artifactTypeA,
    artifactTypeB,
    artifactTypeIndex,
    refsManifestAConfig,
    refsManifestBConfig,
    refsManifestALayer,
    refsManifestBLayer,
    refsManifestCLayer,
    refsIndex,
    annotationValues,
  };
}

function at<T>(list: readonly T[], i: number): T {
  const v = list[i];
  // Go would panic with "index out of range" here.
  assert.ok(v !== undefined, `index out of range [${i}] with length ${list.length}`);
  return v;
}

// ---------------------------------------------------------------------------
// A reggie-like client

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface PathParams {
  name?: string;
  digest?: string;
  reference?: string;
}

class Request {
  readonly headers = new Map<string, string>();
  readonly query = new Map<string, string>();
  body: Buffer | undefined;

  constructor(
    readonly method: Method,
    readonly path: string,
  ) {}

  setHeader(name: string, value: string): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }

  setQueryParam(name: string, value: string): this {
    this.query.set(name, value);
    return this;
  }

  setBody(body: Buffer): this {
    this.body = body;
    return this;
  }
}

interface ErrorInfo {
  code: string;
  message?: string;
  detail?: unknown;
}

class Response {
  constructor(
    readonly method: Method,
    readonly url: string,
    readonly status: number,
    private readonly headers: Record<string, string | string[] | undefined>,
    readonly body: Buffer,
  ) {}

  /** http.Header.Get: first value, or "". */
  header(name: string): string {
    const v = this.headers[name.toLowerCase()];
    return (Array.isArray(v) ? v[0] : v) ?? '';
  }

  text(): string {
    return this.body.toString('utf8');
  }

  /** GetRelativeLocation: the Location's (decoded) path plus its query. */
  relativeLocation(): string {
    const loc = this.header('Location');
    if (loc === '') return '';
    try {
      const u = new URL(loc, 'http://relative.invalid');
      return decodeURIComponent(u.pathname) + u.search;
    } catch {
      return ''; // url.Parse failed
    }
  }

  /** GetAbsoluteLocation: the Location header as sent. */
  absoluteLocation(): string {
    return this.header('Location');
  }

  /** Response.Errors: the OCI error list; throws where reggie returns an error. */
  errors(): ErrorInfo[] {
    const parsed = JSON.parse(this.text()) as { errors?: unknown };
    if (!Array.isArray(parsed.errors) || parsed.errors.length === 0) {
      throw new Error('body was valid json but could not be parsed');
    }
    return parsed.errors.map((e: unknown) => {
      const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
      return { code: typeof o.code === 'string' ? o.code : '', message: typeof o.message === 'string' ? o.message : '', detail: o.detail };
    });
  }

  /** One line for failure messages: request, status, interesting headers, body. */
  describe(): string {
    const shown = ['location', 'range', 'docker-content-digest', 'oci-subject', 'oci-filters-applied', 'content-type']
      .map((h) => [h, this.header(h)] as const)
      .filter(([, v]) => v !== '')
      .map(([h, v]) => `${h}: ${v}`)
      .join('; ');
    const body = this.method === 'HEAD' ? '' : this.text().slice(0, 300).replace(/\s+/g, ' ');
    return `${this.method} ${this.url} -> ${this.status}${shown ? ` [${shown}]` : ''}${body ? ` body: ${body}` : ''}`;
  }
}

class Client {
  constructor(
    private readonly address: string,
    readonly defaultName: string,
    private readonly dispatcher: Agent,
  ) {}

  /** NewRequest: substitutes <name>, <digest> and <reference> in the path. */
  newRequest(method: Method, path: string, params: PathParams = {}): Request {
    const name = params.name ?? this.defaultName;
    let p = path;
    if (name !== '') p = p.replaceAll('<name>', name);
    if (params.digest) p = p.replaceAll('<digest>', params.digest);
    if (params.reference) p = p.replaceAll('<reference>', params.reference);
    return new Request(method, p);
  }

  async do(req: Request): Promise<Response> {
    if (/<name>|<reference>|<digest>|<session_id>|\/\/{2,}/.test(req.path)) throw new Error(`request is invalid: ${req.path}`);
    let url = `${this.address}/${req.path.replace(/^\//, '')}`;
    if (req.query.size > 0) {
      const encoded = [...req.query.keys()]
        .sort()
        .map((k) => `${queryEscape(k)}=${queryEscape(req.query.get(k) ?? '')}`)
        .join('&');
      url += url.includes('?') ? `&${encoded}` : `?${encoded}`;
    }
    let method = req.method;
    let body = method === 'GET' || method === 'HEAD' || !req.body || req.body.length === 0 ? undefined : req.body;
    for (let redirects = 0; ; redirects++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT };
      for (const [k, v] of req.headers) if (k !== 'content-length') headers[k] = v;
      if (SEND_CONTENT_LENGTH && body) headers['content-length'] = String(body.length);
      if (method !== 'HEAD' && !req.headers.has('range') && !req.headers.has('accept-encoding')) headers['accept-encoding'] = 'gzip';
      const res = await request(new URL(url), {
        method,
        headers,
        body: body ? (SEND_CONTENT_LENGTH ? body : Readable.from([body])) : null,
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      let data = Buffer.from(await res.body.arrayBuffer());
      const resHeaders = { ...res.headers };
      if (method !== 'HEAD' && resHeaders['content-encoding'] === 'gzip' && data.length > 0) {
        data = gunzipSync(data);
        delete resHeaders['content-encoding'];
        delete resHeaders['content-length'];
      }
      const response = new Response(method, url, res.statusCode, resHeaders, data);
      const location = response.header('Location');
      const redirect = [301, 302, 303, 307, 308].includes(res.statusCode) && location !== '';
      // Go's client: 301-303 turn a non-GET/HEAD into a GET without body; 307/308
      // keep the method but cannot resend a streamed body, so the response is returned.
      if (!redirect || redirects >= 10 || (res.statusCode >= 307 && body !== undefined)) return response;
      url = new URL(location, url).toString();
      if (res.statusCode <= 303 && method !== 'GET' && method !== 'HEAD') {
        method = 'GET';
        body = undefined;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Ginkgo-like running: contexts, specs, skips, expectations

class Skip extends Error {}

function runOnlyIf(v: boolean): void {
  if (!v) throw new Skip('you have skipped this test.');
}

function runOnlyIfNot(v: boolean): void {
  if (v) throw new Skip('you have skipped this test.');
}

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

class Runner {
  constructor(
    private readonly t: TestContext,
    private readonly tally: Tally,
  ) {}

  async context(title: string, body: (r: Runner) => Promise<void>): Promise<void> {
    await this.t.test(title, async (t) => {
      await body(new Runner(t, this.tally));
    });
  }

  async specify(title: string, body: (warn: (message: string) => void) => Promise<void>): Promise<void> {
    await this.t.test(title, async (t) => {
      try {
        await body((message) => {
          t.diagnostic(`WARNING: ${message}`);
        });
        this.tally.passed++;
      } catch (err) {
        if (err instanceof Skip) {
          this.tally.skipped++;
          t.skip(err.message);
          return;
        }
        this.tally.failed++;
        throw err;
      }
    });
  }
}

type StatusMatcher = number | 'success';

function statusMatches(status: number, m: StatusMatcher): boolean {
  return m === 'success' ? status >= 200 && status < 300 : status === m;
}

function expectStatus(resp: Response, ...allowed: StatusMatcher[]): void {
  if (allowed.some((m) => statusMatches(resp.status, m))) return;
  const want = allowed.map((m) => (m === 'success' ? '2xx' : String(m))).join(' or ');
  assert.fail(`expected status ${want}: ${resp.describe()}`);
}

function expectNotEmpty(value: string, what: string, resp: Response): void {
  assert.ok(value !== '', `expected a non-empty ${what}: ${resp.describe()}`);
}

function expectEqual<T>(actual: T, expected: T, what: string, resp?: Response): void {
  if (actual === expected) return;
  assert.fail(`expected ${what} to equal ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}${resp ? `: ${resp.describe()}` : ''}`);
}

/** getTagList: the `tags` of a tag list, or [] when the body is not one. */
function getTagList(resp: Response): string[] {
  try {
    const parsed = JSON.parse(resp.text()) as { tags?: unknown };
    return Array.isArray(parsed.tags) ? parsed.tags.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

/** json.Unmarshal into TagList: must be JSON with a list (or null/absent) of tags. */
function unmarshalTagList(resp: Response): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(resp.text());
  } catch (err) {
    assert.fail(`tag list is not JSON (${(err as Error).message}): ${resp.describe()}`);
  }
  if (parsed === null) return []; // json.Unmarshal of null leaves the struct empty
  assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `tag list is not a JSON object: ${resp.describe()}`);
  const tags = (parsed as { tags?: unknown }).tags;
  assert.ok(tags === undefined || tags === null || (Array.isArray(tags) && tags.every((t) => typeof t === 'string')), `"tags" is not a list of strings: ${resp.describe()}`);
  return tags ?? [];
}

interface IndexDescriptor {
  digest: string;
  annotations: Record<string, string>;
}

/** json.Unmarshal into the suite's `index` type. */
function unmarshalIndex(resp: Response): IndexDescriptor[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(resp.text());
  } catch (err) {
    assert.fail(`referrers response is not JSON (${(err as Error).message}): ${resp.describe()}`);
  }
  if (parsed === null) return [];
  assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `referrers response is not a JSON object: ${resp.describe()}`);
  const manifests = (parsed as { manifests?: unknown }).manifests;
  if (manifests === undefined || manifests === null) return [];
  assert.ok(Array.isArray(manifests), `"manifests" is not a list: ${resp.describe()}`);
  return manifests.map((m: unknown) => {
    assert.ok(typeof m === 'object' && m !== null, `a "manifests" entry is not an object: ${resp.describe()}`);
    const d = m as { digest?: unknown; annotations?: unknown };
    assert.ok(d.digest === undefined || typeof d.digest === 'string', `a descriptor digest is not a string: ${resp.describe()}`);
    const annotations = (d.annotations ?? {}) as Record<string, string>;
    return { digest: typeof d.digest === 'string' ? d.digest : '', annotations };
  });
}

// ---------------------------------------------------------------------------
// The suite

interface SuiteOptions {
  baseUrl: string;
  namespace: string;
  crossmountNamespace: string;
  /** OCI_AUTOMATIC_CROSSMOUNT: undefined when unset (both automatic checks skip). */
  automaticCrossmount: boolean | undefined;
  deleteManifestBeforeBlobs: boolean;
  workflows: ReadonlySet<Workflow>;
}

async function runSuite(t: TestContext, opts: SuiteOptions): Promise<void> {
  const agent = new Agent({ headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS, connections: 8 });
  try {
    const suite = new Suite(opts, new Client(opts.baseUrl.replace(/\/+$/, ''), opts.namespace, agent), makeFixtures());
    await suite.run(t);
  } finally {
    await agent.close();
  }
}

class Suite {
  private readonly f: Fixtures;
  private readonly deleteManifestBeforeBlobs: boolean;
  private readonly runAutomaticCrossmountTest: boolean;
  private readonly automaticCrossmountEnabled: boolean;
  // runPullSetup etc.: the Go suite turns them off only when OCI_TAG_NAME/OCI_TAG_LIST
  // and friends point at existing content, which this port does not support.
  private readonly runPullSetup = true;
  private readonly runPushSetup = true;
  private readonly runContentDiscoverySetup = true;
  private readonly runContentManagementSetup = true;

  constructor(
    private readonly opts: SuiteOptions,
    private readonly client: Client,
    fixtures: Fixtures,
  ) {
    this.f = fixtures;
    this.deleteManifestBeforeBlobs = opts.deleteManifestBeforeBlobs;
    this.runAutomaticCrossmountTest = opts.automaticCrossmount !== undefined;
    this.automaticCrossmountEnabled = opts.automaticCrossmount === true;
  }

  private skipIfDisabled(w: Workflow): void {
    if (!this.opts.workflows.has(w)) {
      throw new Skip('you have skipped this test; if this is an error, check your environment variable settings');
    }
  }

  async run(t: TestContext): Promise<void> {
    await t.test(SUITE, async (t) => {
      await this.workflow(t, 'Pull', (r) => this.test01Pull(r));
      await this.workflow(t, 'Push', (r) => this.test02Push(r));
      await this.workflow(t, 'Content Discovery', (r) => this.test03ContentDiscovery(r));
      await this.workflow(t, 'Content Management', (r) => this.test04ContentManagement(r));
    });
  }

  private async workflow(t: TestContext, title: Workflow, body: (r: Runner) => Promise<void>): Promise<void> {
    const tally: Tally = { passed: 0, failed: 0, skipped: 0 };
    await t.test(title, async (t) => {
      await body(new Runner(t, tally));
      const summary = `${title} summary: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped`;
      t.diagnostic(summary);
      await t.test(summary, () => {});
    });
  }

  /** POST an upload session, then PUT `blob` to its Location with ?digest= (the suite's usual blob push). */
  private async pushBlob(content: Buffer, digest: string, contentLength: string): Promise<Response> {
    const c = this.client;
    const post = await c.do(c.newRequest('POST', '/v2/<name>/blobs/uploads/'));
    return c.do(
      c
        .newRequest('PUT', post.relativeLocation())
        .setQueryParam('digest', digest)
        .setHeader('Content-Type', 'application/octet-stream')
        .setHeader('Content-Length', contentLength)
        .setBody(content),
    );
  }

  private async putManifest(reference: string, content: Buffer, mediaType = MT_MANIFEST): Promise<Response> {
    const c = this.client;
    return c.do(
      c.newRequest('PUT', '/v2/<name>/manifests/<reference>', { reference }).setHeader('Content-Type', mediaType).setBody(content),
    );
  }

  private async deleteManifest(digestOrTag: string): Promise<Response> {
    return this.client.do(this.client.newRequest('DELETE', '/v2/<name>/manifests/<digest>', { digest: digestOrTag }));
  }

  private async deleteBlob(digest: string): Promise<Response> {
    return this.client.do(this.client.newRequest('DELETE', '/v2/<name>/blobs/<digest>', { digest }));
  }

  // -------------------------------------------------------------------------
  // 01_pull_test.go

  private async test01Pull(r: Runner): Promise<void> {
    const { f, client: c } = this;
    const W: Workflow = 'Pull';
    let tag = '';

    await r.context('Setup', async (r) => {
      await r.specify('Populate registry with test blob', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPullSetup);
        const cfg = at(f.configs, 0);
        expectStatus(await this.pushBlob(cfg.content, cfg.digest, cfg.contentLength), 'success');
      });

      await r.specify('Populate registry with test blob', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPullSetup);
        const cfg = at(f.configs, 1);
        expectStatus(await this.pushBlob(cfg.content, cfg.digest, cfg.contentLength), 'success');
      });

      await r.specify('Populate registry with test layer', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPullSetup);
        expectStatus(await this.pushBlob(f.layer.content, f.layer.digest, f.layer.contentLength), 'success');
      });

      await r.specify('Populate registry with test manifest', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPullSetup);
        tag = TEST_TAG_NAME;
        expectStatus(await this.putManifest(tag, at(f.manifests, 0).content), 'success');
      });

      await r.specify('Populate registry with test manifest', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPullSetup);
        const m = at(f.manifests, 1);
        expectStatus(await this.putManifest(m.digest, m.content), 'success');
      });

      await r.specify('Get tag name from environment', async () => {
        this.skipIfDisabled(W);
        runOnlyIfNot(this.runPullSetup);
        const tmp = process.env.OCI_TAG_NAME ?? '';
        if (tmp !== '') tag = tmp;
      });
    });

    await r.context('Pull blobs', async (r) => {
      await r.specify('HEAD request to nonexistent blob should result in 404 response', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('HEAD', '/v2/<name>/blobs/<digest>', { digest: f.dummyDigest }));
        expectStatus(resp, 404);
      });

      await r.specify('HEAD request to existing blob should yield 200', async () => {
        this.skipIfDisabled(W);
        const cfg = at(f.configs, 0);
        const resp = await c.do(c.newRequest('HEAD', '/v2/<name>/blobs/<digest>', { digest: cfg.digest }));
        expectStatus(resp, 200);
        const h = resp.header('Docker-Content-Digest');
        if (h !== '') expectEqual(h, cfg.digest, 'Docker-Content-Digest', resp);
      });

      await r.specify('GET nonexistent blob should result in 404 response', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: f.dummyDigest }));
        expectStatus(resp, 404);
      });

      await r.specify('GET request to existing blob URL should yield 200', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: at(f.configs, 0).digest }));
        expectStatus(resp, 200);
      });
    });

    await r.context('Pull manifests', async (r) => {
      await r.specify('HEAD request to nonexistent manifest should return 404', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('HEAD', '/v2/<name>/manifests/<reference>', { reference: NONEXISTENT_MANIFEST }));
        expectStatus(resp, 404);
      });

      for (const i of [0, 1]) {
        await r.specify(`HEAD request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          this.skipIfDisabled(W);
          const m = at(f.manifests, i);
          const resp = await c.do(
            c.newRequest('HEAD', '/v2/<name>/manifests/<digest>', { digest: m.digest }).setHeader('Accept', MT_MANIFEST),
          );
          expectStatus(resp, 200);
          const h = resp.header('Docker-Content-Digest');
          if (h !== '') expectEqual(h, m.digest, 'Docker-Content-Digest', resp);
        });
      }

      await r.specify('HEAD request to manifest path (tag) should yield 200 response', async () => {
        this.skipIfDisabled(W);
        assert.ok(tag !== '', 'expected a tag name (set by setup)');
        const resp = await c.do(
          c.newRequest('HEAD', '/v2/<name>/manifests/<reference>', { reference: tag }).setHeader('Accept', MT_MANIFEST),
        );
        expectStatus(resp, 200);
        const h = resp.header('Docker-Content-Digest');
        if (h !== '') expectEqual(h, at(f.manifests, 0).digest, 'Docker-Content-Digest', resp);
      });

      await r.specify('GET nonexistent manifest should return 404', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: NONEXISTENT_MANIFEST }));
        expectStatus(resp, 404);
      });

      for (const i of [0, 1]) {
        await r.specify(`GET request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          this.skipIfDisabled(W);
          const resp = await c.do(
            c.newRequest('GET', '/v2/<name>/manifests/<digest>', { digest: at(f.manifests, i).digest }).setHeader('Accept', MT_MANIFEST),
          );
          expectStatus(resp, 200);
        });
      }

      await r.specify('GET request to manifest path (tag) should yield 200 response', async () => {
        this.skipIfDisabled(W);
        assert.ok(tag !== '', 'expected a tag name (set by setup)');
        const resp = await c.do(
          c.newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: tag }).setHeader('Accept', MT_MANIFEST),
        );
        expectStatus(resp, 200);
      });
    });

    await r.context('Error codes', async (r) => {
      await r.specify('400 response body should contain OCI-conforming JSON message', async () => {
        this.skipIfDisabled(W);
        // A GET with a body: resty drops the body, the Content-Type header stays.
        const resp = await c.do(
          c
            .newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: 'sha256:totallywrong' })
            .setHeader('Content-Type', MT_MANIFEST)
            .setBody(f.invalidManifestContent),
        );
        expectStatus(resp, 400, 404);
        if (resp.status === 400) {
          let errors: ErrorInfo[];
          try {
            errors = resp.errors();
          } catch (err) {
            assert.fail(`400 body is not an OCI error list (${(err as Error).message}): ${resp.describe()}`);
          }
          assert.ok(ERROR_CODES.includes(at(errors, 0).code), `unknown error code ${at(errors, 0).code}: ${resp.describe()}`);
        }
      });
    });

    await r.context('Teardown', async (r) => {
      const deleteManifests = async (): Promise<void> => {
        for (const i of [0, 1]) {
          await r.specify(`Delete manifest[${i}] created in setup`, async () => {
            this.skipIfDisabled(W);
            runOnlyIf(this.runPullSetup);
            expectStatus(await this.deleteManifest(at(f.manifests, i).digest), 'success', 405);
          });
        }
      };
      if (this.deleteManifestBeforeBlobs) await deleteManifests();

      for (const i of [0, 1]) {
        await r.specify(`Delete config[${i}] blob created in setup`, async () => {
          this.skipIfDisabled(W);
          runOnlyIf(this.runPullSetup);
          expectStatus(await this.deleteBlob(at(f.configs, i).digest), 'success', 404, 405);
        });
      }

      await r.specify('Delete layer blob created in setup', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPullSetup);
        expectStatus(await this.deleteBlob(f.layer.digest), 'success', 404, 405);
      });

      if (!this.deleteManifestBeforeBlobs) await deleteManifests();
    });
  }

  // -------------------------------------------------------------------------
  // 02_push_test.go

  private async test02Push(r: Runner): Promise<void> {
    const { f, client: c } = this;
    const W: Workflow = 'Push';
    let lastResponse: Response | undefined;
    let prevResponse: Response | undefined;
    let emptyLayerManifestRef = '';
    const config1 = at(f.configs, 1);
    const manifest1 = at(f.manifests, 1);

    // Context "Setup" holds no specs in v1.1.1 ("No setup required at this time").

    await r.context('Blob Upload Streamed', async (r) => {
      await r.specify('PATCH request with blob in body should yield 202 response', async () => {
        this.skipIfDisabled(W);
        let resp = await c.do(c.newRequest('POST', '/v2/<name>/blobs/uploads/'));
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        resp = await c.do(
          c.newRequest('PATCH', resp.relativeLocation()).setHeader('Content-Type', 'application/octet-stream').setBody(f.testBlobA.content),
        );
        expectStatus(resp, 202);
        lastResponse = resp;
      });

      await r.specify('PUT request to session URL with digest should yield 201 response', async () => {
        this.skipIfDisabled(W);
        assert.ok(lastResponse, 'expected the previous PATCH response');
        const resp = await c.do(
          c
            .newRequest('PUT', lastResponse.relativeLocation())
            .setQueryParam('digest', f.testBlobA.digest)
            .setHeader('Content-Type', 'application/octet-stream')
            .setHeader('Content-Length', f.testBlobA.contentLength),
        );
        expectStatus(resp, 201);
        expectNotEmpty(resp.header('Location'), 'Location', resp);
      });
    });

    await r.context('Blob Upload Monolithic', async (r) => {
      await r.specify('GET nonexistent blob should result in 404 response', async () => {
        this.skipIfDisabled(W);
        expectStatus(await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: f.dummyDigest })), 404);
      });

      await r.specify('POST request with digest and blob should yield a 201 or 202', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(
          c
            .newRequest('POST', '/v2/<name>/blobs/uploads/')
            .setHeader('Content-Length', config1.contentLength)
            .setHeader('Content-Type', 'application/octet-stream')
            .setQueryParam('digest', config1.digest)
            .setBody(config1.content),
        );
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        expectStatus(resp, 201, 202);
        lastResponse = resp;
      });

      await r.specify('GET request to blob URL from prior request should yield 200 or 404 based on response code', async () => {
        this.skipIfDisabled(W);
        assert.ok(lastResponse, 'expected the previous POST response');
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: config1.digest }));
        expectStatus(resp, lastResponse.status === 202 ? 404 : 200);
      });

      await r.specify('POST request should yield a session ID', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('POST', '/v2/<name>/blobs/uploads/'));
        expectStatus(resp, 202);
        lastResponse = resp;
      });

      await r.specify('PUT upload of a blob should yield a 201 Response', async () => {
        this.skipIfDisabled(W);
        assert.ok(lastResponse, 'expected the previous POST response');
        const resp = await c.do(
          c
            .newRequest('PUT', lastResponse.relativeLocation())
            .setHeader('Content-Length', config1.contentLength)
            .setHeader('Content-Type', 'application/octet-stream')
            .setQueryParam('digest', config1.digest)
            .setBody(config1.content),
        );
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        expectStatus(resp, 201);
      });

      await r.specify('GET request to existing blob should yield 200 response', async () => {
        this.skipIfDisabled(W);
        expectStatus(await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: config1.digest })), 200);
      });

      await r.specify('PUT upload of a layer blob should yield a 201 Response', async () => {
        this.skipIfDisabled(W);
        const resp = await this.pushBlob(f.layer.content, f.layer.digest, f.layer.contentLength);
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        expectStatus(resp, 201);
      });

      await r.specify('GET request to existing layer should yield 200 response', async () => {
        this.skipIfDisabled(W);
        expectStatus(await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: f.layer.digest })), 200);
      });
    });

    await r.context('Blob Upload Chunked', async (r) => {
      await r.specify('Out-of-order blob upload should return 416', async () => {
        this.skipIfDisabled(W);
        let resp = await c.do(c.newRequest('POST', '/v2/<name>/blobs/uploads/').setHeader('Content-Length', '0'));
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        // Rebuild the chunked blob if the registry's minimum chunk is above our first chunk.
        const minSizeStr = resp.header('OCI-Chunk-Min-Length');
        if (minSizeStr !== '') {
          const minSize = Number(minSizeStr);
          assert.ok(/^[+-]?\d+$/.test(minSizeStr) && Number.isSafeInteger(minSize), `OCI-Chunk-Min-Length is not an integer: ${resp.describe()}`);
          if (minSize > f.testBlobB.chunk1.length) f.testBlobB = chunkedBlob(minSize * 2 - 2);
        }
        const b = f.testBlobB;
        resp = await c.do(
          c
            .newRequest('PATCH', resp.relativeLocation())
            .setHeader('Content-Type', 'application/octet-stream')
            .setHeader('Content-Length', b.chunk2Length)
            .setHeader('Content-Range', b.chunk2Range)
            .setBody(b.chunk2),
        );
        expectStatus(resp, 416);
      });

      await r.specify('PATCH request with first chunk should return 202', async () => {
        this.skipIfDisabled(W);
        const b = f.testBlobB;
        let resp = await c.do(c.newRequest('POST', '/v2/<name>/blobs/uploads/').setHeader('Content-Length', '0'));
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        prevResponse = resp;
        resp = await c.do(
          c
            .newRequest('PATCH', resp.relativeLocation())
            .setHeader('Content-Type', 'application/octet-stream')
            .setHeader('Content-Length', b.chunk1Length)
            .setHeader('Content-Range', b.chunk1Range)
            .setBody(b.chunk1),
        );
        expectStatus(resp, 202);
        expectEqual(resp.header('Range'), b.chunk1Range, 'Range', resp);
        lastResponse = resp;
      });

      await r.specify('Retry previous blob chunk should return 416', async () => {
        this.skipIfDisabled(W);
        const b = f.testBlobB;
        assert.ok(prevResponse, 'expected the previous POST response');
        const resp = await c.do(
          c
            .newRequest('PATCH', prevResponse.relativeLocation())
            .setHeader('Content-Type', 'application/octet-stream')
            .setHeader('Content-Length', b.chunk1Length)
            .setHeader('Content-Range', b.chunk1Range)
            .setBody(b.chunk1),
        );
        expectStatus(resp, 416);
      });

      await r.specify('Get on stale blob upload should return 204 with a range and location', async () => {
        this.skipIfDisabled(W);
        assert.ok(prevResponse, 'expected the previous POST response');
        const resp = await c.do(c.newRequest('GET', prevResponse.relativeLocation()));
        expectStatus(resp, 204);
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        expectEqual(resp.header('Range'), f.testBlobB.chunk1Range, 'Range', resp);
        lastResponse = resp;
      });

      await r.specify('PATCH request with second chunk should return 202', async () => {
        this.skipIfDisabled(W);
        const b = f.testBlobB;
        assert.ok(lastResponse, 'expected the previous GET response');
        const resp = await c.do(
          c
            .newRequest('PATCH', lastResponse.relativeLocation())
            .setHeader('Content-Length', b.chunk2Length)
            .setHeader('Content-Range', b.chunk2Range)
            .setHeader('Content-Type', 'application/octet-stream')
            .setBody(b.chunk2),
        );
        expectStatus(resp, 202);
        expectNotEmpty(resp.header('Location'), 'Location', resp);
        lastResponse = resp;
      });

      await r.specify('PUT request with digest should return 201', async () => {
        this.skipIfDisabled(W);
        assert.ok(lastResponse, 'expected the previous PATCH response');
        const resp = await c.do(
          c
            .newRequest('PUT', lastResponse.relativeLocation())
            .setHeader('Content-Length', '0')
            .setHeader('Content-Type', 'application/octet-stream')
            .setQueryParam('digest', f.testBlobB.digest),
        );
        expectStatus(resp, 201);
        expectNotEmpty(resp.header('Location'), 'Location', resp);
      });
    });

    await r.context('Cross-Repository Blob Mount', async (r) => {
      const crossmount = this.opts.crossmountNamespace;

      await r.specify('Cross-mounting of a blob without the from argument should yield session id', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(
          c.newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmount }).setQueryParam('mount', f.dummyDigest),
        );
        expectStatus(resp, 202);
        expectNotEmpty(resp.absoluteLocation(), 'Location', resp);
      });

      await r.specify("POST request to mount another repository's blob should return 201 or 202", async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(
          c
            .newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmount })
            .setQueryParam('mount', f.testBlobA.digest)
            .setQueryParam('from', c.defaultName),
        );
        expectStatus(resp, 201, 202);
        lastResponse = resp;
      });

      await r.specify('GET request to test digest within cross-mount namespace should return 200', async () => {
        this.skipIfDisabled(W);
        assert.ok(lastResponse, 'expected the previous mount response');
        runOnlyIf(lastResponse.status === 201);
        expectEqual(lastResponse.relativeLocation(), `/v2/${crossmount}/blobs/${f.testBlobA.digest}`, 'mount Location', lastResponse);
        expectStatus(await c.do(c.newRequest('GET', lastResponse.relativeLocation())), 200);
      });

      await r.specify('Cross-mounting of nonexistent blob should yield session id', async () => {
        this.skipIfDisabled(W);
        assert.ok(lastResponse, 'expected the previous mount response');
        runOnlyIf(lastResponse.status === 202);
        const loc = lastResponse.relativeLocation();
        assert.ok(loc.startsWith(`/v2/${crossmount}/blobs/uploads/`), `expected Location to start with /v2/${crossmount}/blobs/uploads/: ${lastResponse.describe()}`);
      });

      await r.specify('Cross-mounting without from, and automatic content discovery enabled should return a 201', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runAutomaticCrossmountTest);
        assert.ok(lastResponse, 'expected the previous mount response');
        runOnlyIf(lastResponse.status === 201);
        runOnlyIf(this.automaticCrossmountEnabled);
        const resp = await c.do(
          c.newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmount }).setQueryParam('mount', f.testBlobA.digest),
        );
        expectStatus(resp, 201);
      });

      await r.specify('Cross-mounting without from, and automatic content discovery disabled should return a 202', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runAutomaticCrossmountTest);
        assert.ok(lastResponse, 'expected the previous mount response');
        runOnlyIf(lastResponse.status === 201);
        runOnlyIfNot(this.automaticCrossmountEnabled);
        const resp = await c.do(
          c.newRequest('POST', '/v2/<name>/blobs/uploads/', { name: crossmount }).setQueryParam('mount', f.testBlobA.digest),
        );
        expectStatus(resp, 202);
      });
    });

    await r.context('Manifest Upload', async (r) => {
      await r.specify('GET nonexistent manifest should return 404', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/manifests/<reference>', { reference: NONEXISTENT_MANIFEST }));
        expectStatus(resp, 404);
      });

      await r.specify('PUT should accept a manifest upload', async () => {
        this.skipIfDisabled(W);
        for (let i = 0; i < 4; i++) {
          const resp = await this.putManifest(`test${i}`, manifest1.content);
          expectNotEmpty(resp.header('Location'), 'Location', resp);
          expectStatus(resp, 201);
        }
      });

      await r.specify('Registry should accept a manifest upload with no layers', async (warn) => {
        this.skipIfDisabled(W);
        const resp = await this.putManifest(EMPTY_LAYER_TEST_TAG, f.emptyLayerManifest.content);
        if (resp.status === 201) {
          const location = resp.header('Location');
          emptyLayerManifestRef = location;
          expectNotEmpty(location, 'Location', resp);
        } else {
          warn(`image manifest with no layers is not supported (${resp.describe()})`);
        }
      });

      await r.specify('GET request to manifest URL (digest) should yield 200 response', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(
          c.newRequest('GET', '/v2/<name>/manifests/<digest>', { digest: manifest1.digest }).setHeader('Accept', MT_MANIFEST),
        );
        expectStatus(resp, 200);
      });
    });

    await r.context('Teardown', async (r) => {
      const deleteManifests = async (): Promise<void> => {
        await r.specify('Delete manifest created in tests', async () => {
          this.skipIfDisabled(W);
          runOnlyIf(this.runPushSetup);
          expectStatus(await this.deleteManifest(manifest1.digest), 'success', 405);
          if (emptyLayerManifestRef !== '') {
            const resp = await c.do(
              c.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: f.emptyLayerManifest.digest }),
            );
            expectStatus(resp, 'success', 405);
          }
        });
      };
      if (this.deleteManifestBeforeBlobs) await deleteManifests();

      await r.specify('Delete config blob created in tests', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPushSetup);
        expectStatus(await this.deleteBlob(config1.digest), 'success', 404, 405);
      });

      await r.specify('Delete layer blob created in setup', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runPushSetup);
        expectStatus(await this.deleteBlob(f.layer.digest), 'success', 404, 405);
      });

      if (!this.deleteManifestBeforeBlobs) await deleteManifests();
    });
  }

  // -------------------------------------------------------------------------
  // 03_discovery_test.go

  private async test03ContentDiscovery(r: Runner): Promise<void> {
    const { f, client: c } = this;
    const W: Workflow = 'Content Discovery';
    let numTags = 4;
    let tagList: string[] = [];
    const config2 = at(f.configs, 2);
    const config4 = at(f.configs, 4);
    const manifest2 = at(f.manifests, 2);
    const manifest3 = at(f.manifests, 3);
    const manifest4 = at(f.manifests, 4);

    await r.context('Setup', async (r) => {
      await r.specify('Populate registry with test blob', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);
        expectStatus(await this.pushBlob(config2.content, config2.digest, config2.contentLength), 'success');
      });

      await r.specify('Populate registry with test layer', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);
        expectStatus(await this.pushBlob(f.layer.content, f.layer.digest, f.layer.contentLength), 'success');
      });

      await r.specify('Populate registry with test tags', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);
        for (let i = 0; i < numTags; i++) {
          const tag = `test${i}`;
          tagList.push(tag);
          expectStatus(await this.putManifest(tag, manifest2.content), 'success');
        }
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/tags/list'));
        tagList = getTagList(resp);
      });

      await r.specify('Populate registry with test tags (no push)', async () => {
        this.skipIfDisabled(W);
        runOnlyIfNot(this.runContentDiscoverySetup);
        tagList = (process.env.OCI_TAG_LIST ?? '').split(',');
      });

      await r.specify('References setup', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);

        expectEqual(f.emptyJSONDescriptor.digest, EMPTY_JSON_DIGEST, 'empty JSON digest');
        expectStatus(await this.pushBlob(f.emptyJSONBlob, f.emptyJSONDescriptor.digest, String(f.emptyJSONDescriptor.size)), 'success');
        // The blob a references artifact points at, pushed before the image manifest.
        expectStatus(await this.pushBlob(f.refBlobA.content, f.refBlobA.digest, f.refBlobA.contentLength), 'success');

        // Referrers pushed while their subject (manifests[4]) does not exist yet.
        for (const [m, mediaType] of [
          [f.refsManifestAConfig, MT_MANIFEST], // config.mediaType = artifactType
          [f.refsManifestALayer, MT_MANIFEST], // artifactType, config.mediaType = empty JSON
          [f.refsIndex, MT_INDEX],
        ] as const) {
          const resp = await this.putManifest(m.digest, m.content, mediaType);
          expectStatus(resp, 'success');
          expectEqual(resp.header('OCI-Subject'), manifest4.digest, 'OCI-Subject', resp);
        }

        expectStatus(await this.pushBlob(config4.content, config4.digest, config4.contentLength), 'success');
        expectStatus(await this.pushBlob(f.layer.content, f.layer.digest, f.layer.contentLength), 'success');
        expectStatus(await this.putManifest(TEST_TAG_NAME, manifest4.content), 'success');
        // The blob b references artifact points at, pushed after the image manifest.
        expectStatus(await this.pushBlob(f.refBlobB.content, f.refBlobB.digest, f.refBlobB.contentLength), 'success');

        for (const m of [f.refsManifestBConfig, f.refsManifestBLayer]) {
          const resp = await this.putManifest(m.digest, m.content);
          expectStatus(resp, 'success');
          expectEqual(resp.header('OCI-Subject'), manifest4.digest, 'OCI-Subject', resp);
        }

        // A referrer whose subject (manifests[3]) is never pushed here.
        const resp = await this.putManifest(f.refsManifestCLayer.digest, f.refsManifestCLayer.content);
        expectStatus(resp, 'success');
        expectEqual(resp.header('OCI-Subject'), manifest3.digest, 'OCI-Subject', resp);
      });
    });

    await r.context('Test content discovery endpoints (listing tags)', async (r) => {
      await r.specify('GET request to list tags should yield 200 response', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/tags/list'));
        expectStatus(resp, 200);
        tagList = getTagList(resp);
        numTags = tagList.length;
      });

      await r.specify('GET number of tags should be limitable by `n` query parameter', async () => {
        this.skipIfDisabled(W);
        const numResults = Math.trunc(numTags / 2);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/tags/list').setQueryParam('n', String(numResults)));
        expectStatus(resp, 200);
        tagList = getTagList(resp);
        expectEqual(tagList.length, numResults, `number of tags returned for n=${numResults}`, resp);
      });

      await r.specify('GET start of tag is set by `last` query parameter', async () => {
        this.skipIfDisabled(W);
        const numResults = Math.trunc(numTags / 2);
        let resp = await c.do(c.newRequest('GET', '/v2/<name>/tags/list').setQueryParam('n', String(numResults)));
        tagList = getTagList(resp);
        const last = at(tagList, numResults - 1);
        resp = await c.do(
          c.newRequest('GET', '/v2/<name>/tags/list').setQueryParam('n', String(numResults)).setQueryParam('last', last),
        );
        expectStatus(resp, 200);
        // v1.1.1 checks the first page again here, not the second response.
        assert.ok(tagList.length <= numResults, `expected at most ${numResults} tags, got ${JSON.stringify(tagList)}`);
        assert.ok(tagList.includes(last), `expected ${JSON.stringify(tagList)} to contain ${last}`);
      });
    });

    await r.context('Test content discovery endpoints (listing references)', async (r) => {
      const expectIndexContentType = (resp: Response): void => {
        expectEqual(resp.header('Content-Type'), MT_INDEX, 'Content-Type', resp);
      };
      const expectAnnotations = (manifests: IndexDescriptor[], resp: Response): void => {
        for (const m of manifests) {
          expectEqual(Object.keys(m.annotations).length, 1, `number of annotations on referrer ${m.digest}`, resp);
          expectEqual(m.annotations[ANNOTATION_KEY], f.annotationValues.get(m.digest) ?? '', `annotation ${ANNOTATION_KEY} of ${m.digest}`, resp);
        }
      };

      await r.specify('GET request to nonexistent blob should result in empty 200 response', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: f.dummyDigest }));
        expectStatus(resp, 200);
        expectIndexContentType(resp);
        expectEqual(unmarshalIndex(resp).length, 0, 'number of referrers', resp);
      });

      await r.specify('GET request to existing blob should yield 200', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: manifest4.digest }));
        expectStatus(resp, 200);
        expectIndexContentType(resp);
        const manifests = unmarshalIndex(resp);
        expectEqual(manifests.length, 5, 'number of referrers', resp);
        assert.notEqual(at(manifests, 0).digest, at(manifests, 1).digest, `first two referrers are the same: ${resp.describe()}`);
        expectAnnotations(manifests, resp);
      });

      await r.specify('GET request to existing blob with filter should yield 200', async (warn) => {
        this.skipIfDisabled(W);
        const resp = await c.do(
          c.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: manifest4.digest }).setQueryParam('artifactType', f.artifactTypeA),
        );
        expectStatus(resp, 200);
        expectIndexContentType(resp);
        const manifests = unmarshalIndex(resp);
        // OCI-Filters-Applied: artifactType says the filter was applied.
        if (resp.header('OCI-Filters-Applied') !== '') {
          expectEqual(manifests.length, 2, 'number of filtered referrers', resp);
          expectEqual(resp.header('OCI-Filters-Applied'), ARTIFACT_TYPE_FILTER, 'OCI-Filters-Applied', resp);
          expectAnnotations(manifests, resp);
        } else {
          expectEqual(manifests.length, 5, 'number of referrers (filter not applied)', resp);
          expectAnnotations(manifests, resp);
          warn('filtering by artifact-type is not implemented');
        }
      });

      await r.specify('GET request to missing manifest should yield 200', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/referrers/<digest>', { digest: manifest3.digest }));
        expectStatus(resp, 200);
        expectIndexContentType(resp);
        const manifests = unmarshalIndex(resp);
        expectEqual(manifests.length, 1, 'number of referrers', resp);
        expectEqual(at(manifests, 0).digest, f.refsManifestCLayer.digest, 'referrer digest', resp);
      });
    });

    await r.context('Teardown', async (r) => {
      const deleteManifests = async (): Promise<void> => {
        await r.specify('Delete created manifest & associated tags', async () => {
          this.skipIfDisabled(W);
          runOnlyIf(this.runContentDiscoverySetup);
          const references = [
            f.refsIndex.digest,
            manifest2.digest,
            manifest4.digest,
            f.refsManifestAConfig.digest,
            f.refsManifestALayer.digest,
            TEST_TAG_NAME,
            f.refsManifestBConfig.digest,
            f.refsManifestBLayer.digest,
            f.refsManifestCLayer.digest,
          ];
          for (const ref of references) expectStatus(await this.deleteManifest(ref), 'success', 405, 404);
        });
      };
      if (this.deleteManifestBeforeBlobs) await deleteManifests();

      await r.specify('Delete config blob created in tests', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);
        expectStatus(await this.deleteBlob(config2.digest), 'success', 405);
      });

      await r.specify('Delete layer blob created in setup', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);
        expectStatus(await this.deleteBlob(f.layer.digest), 'success', 405);
      });

      if (!this.deleteManifestBeforeBlobs) await deleteManifests();

      await r.specify('References teardown', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentDiscoverySetup);
        const expectDeleted = (resp: Response): void => expectStatus(resp, 'success', 405, 404);
        const deleteReferrers = async (): Promise<void> => {
          for (const ref of [f.refsIndex.digest, f.refsManifestAConfig.digest, f.refsManifestALayer.digest]) {
            expectDeleted(await c.do(c.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: ref })));
          }
          expectDeleted(await this.deleteManifest(manifest4.digest));
          for (const ref of [f.refsManifestBConfig.digest, f.refsManifestBLayer.digest]) {
            expectDeleted(await c.do(c.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: ref })));
          }
        };
        if (this.deleteManifestBeforeBlobs) await deleteReferrers();
        expectDeleted(await this.deleteBlob(config4.digest));
        expectDeleted(await this.deleteBlob(f.refBlobA.digest));
        expectDeleted(await this.deleteBlob(f.refBlobB.digest));
        expectDeleted(await this.deleteBlob(f.emptyJSONDescriptor.digest));
        if (!this.deleteManifestBeforeBlobs) await deleteReferrers();
      });
    });
  }

  // -------------------------------------------------------------------------
  // 04_management_test.go

  private async test04ContentManagement(r: Runner): Promise<void> {
    const { f, client: c } = this;
    const W: Workflow = 'Content Management';
    const defaultTagName = 'tagtest0';
    let tagToDelete = '';
    let numTags = 0;
    let blobDeleteAllowed = true;
    const config3 = at(f.configs, 3);
    const manifest3 = at(f.manifests, 3);

    await r.context('Setup', async (r) => {
      await r.specify('Populate registry with test config blob', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentManagementSetup);
        expectStatus(await this.pushBlob(config3.content, config3.digest, config3.contentLength), 'success');
      });

      await r.specify('Populate registry with test layer', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentManagementSetup);
        expectStatus(await this.pushBlob(f.layer.content, f.layer.digest, f.layer.contentLength), 'success');
      });

      await r.specify('Populate registry with test tag', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentManagementSetup);
        tagToDelete = defaultTagName;
        expectStatus(await this.putManifest(tagToDelete, manifest3.content), 'success');
      });

      await r.specify('Check how many tags there are before anything gets deleted', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentManagementSetup);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/tags/list'));
        expectStatus(resp, 200);
        numTags = unmarshalTagList(resp).length;
      });
    });

    await r.context('Manifest delete', async (r) => {
      await r.specify('DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('DELETE', '/v2/<name>/manifests/<reference>', { reference: tagToDelete }));
        expectStatus(resp, 400, 202, 405);
        if (resp.status === 400) {
          let errors: ErrorInfo[];
          try {
            errors = resp.errors();
          } catch (err) {
            assert.fail(`400 body is not an OCI error list (${(err as Error).message}): ${resp.describe()}`);
          }
          expectEqual(at(errors, 0).code, 'UNSUPPORTED', 'error code', resp);
        }
      });

      await r.specify('DELETE request to manifest (digest) should yield 202 response unless already deleted', async () => {
        this.skipIfDisabled(W);
        // If the tag delete removed the manifest too, 404 is fine.
        expectStatus(await this.deleteManifest(manifest3.digest), 202, 404);
      });

      await r.specify('GET request to deleted manifest URL should yield 404 response, unless delete is disallowed', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/manifests/<digest>', { digest: manifest3.digest }));
        expectStatus(resp, 404, 200);
      });

      await r.specify('GET request to tags list should reflect manifest deletion', async () => {
        this.skipIfDisabled(W);
        const resp = await c.do(c.newRequest('GET', '/v2/<name>/tags/list'));
        expectStatus(resp, 200);
        const tags = unmarshalTagList(resp);
        assert.ok(tags.length < numTags, `expected fewer than ${numTags} tags, got ${JSON.stringify(tags)}: ${resp.describe()}`);
      });
    });

    await r.context('Blob delete', async (r) => {
      await r.specify('DELETE request to blob URL should yield 202 response', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentManagementSetup);
        expectStatus(await this.deleteBlob(config3.digest), 202, 404, 405);
        const resp = await this.deleteBlob(f.layer.digest);
        expectStatus(resp, 202, 404, 405);
        if (resp.status === 405) blobDeleteAllowed = false;
      });

      await r.specify('GET request to deleted blob URL should yield 404 response', async () => {
        this.skipIfDisabled(W);
        runOnlyIf(this.runContentManagementSetup);
        runOnlyIf(blobDeleteAllowed);
        expectStatus(await c.do(c.newRequest('GET', '/v2/<name>/blobs/<digest>', { digest: config3.digest })), 404);
      });
    });

    // Context "Teardown" holds no specs in v1.1.1.
  }
}

// ---------------------------------------------------------------------------
// Entry points

function suiteOptions(baseUrl: string, automaticCrossmount: boolean | undefined): SuiteOptions {
  const env = process.env;
  const flags: [string, Workflow][] = [
    ['OCI_TEST_PULL', 'Pull'],
    ['OCI_TEST_PUSH', 'Push'],
    ['OCI_TEST_CONTENT_DISCOVERY', 'Content Discovery'],
    ['OCI_TEST_CONTENT_MANAGEMENT', 'Content Management'],
  ];
  const anySet = flags.some(([k]) => env[k] !== undefined);
  const workflows = new Set<Workflow>(flags.filter(([k]) => !anySet || parseBool(env[k]).value).map(([, w]) => w));
  const deleteFirst = parseBool(env.OCI_DELETE_MANIFEST_BEFORE_BLOBS);
  return {
    baseUrl,
    namespace: env.OCI_NAMESPACE || `conformance/test-${randomBytes(4).toString('hex')}`,
    crossmountNamespace: env.OCI_CROSSMOUNT_NAMESPACE || `conformance-${randomUUID()}`,
    automaticCrossmount,
    // v1.1.1: true unless the variable is set (an unparsable value reads as false, like Go).
    deleteManifestBeforeBlobs: env.OCI_DELETE_MANIFEST_BEFORE_BLOBS === undefined ? true : deleteFirst.value,
    workflows,
  };
}

const externalUrl = process.env.PIER_CONFORMANCE_URL;
if (externalUrl) {
  const v = process.env.OCI_AUTOMATIC_CROSSMOUNT;
  const automatic = v === undefined ? undefined : parseBool(v).value;
  const label = automatic === undefined ? 'unset' : automatic ? '1' : '0';
  await test(`${externalUrl} (OCI_AUTOMATIC_CROSSMOUNT ${label})`, { timeout: PASS_TIMEOUT_MS }, async (t) => {
    await runSuite(t, suiteOptions(externalUrl, automatic));
  });
} else {
  for (const automaticMount of [true, false]) {
    await test(`Pier, automatic cross-mount ${automaticMount ? 'enabled (OCI_AUTOMATIC_CROSSMOUNT=1)' : 'disabled (OCI_AUTOMATIC_CROSSMOUNT=0)'}`, { timeout: PASS_TIMEOUT_MS }, async (t) => {
      // No automatic SBOM: the suite counts referrers exactly, and the CycloneDX referrer Pier adds to each image would change the count.
      const reg = await startTestRegistry({ uploads: { automaticMount }, scanning: { sbom: false } });
      try {
        await runSuite(t, suiteOptions(reg.url, automaticMount));
      } finally {
        await reg.close();
      }
    });
  }
  // Once more with blobs in an S3 bucket (Ceph RGW from scripts/test.sh), upload sessions in the database.
  await test('Pier on S3 (storage.type s3), automatic cross-mount enabled', { timeout: PASS_TIMEOUT_MS }, async (t) => {
    const bucket = await testBucket();
    try {
      // No automatic SBOM: the suite counts referrers exactly (see above).
      const reg = await startTestRegistry({ storage: bucket.config(), scanning: { sbom: false } });
      try {
        await runSuite(t, suiteOptions(reg.url, true));
      } finally {
        await reg.close();
      }
    } finally {
      await bucket.remove();
    }
  });
}
