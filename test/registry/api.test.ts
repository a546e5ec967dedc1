/** The /v2 API against a real server on an ephemeral port, endpoint by endpoint. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { MediaTypes } from '../../src/oci/media-types.js';
import { blob, descriptorOf, makeImage, makeIndex, pushImage, sha256 } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const url = (p: string) => `${reg.url}${p}`;

before(async () => {
  // No automatic SBOMs: the referrers tests here list exactly what they pushed (the default SBOM referrer is tested in test/supply/).
  reg = await startTestRegistry({ scanning: { sbom: false } });
});
after(async () => {
  await reg.close();
});

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

async function upload(repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const res = await fetch(url(`/v2/${repo}/blobs/uploads/?digest=${digest}`), { method: 'POST', body: data });
  assert.equal(res.status, 201);
  return digest;
}

describe('base', () => {
  test('GET /v2/ answers 200 with the API version header', async () => {
    const res = await fetch(url('/v2/'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });
  test('unknown endpoints are 404 with a JSON error', async () => {
    const res = await fetch(url('/v2/foo/nothing/here'));
    assert.equal(res.status, 404);
    assert.ok(await errorCode(res));
  });
});

describe('blob uploads', () => {
  test('monolithic POST ?digest= stores and serves the blob', async () => {
    const data = randomBytes(5000);
    const digest = sha256(data);
    const res = await fetch(url(`/v2/up/mono/blobs/uploads/?digest=${digest}`), { method: 'POST', body: data });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/up/mono/blobs/${digest}`);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const get = await fetch(url(`/v2/up/mono/blobs/${digest}`));
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
    assert.equal(get.headers.get('docker-content-digest'), digest);
  });

  test('POST then PUT with the body', async () => {
    const data = randomBytes(3000);
    const start = await fetch(url('/v2/up/two-step/blobs/uploads/'), { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    assert.match(location, /^\/v2\/up\/two-step\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal(start.headers.get('range'), '0-0');
    assert.ok(start.headers.get('docker-upload-uuid'));
    const put = await fetch(url(`${location}?digest=${sha256(data)}`), { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201);
    const head = await fetch(url(`/v2/up/two-step/blobs/${sha256(data)}`), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '3000');
  });

  test('chunked PATCH with Content-Range, status, and out-of-order chunks', async () => {
    const data = randomBytes(10_000);
    const start = await fetch(url('/v2/up/chunked/blobs/uploads/'), { method: 'POST' });
    const location = start.headers.get('location')!;
    const first = await fetch(url(location), { method: 'PATCH', body: data.subarray(0, 4000), headers: { 'content-range': '0-3999', 'content-type': 'application/octet-stream' } });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-3999');
    // A repeated chunk is out of order: 416, and the upload keeps its state.
    const again = await fetch(url(location), { method: 'PATCH', body: data.subarray(0, 4000), headers: { 'content-range': '0-3999', 'content-type': 'application/octet-stream' } });
    assert.equal(again.status, 416);
    const skip = await fetch(url(location), { method: 'PATCH', body: data.subarray(5000, 6000), headers: { 'content-range': '5000-5999', 'content-type': 'application/octet-stream' } });
    assert.equal(skip.status, 416);
    const status = await fetch(url(location));
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-3999');
    assert.equal(status.headers.get('location'), location);
    // A streamed chunk without Content-Range appends.
    const second = await fetch(url(location), { method: 'PATCH', body: data.subarray(4000, 9000), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(second.status, 202);
    assert.equal(second.headers.get('range'), '0-8999');
    const put = await fetch(url(`${location}?digest=${sha256(data)}`), { method: 'PUT', body: data.subarray(9000), headers: { 'content-range': '9000-9999', 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201);
    const get = await fetch(url(`/v2/up/chunked/blobs/${sha256(data)}`));
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
  });

  test('cancel removes the session', async () => {
    const start = await fetch(url('/v2/up/cancel/blobs/uploads/'), { method: 'POST' });
    const location = start.headers.get('location')!;
    assert.equal((await fetch(url(location), { method: 'DELETE' })).status, 204);
    const status = await fetch(url(location));
    assert.equal(status.status, 404);
    assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('an upload session belongs to its repository', async () => {
    const start = await fetch(url('/v2/up/owner/blobs/uploads/'), { method: 'POST' });
    const id = start.headers.get('docker-upload-uuid')!;
    const other = await fetch(url(`/v2/up/intruder/blobs/uploads/${id}`));
    assert.equal(other.status, 404);
    assert.equal(await errorCode(other), 'BLOB_UPLOAD_UNKNOWN');
  });

  test('sha512 digests are accepted', async () => {
    const data = randomBytes(2048);
    const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    const res = await fetch(url(`/v2/up/sha512/blobs/uploads/?digest=${digest}`), { method: 'POST', body: data });
    assert.equal(res.status, 201);
    const get = await fetch(url(`/v2/up/sha512/blobs/${digest}`));
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
  });
});

describe('blob reads', () => {
  test('Range requests give 206, unsatisfiable ones 416', async () => {
    const data = randomBytes(1000);
    const digest = await upload('read/range', data);
    const part = await fetch(url(`/v2/read/range/blobs/${digest}`), { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 10-19/1000');
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(10, 20));
    const tail = await fetch(url(`/v2/read/range/blobs/${digest}`), { headers: { range: 'bytes=-5' } });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), data.subarray(995));
    const open = await fetch(url(`/v2/read/range/blobs/${digest}`), { headers: { range: 'bytes=990-' } });
    assert.equal(open.headers.get('content-range'), 'bytes 990-999/1000');
    const bad = await fetch(url(`/v2/read/range/blobs/${digest}`), { headers: { range: 'bytes=2000-3000' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), 'bytes */1000');
  });

  test('a blob is visible only in repositories that link it', async () => {
    const digest = await upload('vis/a', randomBytes(100));
    const other = await fetch(url(`/v2/vis/b/blobs/${digest}`));
    assert.equal(other.status, 404);
    assert.equal(await errorCode(other), 'BLOB_UNKNOWN');
    assert.equal((await fetch(url(`/v2/vis/b/blobs/${digest}`), { method: 'HEAD' })).status, 404);
  });

  test('blob DELETE unlinks from the repository only', async () => {
    const data = randomBytes(100);
    const digest = await upload('del/a', data);
    await upload('del/b', data);
    assert.equal((await fetch(url(`/v2/del/a/blobs/${digest}`), { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(url(`/v2/del/a/blobs/${digest}`))).status, 404);
    assert.equal((await fetch(url(`/v2/del/b/blobs/${digest}`))).status, 200);
    assert.equal((await fetch(url(`/v2/del/a/blobs/${digest}`), { method: 'DELETE' })).status, 404);
  });
});

describe('cross-repository mount', () => {
  test('mount with from links the blob: 201', async () => {
    const digest = await upload('mount/src', randomBytes(300));
    const res = await fetch(url(`/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`), { method: 'POST' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/mount/dst/blobs/${digest}`);
    assert.equal((await fetch(url(`/v2/mount/dst/blobs/${digest}`))).status, 200);
  });
  test('mount of a blob the source lacks opens a session: 202', async () => {
    const digest = sha256(randomBytes(10));
    const res = await fetch(url(`/v2/mount/dst2/blobs/uploads/?mount=${digest}&from=mount/src`), { method: 'POST' });
    assert.equal(res.status, 202);
    assert.match(res.headers.get('location')!, /^\/v2\/mount\/dst2\/blobs\/uploads\//);
  });
  test('mount without from finds the blob when automatic mount is on', async () => {
    const digest = await upload('mount/auto-src', randomBytes(300));
    const res = await fetch(url(`/v2/mount/auto-dst/blobs/uploads/?mount=${digest}`), { method: 'POST' });
    assert.equal(res.status, 201);
  });
  test('mount without from opens a session when automatic mount is off', async () => {
    const off = await startTestRegistry({ uploads: { automaticMount: false } });
    try {
      const data = randomBytes(100);
      const digest = sha256(data);
      assert.equal((await fetch(`${off.url}/v2/a/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data })).status, 201);
      const res = await fetch(`${off.url}/v2/b/blobs/uploads/?mount=${digest}`, { method: 'POST' });
      assert.equal(res.status, 202);
    } finally {
      await off.close();
    }
  });
});

describe('manifests', () => {
  test('push by tag, pull by tag and digest, HEAD', async () => {
    const image = await makeImage({ layers: [100, 200] });
    await pushImage(reg.url, 'man/basic', 'v1', image);
    for (const ref of ['v1', image.digest]) {
      const res = await fetch(url(`/v2/man/basic/manifests/${ref}`), { headers: { accept: MediaTypes.ociManifest } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), MediaTypes.ociManifest);
      assert.equal(res.headers.get('docker-content-digest'), image.digest);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest);
    }
    const head = await fetch(url('/v2/man/basic/manifests/v1'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(image.manifest.length));
    assert.equal(head.headers.get('docker-content-digest'), image.digest);
  });

  test('Docker schema 2 manifests keep their media type', async () => {
    const image = await makeImage({ docker: true });
    await pushImage(reg.url, 'man/docker', 'latest', image);
    const res = await fetch(url('/v2/man/docker/manifests/latest'));
    assert.equal(res.headers.get('content-type'), MediaTypes.dockerManifest);
  });

  test('PUT by digest with several ?tag= parameters', async () => {
    const image = await makeImage();
    for (const b of [image.config, ...image.layers]) await upload('man/multitag', b.data);
    const res = await fetch(url(`/v2/man/multitag/manifests/${image.digest}?tag=a&tag=b&tag=c`), {
      method: 'PUT',
      body: image.manifest,
      headers: { 'content-type': image.mediaType },
    });
    assert.equal(res.status, 201);
    const tags = (await (await fetch(url('/v2/man/multitag/tags/list'))).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['a', 'b', 'c']);
  });

  test('a manifest referencing a blob the repository lacks is MANIFEST_BLOB_UNKNOWN', async () => {
    const image = await makeImage();
    await upload('man/missing', image.config.data);
    const res = await fetch(url('/v2/man/missing/manifests/v1'), { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await fetch(url('/v2/man/missing/manifests/v1'))).status, 404);
  });

  test('an index needs its children; with them it is served', async () => {
    const amd = await makeImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeImage({ platform: { os: 'linux', architecture: 'arm64' } });
    const index = makeIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const early = await fetch(url('/v2/man/index/manifests/multi'), { method: 'PUT', body: index.manifest, headers: { 'content-type': MediaTypes.ociIndex } });
    assert.equal(early.status, 400);
    assert.equal(await errorCode(early), 'MANIFEST_BLOB_UNKNOWN');
    await pushImage(reg.url, 'man/index', 'multi', index, [amd, arm]);
    const res = await fetch(url('/v2/man/index/manifests/multi'));
    assert.equal(res.headers.get('content-type'), MediaTypes.ociIndex);
    assert.equal(res.headers.get('docker-content-digest'), index.digest);
  });

  test('unknown tag is MANIFEST_UNKNOWN, unknown repository NAME_UNKNOWN', async () => {
    await pushImage(reg.url, 'man/known', 'v1', await makeImage());
    const tag = await fetch(url('/v2/man/known/manifests/nope'));
    assert.equal(tag.status, 404);
    assert.equal(await errorCode(tag), 'MANIFEST_UNKNOWN');
    const repo = await fetch(url('/v2/man/unknown-repo/manifests/v1'));
    assert.equal(repo.status, 404);
    assert.equal(await errorCode(repo), 'NAME_UNKNOWN');
  });

  test('DELETE by digest removes the manifest and its tags; DELETE by tag only the tag', async () => {
    const image = await makeImage();
    await pushImage(reg.url, 'man/del', 'one', image);
    await pushImage(reg.url, 'man/del', 'two', image);
    assert.equal((await fetch(url('/v2/man/del/manifests/one'), { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(url('/v2/man/del/manifests/one'))).status, 404);
    assert.equal((await fetch(url('/v2/man/del/manifests/two'))).status, 200);
    assert.equal((await fetch(url(`/v2/man/del/manifests/${image.digest}`), { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(url('/v2/man/del/manifests/two'))).status, 404);
    assert.equal((await fetch(url(`/v2/man/del/manifests/${image.digest}`))).status, 404);
    assert.equal((await fetch(url(`/v2/man/del/manifests/${image.digest}`), { method: 'DELETE' })).status, 404);
  });

  test('deletes can be disabled: 405 UNSUPPORTED', async () => {
    const noDeletes = await startTestRegistry({ deletes: false });
    try {
      const image = await makeImage();
      await pushImage(noDeletes.url, 'r', 'v1', image);
      const res = await fetch(`${noDeletes.url}/v2/r/manifests/v1`, { method: 'DELETE' });
      assert.equal(res.status, 405);
      assert.equal(await errorCode(res), 'UNSUPPORTED');
    } finally {
      await noDeletes.close();
    }
  });
});

describe('listings', () => {
  test('tags are listed in lexical order with n/last pagination and Link', async () => {
    const image = await makeImage();
    const names = ['b', 'a', 'c10', 'c2', 'Z', 'latest'];
    for (const t of names) await pushImage(reg.url, 'list/tags', t, image);
    const all = (await (await fetch(url('/v2/list/tags/tags/list'))).json()) as { name: string; tags: string[] };
    assert.equal(all.name, 'list/tags');
    assert.deepEqual(all.tags, [...names].sort());
    const seen: string[] = [];
    let next: string | undefined = '/v2/list/tags/tags/list?n=2';
    let pages = 0;
    while (next && pages < 10) {
      const res = await fetch(url(next));
      const body = (await res.json()) as { tags: string[] };
      seen.push(...body.tags);
      next = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
      pages++;
    }
    assert.deepEqual(seen, [...names].sort());
    assert.equal(pages, 3);
    const afterB = (await (await fetch(url('/v2/list/tags/tags/list?last=b'))).json()) as { tags: string[] };
    assert.deepEqual(afterB.tags, ['c10', 'c2', 'latest']);
    const unknown = await fetch(url('/v2/list/nothing/tags/list'));
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'NAME_UNKNOWN');
  });

  test('catalog lists repositories with manifests, paginated', async () => {
    const res = await fetch(url('/v2/_catalog?n=2'));
    assert.equal(res.status, 200);
    const body = (await res.json()) as { repositories: string[] };
    assert.equal(body.repositories.length, 2);
    assert.match(res.headers.get('link') ?? '', /rel="next"/);
    const all = (await (await fetch(url('/v2/_catalog'))).json()) as { repositories: string[] };
    assert.ok(all.repositories.includes('man/basic'));
    assert.ok(!all.repositories.includes('up/mono'), 'a repository with only blobs is not listed');
    assert.deepEqual(all.repositories, [...all.repositories].sort());
  });

  test('referrers list artifacts by subject, with artifactType filtering', async () => {
    const subject = await makeImage();
    await pushImage(reg.url, 'ref/app', 'v1', subject);
    const empty = blob(Buffer.from('{}'), MediaTypes.ociEmpty);
    await upload('ref/app', empty.data);
    const artifact = (artifactType: string, note: string) => {
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.ociManifest,
          artifactType,
          config: { mediaType: MediaTypes.ociEmpty, digest: empty.digest, size: empty.size },
          layers: [{ mediaType: MediaTypes.ociEmpty, digest: empty.digest, size: empty.size }],
          subject: descriptorOf(subject),
          annotations: { note },
        }),
      );
      return { manifest, digest: sha256(manifest) };
    };
    const sbom = artifact('application/vnd.example.sbom', 'sbom');
    const sig = artifact('application/vnd.example.signature', 'sig');
    for (const a of [sbom, sig]) {
      const res = await fetch(url(`/v2/ref/app/manifests/${a.digest}`), { method: 'PUT', body: a.manifest, headers: { 'content-type': MediaTypes.ociManifest } });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('oci-subject'), subject.digest);
    }
    const all = await fetch(url(`/v2/ref/app/referrers/${subject.digest}`));
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-type'), MediaTypes.ociIndex);
    const index = (await all.json()) as { manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [sbom.digest, sig.digest].sort());
    assert.equal(index.manifests.find((m) => m.digest === sbom.digest)?.annotations.note, 'sbom');
    const filtered = await fetch(url(`/v2/ref/app/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`));
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    const f = (await filtered.json()) as { manifests: { digest: string }[] };
    assert.deepEqual(f.manifests.map((m) => m.digest), [sbom.digest]);
    const none = (await (await fetch(url(`/v2/ref/app/referrers/${sha256('nothing')}`))).json()) as { manifests: unknown[] };
    assert.deepEqual(none.manifests, []);
  });
});

describe('operations', () => {
  test('/healthz and /metrics', async () => {
    assert.equal((await fetch(url('/healthz'))).status, 200);
    const metrics = await (await fetch(url('/metrics'))).text();
    assert.match(metrics, /pier_http_requests_total\{method="GET",route="manifest",status="200"\} \d+/);
    assert.match(metrics, /pier_blobs_committed_total \d+/);
  });
});
