/**
 * What the GC stress tests check, shared by the single-process one
 * (test/lifecycle/gc-stress.test.ts) and the one across replicas
 * (test/cluster/gc.test.ts): a pull verified byte by byte, a GC run through
 * the Pier API, an image's blobs, and set comparisons that name what is
 * missing and what is extra.
 */
import assert from 'node:assert/strict';
import { sha256, type TestBlob, type TestImage } from './images.js';

export interface GcRun {
  blobs: { deleted: number; scanned: number; skippedRecent: number; skippedInUse: number };
  manifests: { deleted: number; scanned: number };
  links: { deleted: number };
}

/**
 * Pulls `repo:reference` through `base`: the manifest (of `expect`'s digest
 * if given) and every blob it references, each checked against its digest.
 * Returns the manifest's digest.
 */
export async function pullAndVerify(base: string, repo: string, reference: string, expect?: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${repo}:${reference}: manifest ${res.status}`);
  const digest = sha256(body);
  if (expect) assert.equal(digest, expect, `${repo}:${reference} has the wrong digest`);
  const manifest = JSON.parse(body.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
    const blob = await fetch(`${base}/v2/${repo}/blobs/${d}`);
    const bytes = Buffer.from(await blob.arrayBuffer());
    assert.equal(blob.status, 200, `${repo}:${reference}: blob ${d} answered ${blob.status}`);
    assert.equal(sha256(bytes), d, `${repo}:${reference}: blob ${d} has the wrong bytes`);
  }
  return digest;
}

/** One GC run through `POST /pier/v1/gc` on `base` (no credentials: the test registries are open). */
export async function runGc(base: string, dryRun = false): Promise<GcRun> {
  const res = await fetch(`${base}/pier/v1/gc${dryRun ? '?dryRun=1' : ''}`, { method: 'POST' });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as GcRun;
}

/** The config and layer digests of `image`. */
export const blobsOf = (image: TestImage): string[] => [image.config.digest, ...image.layers.map((l) => l.digest)];

/** Asserts two sets are equal, naming up to 10 members missing from `actual` and 10 it should not have. */
export function assertSameSet(actual: Iterable<string>, expected: Iterable<string>, what: string): void {
  const a = new Set(actual);
  const e = new Set(expected);
  const missing = [...e].filter((x) => !a.has(x));
  const extra = [...a].filter((x) => !e.has(x));
  assert.ok(missing.length === 0 && extra.length === 0, `${what}: ${missing.length} missing ${JSON.stringify(missing.slice(0, 10))}, ${extra.length} extra ${JSON.stringify(extra.slice(0, 10))}`);
}

/**
 * Uploads `blob` into `repo` in `chunks` PATCHes (with Content-Range) and a
 * closing PUT, each a request of its own (through a balancer, each may land
 * on another replica).
 */
export async function pushChunked(base: string, repo: string, blob: TestBlob, chunks: number): Promise<void> {
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start: ${start.status} ${await start.text()}`);
  let location = start.headers.get('location')!;
  const step = Math.ceil(blob.size / chunks);
  for (let at = 0; at < blob.size; at += step) {
    const end = Math.min(blob.size, at + step);
    const url = location.startsWith('http') ? location : `${base}${location}`;
    const res = await fetch(url, { method: 'PATCH', body: blob.data.subarray(at, end), headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${end - 1}` } });
    if (res.status !== 202) throw new Error(`chunk ${at}-${end - 1}: ${res.status} ${await res.text()}`);
    location = res.headers.get('location') ?? location;
  }
  const url = new URL(location, base);
  url.searchParams.set('digest', blob.digest);
  const put = await fetch(url, { method: 'PUT' });
  if (put.status !== 201) throw new Error(`upload commit: ${put.status} ${await put.text()}`);
}

/** Mounts `digest` into `repo` from `from`: true if linked (201), false if the registry asked for an upload (202). */
export async function mountBlob(base: string, repo: string, digest: string, from: string): Promise<boolean> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST' });
  await res.arrayBuffer();
  if (res.status === 201) return true;
  if (res.status === 202) {
    // An upload session was opened instead: cancel it, the caller uploads.
    const location = res.headers.get('location');
    if (location) await (await fetch(new URL(location, base), { method: 'DELETE' })).arrayBuffer();
    return false;
  }
  throw new Error(`mount ${digest} from ${from} into ${repo}: ${res.status}`);
}
