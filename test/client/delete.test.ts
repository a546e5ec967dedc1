/**
 * `pier delete` means what it says (issue 10 item 3), run as the built CLI:
 * REPO:TAG removes that tag only (other tags and the index stay, and the
 * tag can be rolled back); REPO@DIGEST lists the tags and indexes using the
 * manifest and refuses without --force; Pier itself refuses to delete a
 * manifest an index lists, unless overridden. Against Pier and
 * distribution 2.8 (which cannot delete tags).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addPolicyRule, addUser } from '../../src/auth/accounts.js';
import { basic, pushAs, startAuthRegistry } from '../auth/helpers.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { makeImage, makeIndex, type TestImage } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { isolatedEnv, registryDigest, runPier } from './harness.js';

const T = { timeoutMs: 30_000 };

interface Fixture {
  a: TestImage;
  b: TestImage;
  index: TestImage;
}

/** Pushes over raw HTTP with POST then PUT (distribution 2.8 has no single-POST upload). */
async function pushImage(baseUrl: string, repo: string, reference: string, image: TestImage, children: TestImage[] = []): Promise<void> {
  for (const child of children) await pushImage(baseUrl, repo, child.digest, child);
  const blobs = image.layers.length === 0 && image.mediaType.includes('index') ? [] : [image.config, ...image.layers];
  for (const b of blobs) {
    const start = await fetch(`${baseUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    const location = new URL(start.headers.get('location') ?? '', baseUrl);
    location.searchParams.set('digest', b.digest);
    const put = await fetch(location, { method: 'PUT', body: b.data, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`blob push failed: ${put.status} ${await put.text()}`);
  }
  const res = await fetch(`${baseUrl}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
  if (res.status !== 201) throw new Error(`manifest push failed: ${res.status} ${await res.text()}`);
}

/** A tagged v1 and v2, an index `multi` of a and b (b untagged). */
async function seed(baseUrl: string, repo: string): Promise<Fixture> {
  const a = await makeImage({ layers: [512] });
  const b = await makeImage({ layers: [256], platform: { os: 'linux', architecture: 'arm64' } });
  const index = makeIndex([
    { image: a, platform: { os: 'linux', architecture: 'amd64' } },
    { image: b, platform: { os: 'linux', architecture: 'arm64' } },
  ]);
  await pushImage(baseUrl, repo, 'v1', a);
  await pushImage(baseUrl, repo, 'v2', a);
  await pushImage(baseUrl, repo, 'multi', index, [a, b]);
  return { a, b, index };
}

async function status(baseUrl: string, repo: string, ref: string, authorization?: string): Promise<number> {
  const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
  const res = await fetch(`${baseUrl}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept, ...(authorization ? { authorization } : {}) } });
  return res.status;
}

describe('pier delete on Pier', () => {
  let reg: TestRegistry;
  let work: Awaited<ReturnType<typeof isolatedEnv>>;
  before(async () => {
    reg = await startTestRegistry();
    work = await isolatedEnv();
  });
  after(async () => {
    await reg?.close();
    await work?.cleanup();
  });

  test('REPO:TAG removes that tag only; the other tag, the manifest and the index stay; rollback brings it back', async () => {
    const f = await seed(reg.url, 'del/tag');
    const r = await runPier(['delete', `${reg.host}/del/tag:v1`], { env: work.env, ...T });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Deleted tag ${reg.host}/del/tag:v1 (it pointed at ${f.a.digest}, which stays)\n`);
    assert.equal(await status(reg.url, 'del/tag', 'v1'), 404);
    assert.equal(await registryDigest(reg.host, 'del/tag', 'v2'), f.a.digest);
    assert.equal(await registryDigest(reg.host, 'del/tag', 'multi'), f.index.digest);
    assert.equal(await status(reg.url, 'del/tag', f.a.digest), 200);
    assert.equal(await status(reg.url, 'del/tag', f.b.digest), 200);

    const back = await runPier(['rollback', `${reg.host}/del/tag:v1`], { env: work.env, ...T });
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await registryDigest(reg.host, 'del/tag', 'v1'), f.a.digest);

    const missing = await runPier(['delete', `${reg.host}/del/tag:nope`], { env: work.env, ...T });
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.match(missing.stderr, /del\/tag:nope: no such tag/);
  });

  test('REPO@DIGEST of a tagged index child is refused, naming the tags and the index; --force deletes it', async () => {
    const f = await seed(reg.url, 'del/digest');
    const r = await runPier(['delete', `${reg.host}/del/digest@${f.a.digest}`], { env: work.env, ...T });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`is in use by tags v1, v2 and index ${f.index.digest} \\(tag multi\\); .*--force`));
    assert.equal(await status(reg.url, 'del/digest', f.a.digest), 200);
    assert.equal(await registryDigest(reg.host, 'del/digest', 'v1'), f.a.digest);

    const forced = await runPier(['delete', '--force', `${reg.host}/del/digest@${f.a.digest}`], { env: work.env, ...T });
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`^Deleted: ${f.a.digest}\nRemoved with it: tags v1, v2\nBroken: index ${f.index.digest}`));
    assert.equal(await status(reg.url, 'del/digest', f.a.digest), 404);
    assert.equal(await status(reg.url, 'del/digest', 'v1'), 404);
    assert.equal(await status(reg.url, 'del/digest', 'v2'), 404);
    assert.equal(await registryDigest(reg.host, 'del/digest', 'multi'), f.index.digest, 'the index itself stays');
  });

  test('an untagged child of an untagged index: the registry refuses, the CLI names the index; --force overrides', async () => {
    const c = await makeImage({ layers: [128] });
    const index = makeIndex([{ image: c, platform: { os: 'linux', architecture: 'amd64' } }]);
    await pushImage(reg.url, 'del/untagged', index.digest, index, [c]);
    const r = await runPier(['delete', `${reg.host}/del/untagged@${c.digest}`], { env: work.env, ...T });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`del/untagged@${c.digest} is listed by index ${index.digest}; add --force`));
    assert.equal(await status(reg.url, 'del/untagged', c.digest), 200);

    // The registry's own answer: 409 DENIED naming the index.
    const raw = await fetch(`${reg.url}/v2/del/untagged/manifests/${c.digest}`, { method: 'DELETE' });
    assert.equal(raw.status, 409);
    const body = (await raw.json()) as { errors: { code: string; message: string; detail: { indexes: string[] } }[] };
    assert.equal(body.errors[0]?.code, 'DENIED');
    assert.deepEqual(body.errors[0]?.detail.indexes, [index.digest]);
    assert.match(body.errors[0]?.message ?? '', new RegExp(`child of index ${index.digest}`));

    const forced = await runPier(['delete', '--force', `${reg.host}/del/untagged@${c.digest}`], { env: work.env, ...T });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await status(reg.url, 'del/untagged', c.digest), 404);
    assert.equal(await status(reg.url, 'del/untagged', index.digest), 200);
  });

  test('an unused manifest is deleted without --force', async () => {
    const lone = await makeImage({ layers: [64] });
    await pushImage(reg.url, 'del/lone', lone.digest, lone);
    const r = await runPier(['delete', `${reg.host}/del/lone@${lone.digest}`], { env: work.env, ...T });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Deleted: ${lone.digest}\n`);
    assert.equal(await status(reg.url, 'del/lone', lone.digest), 404);
  });
});

describe('manifests.deleteIndexChildren', () => {
  test('when true, the registry deletes an index child by digest', async () => {
    const reg = await startTestRegistry({ manifests: { deleteIndexChildren: true } });
    try {
      const c = await makeImage({ layers: [128] });
      const index = makeIndex([{ image: c, platform: { os: 'linux', architecture: 'amd64' } }]);
      await pushImage(reg.url, 'cfg/idx', index.digest, index, [c]);
      const raw = await fetch(`${reg.url}/v2/cfg/idx/manifests/${c.digest}`, { method: 'DELETE' });
      assert.equal(raw.status, 202);
      assert.equal(await status(reg.url, 'cfg/idx', c.digest), 404);
    } finally {
      await reg.close();
    }
  });
});

describe('override=index', () => {
  test('needs an admin: a user with the delete right is refused, an admin deletes', async () => {
    const reg = await startAuthRegistry(async (store) => {
      await addUser(store, 'root', 'root-password', { admin: true });
      await addUser(store, 'dev', 'dev-password');
      await addPolicyRule(store, 'user:dev', 'ov/*', ['pull', 'push', 'delete']);
    });
    try {
      const c = await makeImage({ layers: [128] });
      const index = makeIndex([{ image: c, platform: { os: 'linux', architecture: 'amd64' } }]);
      for (const [ref, image] of [[c.digest, c], [index.digest, index]] as const) {
        assert.equal(await pushAs(reg.url, 'ov/app', ref, image, basic('dev', 'dev-password')), 201);
      }
      const url = `${reg.url}/v2/ov/app/manifests/${c.digest}?override=index`;
      const dev = await fetch(url, { method: 'DELETE', headers: { authorization: basic('dev', 'dev-password') } });
      assert.equal(dev.status, 403);
      assert.match(((await dev.json()) as { errors: { message: string }[] }).errors[0]?.message ?? '', /needs an admin; dev is not one/);
      assert.equal(await status(reg.url, 'ov/app', c.digest, basic('dev', 'dev-password')), 200);
      const root = await fetch(url, { method: 'DELETE', headers: { authorization: basic('root', 'root-password') } });
      assert.equal(root.status, 202);
      assert.equal(await status(reg.url, 'ov/app', c.digest, basic('dev', 'dev-password')), 404);
    } finally {
      await reg.close();
    }
  });
});

describe('pier delete on distribution 2.8', () => {
  let dist: Distribution;
  let work: Awaited<ReturnType<typeof isolatedEnv>>;
  before(async () => {
    dist = await startDistribution();
    work = await isolatedEnv();
  });
  after(async () => {
    await dist?.stop();
    await work?.cleanup();
  });

  test('REPO:TAG says the registry cannot delete a tag and shows the by-digest command; nothing changes', async () => {
    const f = await seed(dist.url, 'd/tag');
    const r = await runPier(['delete', `${dist.host}/d/tag:v1`], { env: work.env, ...T });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${dist.host} cannot delete a tag, only a manifest; .*: pier delete ${dist.host}/d/tag@${f.a.digest}`));
    assert.equal(await registryDigest(dist.host, 'd/tag', 'v1'), f.a.digest);
    assert.equal(await registryDigest(dist.host, 'd/tag', 'v2'), f.a.digest);
    assert.equal(await registryDigest(dist.host, 'd/tag', 'multi'), f.index.digest);
  });

  test('REPO@DIGEST in use is refused, listing the tags and the index; --force sends the DELETE', async () => {
    const f = await seed(dist.url, 'd/digest');
    const r = await runPier(['delete', `${dist.host}/d/digest@${f.b.digest}`], { env: work.env, ...T });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`is in use by index ${f.index.digest} \\(tag multi\\)`));
    assert.equal(await status(dist.url, 'd/digest', f.b.digest), 200);

    const forced = await runPier(['delete', '--force', `${dist.host}/d/digest@${f.a.digest}`], { env: work.env, ...T });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await status(dist.url, 'd/digest', f.a.digest), 404);
    assert.equal(await registryDigest(dist.host, 'd/digest', 'multi'), f.index.digest);
  });
});
