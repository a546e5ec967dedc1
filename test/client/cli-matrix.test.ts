/**
 * `pier push` as a CI job runs it: the built bin/pier.js as a child process,
 * for every source kind (oci, oci-archive, docker-archive with random and
 * with text layers, docker-daemon through podman's Docker API) × {Pier
 * (`pier serve`), distribution 2.8} × {fresh, re-push, second repository}.
 * Every run must exit 0 by itself within a bound (a run still alive then is
 * killed and fails the test: the "prints the digest and never exits" bug),
 * and the tag must resolve to the digest printed. On a fresh push every
 * blob's progress line, the config's included, ends in `Pushed`.
 *
 * The ten (source, registry) sequences run concurrently: each has its own
 * image content, repository names and cache.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { spawnTestRegistry, type SpawnedRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { isolatedEnv, registryDigest, runPier } from './harness.js';
import { generateLayers, writeDockerArchive, writeOciLayout, type LayerSpec } from './image-files.js';
import { startPodmanDaemon, type PodmanDaemon } from './podman-daemon.js';

/** Longest a push of these small images may take before it counts as hung (a normal run takes well under 2 s). */
const BOUND_MS = 60_000;

const SOURCES = ['oci', 'oci-archive', 'docker-archive-random', 'docker-archive-text', 'docker-daemon'] as const;
type SourceKind = (typeof SOURCES)[number];

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let pier: SpawnedRegistry;
let distribution: Distribution;
let daemon: PodmanDaemon;
/** SOURCE argument and blob count (layers + config) per kind. */
const sources = new Map<SourceKind, { spec: string; blobs: number }>();

const random = (size: number): LayerSpec => ({ size, kind: 'random' });
const text = (size: number): LayerSpec => ({ size, kind: 'text' });

before(async () => {
  work = await isolatedEnv();
  const data = join(work.dir, 'pier-data');
  await mkdir(data);
  const dir = (name: string) => join(work.dir, name);
  const [p, d, podman] = await Promise.all([
    spawnTestRegistry({ dataDir: data }),
    startDistribution({}),
    startPodmanDaemon(dir('podman')),
    (async () => {
      // OCI layout (gzipped layers) and the same kind of image as an oci-archive (a tar of a layout).
      const oci = await generateLayers(dir('l-oci'), [random(200_000), text(120_000)]);
      await writeOciLayout(dir('oci'), oci, { tag: 'v1', gzip: true });
      sources.set('oci', { spec: `oci:${dir('oci')}:v1`, blobs: 3 });
      const ociArchive = await generateLayers(dir('l-oci-archive'), [text(150_000), random(90_000)]);
      await writeOciLayout(dir('oci-archive-layout'), ociArchive, { tag: 'v1', gzip: true });
      await run('tar', ['-C', dir('oci-archive-layout'), '-cf', dir('oci-archive.tar'), '.']);
      sources.set('oci-archive', { spec: `oci-archive:${dir('oci-archive.tar')}:v1`, blobs: 3 });
      // docker save tarballs: small random layers (the reported hang), and text layers (gzip on worker threads).
      const rnd = await generateLayers(dir('l-random'), [random(300_000), random(40_000), random(8_000), random(120_000)]);
      await writeDockerArchive(dir('random.tar'), rnd, { repoTag: 'matrix/random:v1' });
      sources.set('docker-archive-random', { spec: `docker-archive:${dir('random.tar')}`, blobs: 5 });
      const txt = await generateLayers(dir('l-text'), [text(600_000), text(50_000), text(2_000)]);
      await writeDockerArchive(dir('text.tar'), txt, { repoTag: 'matrix/text:v1' });
      sources.set('docker-archive-text', { spec: `docker-archive:${dir('text.tar')}`, blobs: 4 });
      const dmn = await generateLayers(dir('l-daemon'), [random(250_000), text(100_000)]);
      await writeDockerArchive(dir('daemon.tar'), dmn, { repoTag: 'localhost/matrix/daemon:v1' });
    })(),
  ]);
  pier = p;
  distribution = d;
  daemon = podman;
  await daemon.load(dir('daemon.tar'), 'localhost/matrix/daemon:v1');
  sources.set('docker-daemon', { spec: 'docker-daemon:localhost/matrix/daemon:v1', blobs: 3 });
});

after(async () => {
  await daemon?.stop();
  await pier?.kill();
  await distribution?.stop();
  await work?.cleanup();
});

interface Pushed {
  digest: string;
  /** Each blob's last progress status. */
  last: Map<string, string>;
}

/** Runs one push with plain progress; asserts it exited 0 by itself within the bound. */
async function push(source: string, dest: string, env: NodeJS.ProcessEnv, what: string): Promise<Pushed> {
  const r = await runPier(['push', '--format', 'plain', source, dest], { env, timeoutMs: BOUND_MS });
  assert.equal(r.signal, null, `${what}: still running after ${BOUND_MS / 1000} s, killed; it printed:\n${r.stderr}`);
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  const m = /^v1: digest: (sha256:[a-f0-9]{64}) size: \d+$/m.exec(r.stderr);
  assert.ok(m, `${what}: the digest line:\n${r.stderr}`);
  const last = new Map<string, string>();
  for (const line of r.stderr.split('\n')) {
    const b = /^([a-f0-9]{12}): (.+)$/.exec(line);
    if (b) last.set(b[1]!, b[2]!);
  }
  return { digest: m[1]!, last };
}

describe('pier push matrix: every source × {Pier, distribution} × {fresh, re-push, second repository}', { concurrency: true, timeout: 600_000 }, () => {
  for (const kind of SOURCES) {
    for (const target of ['pier', 'distribution'] as const) {
      test(`${kind} → ${target}`, async () => {
        const host = target === 'pier' ? pier.host : distribution.host;
        const { spec, blobs } = sources.get(kind)!;
        const cache = join(work.dir, `cache-${kind}-${target}`);
        const env = { ...work.env, XDG_CACHE_HOME: cache, DOCKER_HOST: daemon.dockerHost };
        const repo = `matrix/${kind}`;

        const fresh = await push(spec, `${host}/${repo}:v1`, env, 'fresh');
        assert.equal(await registryDigest(host, repo, 'v1'), fresh.digest, 'the tag resolves to the digest printed');
        assert.equal(fresh.last.size, blobs, `a progress line per blob, the config included: ${[...fresh.last.keys()].join(' ')}`);
        for (const [id, status] of fresh.last) assert.equal(status, 'Pushed', `${id} ends in Pushed`);

        const again = await push(spec, `${host}/${repo}:v1`, env, 're-push');
        assert.equal(again.digest, fresh.digest);
        assert.equal(await registryDigest(host, repo, 'v1'), fresh.digest);
        for (const [id, status] of again.last) assert.equal(status, 'Layer already exists', `re-push: ${id}`);

        const second = await push(spec, `${host}/${repo}-2:v1`, env, 'second repository');
        assert.equal(second.digest, fresh.digest);
        assert.equal(await registryDigest(host, `${repo}-2`, 'v1'), fresh.digest);
        for (const [id, status] of second.last) assert.match(status, /^(Layer already exists|Mounted from matrix\/|Pushed$)/, `second repository: ${id}`);
      });
    }
  }
});
