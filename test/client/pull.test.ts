/**
 * `pier pull` and `pier copy` from Pier and from CNCF distribution 2.8 into
 * `oci:`, `oci-archive:` and `docker-archive:`, run as users run them (the
 * built CLI as a child process). What they write is read back by the real
 * tools: skopeo inspects and copies it (digests equal to the registry's),
 * dockerd 20.10 and podman 4.3 load the docker-archive (image ID = config
 * digest, layers = the config's diff_ids).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { podman, skopeo } from '../helpers/tools.js';
import { isolatedEnv, registryDigest, runPier, startTarget, type Target } from './harness.js';
import { generateLayers, readJson, writeDockerArchive, writeOciIndexLayout, writeOciLayout, type WrittenImage } from './image-files.js';

const TIMEOUT = 60_000;

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let dockerd: Dockerd;
let layout: WrittenImage;
let archive: { configDigest: string; diffIDs: string[] };
let multi: { indexDigest: string; children: WrittenImage[] };

interface LayoutIndex {
  manifests: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Every blob of an OCI layout folder hashes to its name. */
async function assertBlobsIntact(dir: string): Promise<string[]> {
  const names = await readdir(join(dir, 'blobs', 'sha256'));
  for (const name of names) assert.equal(await sha256File(join(dir, 'blobs', 'sha256', name)), name, `blob ${name} in ${dir}`);
  return names.map((n) => `sha256:${n}`);
}

/** No staging folder or temp file is left beside a destination. */
async function assertNoLeftovers(parent: string): Promise<void> {
  const left = (await readdir(parent)).filter((n) => n.includes('.pier-'));
  assert.deepEqual(left, [], `leftovers in ${parent}`);
}

before(async () => {
  work = await isolatedEnv();
  dockerd = await startDockerd();
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 2 << 20 }, { size: 400_000, kind: 'text' }, { size: 100_000 }]);
  layout = await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1', gzip: true });
  archive = await writeDockerArchive(join(work.dir, 'classic.tar'), layers, { repoTag: 'example/app:v1' });
  const small = await generateLayers(join(work.dir, 'small'), [{ size: 50_000 }, { size: 60_000 }, { size: 70_000 }]);
  multi = await writeOciIndexLayout(join(work.dir, 'multi'), [
    { layers: [small[0]!, small[1]!], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [small[0]!, small[2]!], platform: { os: 'linux', architecture: 'arm64' } },
  ], 'v1');
});

after(async () => {
  await dockerd?.stop();
  await work?.cleanup();
});

for (const kind of ['pier', 'plain'] as const) {
  describe(`pull from ${kind === 'pier' ? 'Pier' : 'distribution'}`, { timeout: 300_000 }, () => {
    let target: Target;
    let env: NodeJS.ProcessEnv;
    let out: string;
    /** The docker-archive source pushed: a Docker schema 2 manifest whose layers Pier gzipped. */
    let dockerDigest: string;

    before(async () => {
      target = await startTarget(kind);
      env = { ...work.env, XDG_CACHE_HOME: join(work.dir, `cache-${kind}`) };
      out = join(work.dir, `out-${kind}`);
      for (const [src, dest] of [
        [`oci:${join(work.dir, 'layout')}:v1`, 'pull/oci:v1'],
        [`oci:${join(work.dir, 'multi')}:v1`, 'pull/multi:v1'],
      ] as const) {
        const r = await runPier(['push', '--quiet', src, `${target.host}/${dest}`], { env, timeoutMs: TIMEOUT });
        assert.equal(r.code, 0, r.stderr);
      }
      const r = await runPier(['push', '--quiet', `docker-archive:${join(work.dir, 'classic.tar')}`, `${target.host}/pull/docker:v1`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      dockerDigest = r.stdout.trim();
    });
    after(async () => {
      await target?.stop();
    });

    test('oci: keeps every digest; skopeo inspects it and copies it back unchanged', async () => {
      const dir = join(out, 'layout');
      await mkdir(dir, { recursive: true }); // an empty folder is taken as new
      const r = await runPier(['pull', `${target.host}/pull/oci:v1`, `oci:${dir}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Pull complete/);
      assert.match(r.stderr, new RegExp(`Saved to oci:${dir}:v1`));
      const index = await readJson<LayoutIndex>(join(dir, 'index.json'));
      assert.equal(index.manifests.length, 1);
      assert.equal(index.manifests[0]!.digest, layout.manifestDigest);
      assert.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], 'v1', 'the source tag names it');
      const blobs = await assertBlobsIntact(dir);
      assert.deepEqual(blobs.sort(), [layout.manifestDigest, layout.configDigest, ...layout.layerDigests].sort());
      const inspected = JSON.parse((await skopeo(['inspect', `oci:${dir}:v1`])).stdout) as { Digest: string; Layers: string[] };
      assert.equal(inspected.Digest, layout.manifestDigest);
      assert.deepEqual(inspected.Layers, layout.layerDigests);
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${dir}:v1`, `docker://${target.host}/roundtrip/oci:v1`]);
      assert.equal(await registryDigest(target.host, 'roundtrip/oci', 'v1'), layout.manifestDigest);
      await assertNoLeftovers(out);
    });

    test('pier copy to oci-archive: keeps a Docker schema 2 manifest byte for byte; skopeo copies from it', async () => {
      const file = join(out, 'docker.oci.tar');
      const r = await runPier(['copy', '--format', 'json', `${target.host}/pull/docker:v1`, `oci-archive:${file}:app`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.events.find((e) => e.type === 'manifest')?.digest, dockerDigest);
      assert.equal(r.events.filter((e) => e.type === 'blob' && e.status === 'pulled').length, 3);
      assert.deepEqual(r.events.at(-1), { type: 'saved', destination: `oci-archive:${file}:app`, digest: dockerDigest });
      // skopeo 1.9 finds only OCI media types by tag (decision 0045); the archive's one image needs no tag.
      const inspected = JSON.parse((await skopeo(['inspect', `oci-archive:${file}`])).stdout) as { Digest: string };
      assert.equal(inspected.Digest, dockerDigest);
      const copied = join(out, 'from-archive');
      await skopeo(['copy', '--preserve-digests', `oci-archive:${file}`, `oci:${copied}:app`]);
      assert.equal((await readJson<LayoutIndex>(join(copied, 'index.json'))).manifests[0]!.digest, dockerDigest);
      await assertBlobsIntact(copied);
      await skopeo(['copy', '--dest-tls-verify=false', `oci-archive:${file}`, `docker://${target.host}/roundtrip/docker:v1`]);
      assert.equal(await registryDigest(target.host, 'roundtrip/docker', 'v1'), dockerDigest);
      await assertNoLeftovers(out);
    });

    test('docker-archive: docker load and podman load it; the image ID is the config digest, the layers its diff_ids', async () => {
      const file = join(out, 'docker.tar');
      const name = `pulled-${kind}/app:v1`;
      const r = await runPier(['pull', '--quiet', `${target.host}/pull/docker:v1`, `docker-archive:${file}:${name}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), dockerDigest);
      const raw = JSON.parse((await skopeo(['inspect', '--raw', `docker-archive:${file}`])).stdout) as { config: { digest: string }; layers: { digest: string }[] };
      assert.equal(raw.config.digest, archive.configDigest);
      assert.deepEqual(raw.layers.map((l) => l.digest), archive.diffIDs, 'layers are stored uncompressed, named by diff_id');
      const loaded = await dockerd.docker(['load', '-i', file]);
      assert.match(loaded.stdout, new RegExp(`Loaded image: ${name}`));
      const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', name])).stdout) as { Id: string; RootFS: { Layers: string[] } }[];
      assert.equal(inspect[0]!.Id, archive.configDigest);
      assert.deepEqual(inspect[0]!.RootFS.Layers, archive.diffIDs);
      const pod = join(work.dir, `podman-${kind}`);
      await podman(pod, ['load', '-i', file]);
      const pid = JSON.parse((await podman(pod, ['image', 'inspect', name])).stdout) as { Id: string; RootFS: { Layers: string[] } }[];
      assert.equal(`sha256:${pid[0]!.Id}`, archive.configDigest);
      assert.deepEqual(pid[0]!.RootFS.Layers, archive.diffIDs);
      // Without a name, the archive carries the source reference.
      const unnamed = join(out, 'unnamed.tar');
      const r2 = await runPier(['pull', '--quiet', `${target.host}/pull/oci:v1`, `docker-archive:${unnamed}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r2.code, 0, r2.stderr);
      const loaded2 = await dockerd.docker(['load', '-i', unnamed]);
      assert.match(loaded2.stdout, new RegExp(`Loaded image: ${target.host}/pull/oci:v1`));
      const inspect2 = JSON.parse((await dockerd.docker(['image', 'inspect', `${target.host}/pull/oci:v1`])).stdout) as { Id: string }[];
      assert.equal(inspect2[0]!.Id, layout.configDigest);
      await assertNoLeftovers(out);
    });

    test('an index: whole into oci:, one platform with --platform, the host platform into docker-archive:', async () => {
      const ref = `${target.host}/pull/multi:v1`;
      const dir = join(out, 'multi');
      const r = await runPier(['pull', ref, `oci:${dir}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await readJson<LayoutIndex>(join(dir, 'index.json'))).manifests[0]!.digest, multi.indexDigest);
      await assertBlobsIntact(dir);
      await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${dir}:v1`, `docker://${target.host}/roundtrip/multi:v1`]);
      assert.equal(await registryDigest(target.host, 'roundtrip/multi', 'v1'), multi.indexDigest);

      const arm = join(out, 'arm.tar');
      const r2 = await runPier(['pull', '--quiet', '--platform', 'linux/arm64', ref, `oci-archive:${arm}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(r2.stdout.trim(), multi.children[1]!.manifestDigest);
      const inspected = JSON.parse((await skopeo(['inspect', `oci-archive:${arm}:v1`])).stdout) as { Digest: string };
      assert.equal(inspected.Digest, multi.children[1]!.manifestDigest);

      const host = join(out, 'host.tar');
      const r3 = await runPier(['pull', '--quiet', ref, `docker-archive:${host}:multi:v1`], { env, timeoutMs: TIMEOUT });
      assert.equal(r3.code, 0, r3.stderr);
      assert.equal(r3.stdout.trim(), multi.children[0]!.manifestDigest, 'linux/amd64, this machine');

      const none = await runPier(['pull', '--platform', 'linux/s390x', ref, `oci:${join(out, 'none')}`], { env, timeoutMs: TIMEOUT });
      assert.equal(none.code, 1);
      assert.equal(none.stderr.trim(), `pier pull: ${ref}: no linux/s390x image in the index (has linux/amd64, linux/arm64)`);
      await assertNoLeftovers(out);
    });

    test('pulling into an existing layout adds the tag and fetches only the blobs it lacks', async () => {
      const dir = join(out, 'shared');
      const first = await runPier(['pull', '--quiet', `${target.host}/pull/oci:v1`, `oci:${dir}`], { env, timeoutMs: TIMEOUT });
      assert.equal(first.code, 0, first.stderr);
      const again = await runPier(['pull', '--format', 'json', `${target.host}/pull/oci:v1`, `oci:${dir}:again`], { env, timeoutMs: TIMEOUT });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.events.filter((e) => e.type === 'blob' && e.status === 'exists').length, 3);
      assert.equal(again.events.filter((e) => e.type === 'blob' && e.status === 'pulling').length, 0);
      const second = await runPier(['pull', '--quiet', `${target.host}/pull/docker:v1`, `oci:${dir}:docker`], { env, timeoutMs: TIMEOUT });
      assert.equal(second.code, 0, second.stderr);
      const index = await readJson<LayoutIndex>(join(dir, 'index.json'));
      assert.deepEqual(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]), [
        ['v1', layout.manifestDigest],
        ['again', layout.manifestDigest],
        ['docker', dockerDigest],
      ]);
      await assertBlobsIntact(dir);
      assert.equal((JSON.parse((await skopeo(['inspect', `oci:${dir}:v1`])).stdout) as { Digest: string }).Digest, layout.manifestDigest);
      // Pier reads back what it wrote, digest for digest.
      const back = await runPier(['push', '--quiet', `oci:${dir}:docker`, `${target.host}/roundtrip/shared:docker`], { env, timeoutMs: TIMEOUT });
      assert.equal(back.code, 0, back.stderr);
      assert.equal(back.stdout.trim(), dockerDigest);
      await assertNoLeftovers(out);
    });
  });
}

describe('pull with credentials (distribution, token auth)', { timeout: 120_000 }, () => {
  let target: Target;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    target = await startTarget('token');
    env = { ...work.env, DOCKER_CONFIG: join(work.dir, 'docker-token'), XDG_CACHE_HOME: join(work.dir, 'cache-token') };
  });
  after(async () => {
    await target?.stop();
  });

  test('a private repository: refused before login, pulled after it with the stored credentials', async () => {
    const ref = `${target.host}/private/app:v1`;
    const dest = join(work.dir, 'private');
    const denied = await runPier(['pull', ref, `oci:${dest}`], { env, timeoutMs: TIMEOUT });
    assert.equal(denied.code, 1);
    // No credentials stored: the registry wants some, so the line says how to give them.
    assert.equal(denied.stderr, `pier pull: fetching manifest v1: ${target.host}/private/app: authentication required; run 'pier login ${target.host}'\n`);
    assert.ok(!existsSync(dest));
    const login = await runPier(['login', target.host, '-u', target.user!, '--password-stdin'], { env, stdin: `${target.password!}\n`, timeoutMs: TIMEOUT });
    assert.equal(login.code, 0, login.stderr);
    const push = await runPier(['push', '--quiet', `oci:${join(work.dir, 'layout')}:v1`, ref], { env, timeoutMs: TIMEOUT });
    assert.equal(push.code, 0, push.stderr);
    const r = await runPier(['pull', '--quiet', ref, `oci:${dest}`], { env, timeoutMs: TIMEOUT });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), layout.manifestDigest);
    assert.equal((await readJson<LayoutIndex>(join(dest, 'index.json'))).manifests[0]!.digest, layout.manifestDigest);
    await assertBlobsIntact(dest);
  });
});
