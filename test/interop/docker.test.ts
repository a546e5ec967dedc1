/**
 * A real Docker Engine (Debian's dockerd 20.10, private data-root and
 * socket) against a private Pier with access control: `docker login`,
 * `push`, `pull`, `manifest push`; and `pier push` reading images from that
 * dockerd (`docker-daemon:NAME` and a bare NAME), re-pushing without
 * exporting the image again (counted through a proxy on the daemon socket).
 * Every client is a child process with a timeout.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, registryDigest, runPier, skopeoPullAndVerify } from '../client/harness.js';
import { generateLayers, writeDockerArchive } from '../client/image-files.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startPrivatePier, type PrivatePier } from '../helpers/private-pier.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { startSocketProxy, type SocketProxy } from '../helpers/socket-proxy.js';

const T = { timeout: 180_000 };

let dockerd: Dockerd | undefined;
let pier: PrivatePier | undefined;
let work: Awaited<ReturnType<typeof isolatedEnv>> | undefined;
let dir: string;
let imageId: string;
const LOCAL = 'local/app:v1';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pier-docker-test-'));
  work = await isolatedEnv();
  // Both are waited for and kept, so `after` stops the one that started when the other fails.
  const started = await Promise.allSettled([startDockerd().then((x) => (dockerd = x)), startPrivatePier().then((x) => (pier = x))]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const layers = await generateLayers(join(dir, 'layers'), [{ size: 2 << 20 }, { size: 300_000, kind: 'text' }]);
  const archive = join(dir, 'app.tar');
  imageId = (await writeDockerArchive(archive, layers, { repoTag: LOCAL })).configDigest;
  await d().docker(['load', '-i', archive]);
});

after(async () => {
  await dockerd?.stop();
  await pier?.stop();
  await work?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

function d(): Dockerd {
  assert.ok(dockerd);
  return dockerd;
}
function p(): PrivatePier {
  assert.ok(pier);
  return pier;
}

async function login(account: { user: string; password: string }): Promise<void> {
  await d().docker(['login', p().host, '-u', account.user, '--password-stdin'], { input: `${account.password}\n` });
}

describe('docker (Engine 20.10) against a private Pier', T, () => {
  test('docker login, push, re-push, pull as a pull-only user; the push right is refused to it', async () => {
    const ref = `${p().host}/app/web:1.0`;
    await login(p().admin);
    await d().docker(['tag', LOCAL, ref]);
    const pushed = await d().docker(['push', ref]);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);
    assert.equal(await registryDigest(p().host, 'app/web', '1.0', p().adminBasic), digest);
    const again = await d().docker(['push', ref]);
    assert.match(again.stdout, /Layer already exists/);

    await d().docker(['rmi', ref]);
    await d().docker(['logout', p().host]);
    await login(p().puller);
    const pulled = await d().docker(['pull', ref]);
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`));
    const id = (await d().docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
    assert.equal(id, imageId, 'docker pulled the very image it pushed');

    await d().docker(['tag', LOCAL, `${p().host}/app/web:pushed-by-kube`]);
    const refused = await d().dockerResult(['push', `${p().host}/app/web:pushed-by-kube`]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied|unauthorized/i);
    assert.equal(await registryDigest(p().host, 'app/web', 'pushed-by-kube', p().adminBasic), null);
    await d().docker(['logout', p().host]);
  });

  test('docker manifest create + push: a list of two images, stored as an index', async () => {
    await login(p().admin);
    const second = join(dir, 'second.tar');
    const layers = await generateLayers(join(dir, 'layers2'), [{ size: 100_000 }]);
    await writeDockerArchive(second, layers, { repoTag: 'local/other:v1' });
    await d().docker(['load', '-i', second]);
    const a = `${p().host}/app/multi:amd64`;
    const b = `${p().host}/app/multi:arm64`;
    await d().docker(['tag', LOCAL, a]);
    await d().docker(['tag', 'local/other:v1', b]);
    await d().docker(['push', a]);
    await d().docker(['push', b]);
    const list = `${p().host}/app/multi:1.0`;
    await d().docker(['manifest', 'create', '--insecure', list, a, b]);
    await d().docker(['manifest', 'annotate', '--arch', 'arm64', list, b]);
    const out = await d().docker(['manifest', 'push', '--insecure', list]);
    const digest = out.stdout.trim().split('\n').pop();
    assert.match(digest ?? '', /^sha256:[a-f0-9]{64}$/);
    assert.equal(await registryDigest(p().host, 'app/multi', '1.0', p().adminBasic), digest);
    const res = await fetch(`http://${p().host}/v2/app/multi/manifests/1.0`, {
      headers: { authorization: p().adminBasic, accept: 'application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.list.v2+json');
    const index = (await res.json()) as { manifests: { platform: { architecture: string } }[] };
    assert.deepEqual(index.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
    await d().docker(['manifest', 'rm', list]);
  });

  test('pier push docker-daemon:NAME and a bare NAME from the dockerd; docker pulls back the same image ID', async () => {
    assert.ok(work);
    const env = { ...work.env, ...d().env };
    // pier reads the credentials docker login wrote (DOCKER_CONFIG).
    await login(p().admin);
    const r = await runPier(['push', '--format', 'json', `docker-daemon:${LOCAL}`, `${p().host}/app/pier:1.0`], { env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const digest = String(r.events.find((e) => e.type === 'manifest')?.digest);
    assert.equal(await registryDigest(p().host, 'app/pier', '1.0', p().adminBasic), digest);

    await d().docker(['tag', LOCAL, `${p().host}/app/bare:1.0`]);
    const bare = await runPier(['push', '--format', 'json', `${p().host}/app/bare:1.0`], { env, timeoutMs: 60_000 });
    assert.equal(bare.code, 0, bare.stderr);
    assert.equal(bare.events.find((e) => e.type === 'manifest')?.digest, digest, 'the same image gives the same manifest');
    assert.equal(await registryDigest(p().host, 'app/bare', '1.0', p().adminBasic), digest);

    await d().docker(['rmi', `${p().host}/app/pier:1.0`]).catch(() => undefined);
    await d().docker(['pull', `${p().host}/app/pier:1.0`]);
    const id = (await d().docker(['image', 'inspect', '--format', '{{.Id}}', `${p().host}/app/pier:1.0`])).stdout.trim();
    assert.equal(id, imageId);
    await skopeoPullAndVerify(`${p().host}/app/pier:1.0`, digest, `${p().admin.user}:${p().admin.password}`);
  });

  test('a re-push of a daemon image exports nothing when the registry has every blob; a new registry gets an export', async () => {
    assert.ok(work);
    // A fresh client cache: the first push must export.
    const cache = await tempDir('pier-docker-cache-');
    let proxy: SocketProxy | undefined;
    let other: SpawnedRegistry | undefined;
    const otherData = await tempDir('pier-docker-other-');
    try {
      proxy = await startSocketProxy(d().socket, cache);
      const env = { ...work.env, ...d().env, DOCKER_HOST: `unix://${proxy.path}`, XDG_CACHE_HOME: cache };
      const exports = () => proxy!.requests.filter((r) => /^GET \/(v[\d.]+\/)?images\/[^/]+\/get$/.test(r)).length;
      await login(p().admin);
      const dest = `${p().host}/app/repush:1.0`;

      const first = await runPier(['push', '--format', 'json', LOCAL, dest], { env, timeoutMs: 60_000 });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(exports(), 1, `first push exports once: ${proxy.requests.join(', ')}`);
      const digest = String(first.events.find((e) => e.type === 'manifest')?.digest);

      const again = await runPier(['push', '--format', 'json', LOCAL, dest], { env, timeoutMs: 60_000 });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(exports(), 1, `a re-push exports nothing: ${proxy.requests.join(', ')}`);
      assert.equal(again.events.find((e) => e.type === 'manifest')?.digest, digest);

      // Another repository of the same registry: blobs are mounted, still no export.
      const moved = await runPier(['push', '--format', 'json', LOCAL, `${p().host}/app/repush-2:1.0`], { env, timeoutMs: 60_000 });
      assert.equal(moved.code, 0, moved.stderr);
      assert.equal(exports(), 1, `a push to a second repository exports nothing: ${proxy.requests.join(', ')}`);
      assert.ok(moved.events.some((e) => e.status === 'mounted'), 'blobs were mounted');
      assert.equal(await registryDigest(p().host, 'app/repush-2', '1.0', p().adminBasic), digest);

      // A record that does not match the daemon's image ID is ignored: export, and the record is rewritten.
      const record = join(cache, 'pier', 'images', `${imageId.replace(':', '-')}.json`);
      await writeFile(record, JSON.stringify({ config: Buffer.from('{"rootfs":{"diff_ids":[]}}').toString('base64'), layerSizes: [] }));
      const stale = await runPier(['push', '--format', 'json', LOCAL, dest], { env, timeoutMs: 60_000 });
      assert.equal(stale.code, 0, stale.stderr);
      assert.equal(exports(), 2, `a stale record means an export: ${proxy.requests.join(', ')}`);
      assert.equal(stale.events.find((e) => e.type === 'manifest')?.digest, digest);

      // A registry without the blobs: the layers must be read, so the image is exported.
      other = await spawnTestRegistry({ dataDir: otherData });
      const fresh = await runPier(['push', '--format', 'json', LOCAL, `${other.host}/app/repush:1.0`], { env, timeoutMs: 60_000 });
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.equal(exports(), 3, `a registry lacking the layers gets an export: ${proxy.requests.join(', ')}`);
      assert.equal(fresh.events.find((e) => e.type === 'manifest')?.digest, digest, 'the compressed forms are reused');
      assert.equal(await registryDigest(other.host, 'app/repush', '1.0'), digest);
    } finally {
      await proxy?.close();
      await other?.kill();
      await rm(otherData, { recursive: true, force: true });
      await rm(cache, { recursive: true, force: true });
    }
  });

  test('wrong password: docker login fails, nothing is stored', async () => {
    const r = await d().dockerResult(['login', p().host, '-u', p().admin.user, '--password-stdin'], { input: 'not-the-password\n' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unauthorized/i);
  });
});
