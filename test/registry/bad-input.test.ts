/**
 * Bad input: each gets the spec's error code, and nothing is stored —
 * no blob, no manifest, no tag, no leftover upload bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MediaTypes } from '../../src/oci/media-types.js';
import { makeImage, sha256 } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const url = (p: string) => `${reg.url}${p}`;

before(async () => {
  reg = await startTestRegistry({ manifests: { maxSize: 64 * 1024 } });
});
after(async () => {
  await reg.close();
});

async function errorOf(res: Response): Promise<{ status: number; code: string | undefined }> {
  const text = await res.text();
  const body = text ? (JSON.parse(text) as { errors?: { code: string }[] }) : {};
  return { status: res.status, code: body.errors?.[0]?.code };
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(p)));
    else out.push(p);
  }
  return out;
}

const storedBlobs = () => files(path.join(reg.dataDir, 'blobs', 'blobs'));
const pendingUploads = () => files(path.join(reg.dataDir, 'blobs', 'uploads'));

async function tagsOf(repo: string): Promise<string[]> {
  const res = await fetch(url(`/v2/${repo}/tags/list`));
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] }).tags;
}

async function pushBlobs(repo: string, image: Awaited<ReturnType<typeof makeImage>>) {
  for (const b of [image.config, ...image.layers]) {
    const res = await fetch(url(`/v2/${repo}/blobs/uploads/?digest=${b.digest}`), { method: 'POST', body: b.data });
    assert.equal(res.status, 201);
  }
}

describe('repository names', () => {
  for (const name of ['../x', 'UPPER/case', 'a'.repeat(256), 'trailing/', 'double//slash', '-leading', 'x/..', 'sp ace', '%2e%2e/etc']) {
    test(`${JSON.stringify(name.slice(0, 40))} is NAME_INVALID and touches nothing`, async () => {
      const before = await storedBlobs();
      const data = randomBytes(10);
      const res = await fetch(url(`/v2/${name}/blobs/uploads/?digest=${sha256(data)}`), { method: 'POST', body: data });
      // A path that does not parse as an API route at all is a 404; one that does is NAME_INVALID.
      const err = await errorOf(res);
      assert.ok(err.status === 400 || err.status === 404, `status ${err.status}`);
      if (err.status === 400) assert.equal(err.code, 'NAME_INVALID');
      assert.deepEqual(await storedBlobs(), before);
      const get = await fetch(url(`/v2/${name}/manifests/latest`));
      assert.ok(get.status === 400 || get.status === 404);
    });
  }
});

describe('digests', () => {
  test('a blob whose bytes do not match the digest is DIGEST_INVALID and not stored', async () => {
    const data = randomBytes(1000);
    const wrong = sha256('something else');
    const before = await storedBlobs();
    const res = await fetch(url(`/v2/bad/digest/blobs/uploads/?digest=${wrong}`), { method: 'POST', body: data });
    assert.deepEqual(await errorOf(res), { status: 400, code: 'DIGEST_INVALID' });
    assert.deepEqual(await storedBlobs(), before);
    assert.equal((await fetch(url(`/v2/bad/digest/blobs/${wrong}`))).status, 404);
    assert.equal((await fetch(url(`/v2/bad/digest/blobs/${sha256(data)}`))).status, 404);
  });

  test('finishing a chunked upload with the wrong digest discards it', async () => {
    const uploadsBefore = await pendingUploads();
    const start = await fetch(url('/v2/bad/chunked/blobs/uploads/'), { method: 'POST' });
    const location = start.headers.get('location')!;
    await (await fetch(url(location), { method: 'PATCH', body: randomBytes(100), headers: { 'content-type': 'application/octet-stream' } })).arrayBuffer();
    const res = await fetch(url(`${location}?digest=${sha256('nope')}`), { method: 'PUT' });
    assert.deepEqual(await errorOf(res), { status: 400, code: 'DIGEST_INVALID' });
    assert.equal((await fetch(url(location))).status, 404);
    assert.deepEqual(await pendingUploads(), uploadsBefore);
  });

  for (const digest of ['sha256:abc', 'md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256:' + 'G'.repeat(64), 'notadigest', 'sha256:../../etc/passwd']) {
    test(`malformed digest ${JSON.stringify(digest.slice(0, 30))} is DIGEST_INVALID`, async () => {
      const res = await fetch(url(`/v2/bad/digest/blobs/uploads/?digest=${encodeURIComponent(digest)}`), { method: 'POST', body: 'x' });
      assert.deepEqual(await errorOf(res), { status: 400, code: 'DIGEST_INVALID' });
      const get = await fetch(url(`/v2/bad/digest/blobs/${encodeURIComponent(digest)}`));
      assert.ok([400, 404].includes(get.status));
    });
  }

  test('PUT upload without a digest is DIGEST_INVALID', async () => {
    const start = await fetch(url('/v2/bad/nodigest/blobs/uploads/'), { method: 'POST' });
    const res = await fetch(url(start.headers.get('location')!), { method: 'PUT', body: 'abc' });
    assert.deepEqual(await errorOf(res), { status: 400, code: 'DIGEST_INVALID' });
  });
});

describe('uploads', () => {
  test('a truncated monolithic upload stores nothing', async () => {
    const data = randomBytes(50_000);
    const digest = sha256(data);
    const before = await storedBlobs();
    const uploadsBefore = await pendingUploads();
    const { port } = new URL(reg.url);
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /v2/bad/truncated/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: x\r\nContent-Length: ${data.length}\r\n\r\n`);
        socket.write(data.subarray(0, 20_000));
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    // The server notices the broken connection and discards the partial upload.
    for (let i = 0; i < 50 && (await pendingUploads()).length > uploadsBefore.length; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await storedBlobs(), before);
    assert.equal((await fetch(url(`/v2/bad/truncated/blobs/${digest}`))).status, 404);
    assert.deepEqual(await pendingUploads(), uploadsBefore);
  });

  test('a chunk whose Content-Range disagrees with its length is 416', async () => {
    const start = await fetch(url('/v2/bad/range/blobs/uploads/'), { method: 'POST' });
    const location = start.headers.get('location')!;
    const res = await fetch(url(location), { method: 'PATCH', body: randomBytes(100), headers: { 'content-range': '0-199', 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 416);
    const status = await fetch(url(location));
    assert.equal(status.headers.get('range'), '0-0');
  });

  for (const range of ['garbage', '10-5', 'bytes=a-b', '-5']) {
    test(`Content-Range ${JSON.stringify(range)} is 416`, async () => {
      const start = await fetch(url('/v2/bad/range/blobs/uploads/'), { method: 'POST' });
      const res = await fetch(url(start.headers.get('location')!), { method: 'PATCH', body: 'abc', headers: { 'content-range': range, 'content-type': 'application/octet-stream' } });
      assert.equal(res.status, 416);
    });
  }

  for (const range of ['bytes=500-', 'bytes=abc', 'items=0-1', 'bytes=5-2']) {
    test(`blob GET with Range ${JSON.stringify(range)} is 416`, async () => {
      const data = randomBytes(100);
      await fetch(url(`/v2/bad/getrange/blobs/uploads/?digest=${sha256(data)}`), { method: 'POST', body: data });
      const res = await fetch(url(`/v2/bad/getrange/blobs/${sha256(data)}`), { headers: { range } });
      assert.equal(res.status, 416);
    });
  }

  test('an unknown upload id is BLOB_UPLOAD_UNKNOWN, path tricks included', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', '..%2F..%2Fpier.db', 'x']) {
      const res = await fetch(url(`/v2/bad/up/blobs/uploads/${id}`), { method: 'PATCH', body: 'abc' });
      assert.equal(res.status, 404);
    }
  });
});

describe('manifests', () => {
  const cases: [string, string | Buffer, string][] = [
    ['not JSON', '{"schemaVersion": 2,', MediaTypes.ociManifest],
    ['a JSON array', '[]', MediaTypes.ociManifest],
    ['schemaVersion 1', '{"schemaVersion":1}', MediaTypes.ociManifest],
    ['no config', JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, layers: [] }), MediaTypes.ociManifest],
    [
      'a bad descriptor digest',
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: 'sha256:xyz', size: 2 }, layers: [] }),
      MediaTypes.ociManifest,
    ],
    [
      'a negative size',
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: sha256('{}'), size: -1 }, layers: [] }),
      MediaTypes.ociManifest,
    ],
    [
      'mediaType disagreeing with Content-Type',
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }),
      MediaTypes.ociManifest,
    ],
    ['an index with layers', JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [], layers: [] }), MediaTypes.ociIndex],
  ];
  for (const [label, body, contentType] of cases) {
    test(`${label} is MANIFEST_INVALID and stores nothing`, async () => {
      const res = await fetch(url('/v2/bad/manifest/manifests/v1'), { method: 'PUT', body, headers: { 'content-type': contentType } });
      assert.deepEqual(await errorOf(res), { status: 400, code: 'MANIFEST_INVALID' });
      assert.deepEqual(await tagsOf('bad/manifest'), []);
    });
  }

  test('an invalid tag is MANIFEST_INVALID (or TAG_INVALID) and stores nothing', async () => {
    const image = await makeImage();
    await pushBlobs('bad/tag', image);
    for (const tag of ['-dash', '.dot', 'a'.repeat(129)]) {
      const res = await fetch(url(`/v2/bad/tag/manifests/${tag}`), { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
      const err = await errorOf(res);
      assert.equal(err.status, 400);
      assert.ok(err.code === 'MANIFEST_INVALID' || err.code === 'TAG_INVALID', err.code);
    }
    assert.deepEqual(await tagsOf('bad/tag'), []);
  });

  test('a manifest PUT by the wrong digest is DIGEST_INVALID', async () => {
    const image = await makeImage();
    await pushBlobs('bad/bydigest', image);
    const res = await fetch(url(`/v2/bad/bydigest/manifests/${sha256('other')}`), { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
    assert.deepEqual(await errorOf(res), { status: 400, code: 'DIGEST_INVALID' });
    assert.equal((await fetch(url(`/v2/bad/bydigest/manifests/${image.digest}`))).status, 404);
  });

  test('an oversized manifest is 413 and stores nothing', async () => {
    const image = await makeImage();
    await pushBlobs('bad/big', image);
    const doc = JSON.parse(image.manifest.toString()) as Record<string, unknown>;
    doc.annotations = { padding: 'x'.repeat(70 * 1024) };
    const res = await fetch(url('/v2/bad/big/manifests/v1'), { method: 'PUT', body: JSON.stringify(doc), headers: { 'content-type': image.mediaType } });
    assert.equal(res.status, 413);
    assert.deepEqual(await tagsOf('bad/big'), []);
  });

  test('the default limit is 4 MiB: a 4 MiB + 1 manifest is refused', async () => {
    const defaults = await startTestRegistry();
    try {
      const body = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
      const res = await fetch(`${defaults.url}/v2/bad/huge/manifests/v1`, { method: 'PUT', body, headers: { 'content-type': MediaTypes.ociManifest } });
      assert.equal(res.status, 413);
    } finally {
      await defaults.close();
    }
  });

  test('a pagination n that is not a number is PAGINATION_NUMBER_INVALID', async () => {
    const res = await fetch(url('/v2/_catalog?n=abc'));
    assert.deepEqual(await errorOf(res), { status: 400, code: 'PAGINATION_NUMBER_INVALID' });
  });
});
