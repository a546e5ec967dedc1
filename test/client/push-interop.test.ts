/**
 * `pier push` against Pier and CNCF distribution 2.8 (plain, htpasswd basic
 * auth, token auth with an issuer run by the test); every pushed image is
 * pulled back by skopeo and by containerd with every digest verified.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { PASSWORD, USER, isolatedEnv, registryDigest, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { generateLayers, writeDockerArchive, writeOciIndexLayout, writeOciLayout, type GeneratedLayer, type WrittenImage } from './image-files.js';

let ctr: Containerd;
let work: Awaited<ReturnType<typeof isolatedEnv>>;
let layers: GeneratedLayer[];
let layout: WrittenImage;

before(async () => {
  ctr = await startContainerd();
  work = await isolatedEnv();
  layers = await generateLayers(join(work.dir, 'layers'), [{ size: 2 << 20 }, { size: 3 << 20, kind: 'text' }, { size: 100_000 }]);
  layout = await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1', gzip: true });
  await writeDockerArchive(join(work.dir, 'classic.tar'), layers, { repoTag: 'example/app:v1' });
  await writeDockerArchive(join(work.dir, 'docker25.tar.gz'), layers, { repoTag: 'example/app:v1', format: 'oci', gzip: true });
});

after(async () => {
  await ctr?.stop();
  await work?.cleanup();
});

for (const kind of ['pier', 'plain', 'htpasswd', 'token'] as const) {
  describe(`push to ${kind === 'pier' ? 'Pier' : `distribution (${kind})`}`, { timeout: 240_000 }, () => {
    let target: Target;
    let env: NodeJS.ProcessEnv;
    const creds = () => (target.user ? `${target.user}:${target.password}` : undefined);

    before(async () => {
      target = await startTarget(kind);
      env = { ...work.env, DOCKER_CONFIG: join(work.dir, `docker-${kind}`), XDG_CACHE_HOME: join(work.dir, `cache-${kind}`) };
      if (target.user) {
        const login = await runPier(['login', target.host, '-u', USER, '--password-stdin'], { env, stdin: `${PASSWORD}\n` });
        assert.equal(login.code, 0, login.stderr);
        assert.match(login.stdout, /Login Succeeded/);
        assert.match(login.stderr, /stored unencrypted/);
        assert.ok(!login.stdout.includes(PASSWORD) && !login.stderr.includes(PASSWORD), 'never prints a secret');
      }
    });
    after(async () => {
      await target?.stop();
    });

    test('an OCI layout keeps every digest; skopeo and containerd pull it', async () => {
      const ref = `${target.host}/interop/oci:v1`;
      const r = await runPier(['push', '--format', 'json', `oci:${join(work.dir, 'layout')}:v1`, ref], { env });
      assert.equal(r.code, 0, r.stderr);
      const manifest = r.events.find((e) => e.type === 'manifest');
      assert.equal(manifest?.digest, layout.manifestDigest);
      const pulled = await skopeoPullAndVerify(ref, layout.manifestDigest, creds());
      for (const d of [...layout.layerDigests, layout.configDigest]) assert.ok(pulled.includes(d), `skopeo pulled ${d}`);
      await ctr.pull(ref, creds() ? { user: creds() } : {});
      assert.equal(await ctr.imageDigest(ref), layout.manifestDigest);
      const content = await ctr.contentDigests();
      for (const d of [layout.manifestDigest, layout.configDigest, ...layout.layerDigests]) assert.ok(content.includes(d), `containerd has ${d}`);
    });

    test('a docker-archive (classic) is compressed and pulled back intact', async () => {
      const ref = `${target.host}/interop/archive:v1`;
      const r = await runPier(['push', '--quiet', `docker-archive:${join(work.dir, 'classic.tar')}`, ref], { env });
      assert.equal(r.code, 0, r.stderr);
      const digest = r.stdout.trim();
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      await skopeoPullAndVerify(ref, digest, creds());
      await ctr.pull(ref, creds() ? { user: creds() } : {});
      assert.equal(await ctr.imageDigest(ref), digest);
    });

    test('a gzipped Docker 25+ archive pushes the same image as the classic one', async () => {
      const classic = await runPier(['push', '--quiet', `docker-archive:${join(work.dir, 'classic.tar')}`, `${target.host}/interop/d25:classic`], { env });
      const r = await runPier(['push', '--quiet', `docker-archive:${join(work.dir, 'docker25.tar.gz')}`, `${target.host}/interop/d25:v1`], { env });
      assert.equal(r.code, 0, r.stderr);
      // Same layers, same compression settings: the manifests differ only by config digest.
      assert.match(r.stdout.trim(), /^sha256:/);
      assert.equal(classic.code, 0);
      await skopeoPullAndVerify(`${target.host}/interop/d25:v1`, r.stdout.trim(), creds());
    });

    if (kind === 'plain' || kind === 'pier') {
      test('a multi-platform index is pushed whole, or one platform with --platform', async () => {
        const amd = await generateLayers(join(work.dir, `amd-${kind}`), [{ size: 300_000 }]);
        const arm = await generateLayers(join(work.dir, `arm-${kind}`), [{ size: 300_000 }]);
        const dir = join(work.dir, `index-${kind}`);
        const idx = await writeOciIndexLayout(dir, [
          { layers: amd, platform: { os: 'linux', architecture: 'amd64' } },
          { layers: arm, platform: { os: 'linux', architecture: 'arm64' } },
        ], 'multi');
        const ref = `${target.host}/interop/multi:v1`;
        const r = await runPier(['push', '--quiet', `oci:${dir}:multi`, ref], { env });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), idx.indexDigest);
        for (const c of idx.children) assert.equal(await registryDigest(target.host, 'interop/multi', c.manifestDigest), c.manifestDigest);
        await ctr.pull(ref, { allPlatforms: true });
        assert.equal(await ctr.imageDigest(ref), idx.indexDigest);
        const one = await runPier(['push', '--quiet', '--platform', 'linux/arm64', `oci:${dir}:multi`, `${target.host}/interop/arm:v1`], { env });
        assert.equal(one.code, 0, one.stderr);
        assert.equal(one.stdout.trim(), idx.children[1]!.manifestDigest);
      });
    }

    if (kind === 'token') {
      test('a missing right is one line naming registry, repository and right', async () => {
        const readerEnv = { ...env, DOCKER_CONFIG: join(work.dir, 'docker-reader') };
        const login = await runPier(['login', target.host, '-u', 'reader', '--password-stdin'], { env: readerEnv, stdin: 'reader-pw' });
        assert.equal(login.code, 0, login.stderr);
        const r = await runPier(['push', '--format', 'plain', `oci:${join(work.dir, 'layout')}:v1`, `${target.host}/interop/denied:v1`], { env: readerEnv });
        assert.equal(r.code, 1);
        const last = r.stderr.trim().split('\n').pop() ?? '';
        assert.match(last, new RegExp(`^pier push: .*${target.host.replace(/\./g, '\\.')}/interop/denied.*push`));
        assert.ok(!r.stderr.includes('    at '), 'no stack trace');
        const issued = target.distribution?.tokenIssuer?.requests.filter((q) => q.account === USER) ?? [];
        assert.ok(issued.some((q) => q.scopes.some((s) => s.includes('push'))), 'tokens were requested with push scope');
      });

      test('without credentials, the error says to log in', async () => {
        const anonEnv = { ...env, DOCKER_CONFIG: join(work.dir, 'docker-anon') };
        const r = await runPier(['push', `oci:${join(work.dir, 'layout')}:v1`, `${target.host}/interop/anon:v1`], { env: anonEnv });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /pier login/);
      });
    }

    if (kind !== 'pier') {
      test('logout removes the stored credentials', async () => {
        const e = { ...env, DOCKER_CONFIG: join(work.dir, `docker-logout-${kind}`) };
        if (target.user) {
          const login = await runPier(['login', target.host, '-u', USER, '--password-stdin'], { env: e, stdin: PASSWORD });
          assert.equal(login.code, 0, login.stderr);
        }
        const r = await runPier(['logout', target.host], { env: e });
        assert.equal(r.code, 0);
        assert.match(r.stdout, target.user ? /Removing login credentials/ : /Not logged in/);
      });
    }
  });
}
