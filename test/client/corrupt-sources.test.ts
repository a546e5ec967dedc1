/**
 * Nothing unverified is published: corrupt sources pushed with the built
 * `pier` (a child process) to Pier (`pier serve`) and to distribution 2.8
 * exit non-zero with one line naming the file and the layer, exit by
 * themselves, and leave no tag behind.
 *
 * - a docker save tarball with 1,000 bytes overwritten inside one layer;
 * - an OCI layout with a layer blob changed;
 * - an oci-archive with a layer blob changed;
 * - a docker save tarball whose config lists a diff_id its layer does not have.
 */
import assert from 'node:assert/strict';
import { open, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { indexTar } from '../../src/client/tar-index.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { spawnTestRegistry, type SpawnedRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { startHttpProxy } from './http-proxy.js';
import { isolatedEnv, registryDigest, runPier } from './harness.js';
import { generateLayers, imageConfig, writeDockerArchive, writeOciLayout } from './image-files.js';

const BOUND_MS = 60_000;

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let pier: SpawnedRegistry;
let distribution: Distribution;

/** Overwrites 1,000 bytes in the middle of `length` bytes at `offset` of `file`. */
async function scribble(file: string, offset: number, length: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(Buffer.alloc(1000, 0x5a), 0, 1000, offset + Math.floor(length / 2) - 500);
  } finally {
    await fh.close();
  }
}

/** Overwrites bytes inside the tar member `member` of `file`. */
async function scribbleMember(file: string, member: string): Promise<void> {
  const fh = await open(file, 'r');
  let entry;
  try {
    entry = (await indexTar(file, fh)).get(member);
  } finally {
    await fh.close();
  }
  assert.ok(entry, `${member} in ${file}`);
  await scribble(file, entry.offset, entry.size);
}

interface Case {
  name: string;
  source: string;
  /** What the one error line must say. */
  message: RegExp;
  /** A blob that must not be in the repository afterwards (the one that failed verification). */
  blob?: string;
}
const cases: Case[] = [];

before(async () => {
  work = await isolatedEnv();
  const dir = (name: string) => join(work.dir, name);
  await mkdir(dir('pier-data'));
  [pier, distribution] = await Promise.all([spawnTestRegistry({ dataDir: dir('pier-data') }), startDistribution({})]);

  // docker save with a layer changed: the archive's second layer.
  const layers = await generateLayers(dir('l-archive'), [{ size: 100_000 }, { size: 300_000 }, { size: 50_000, kind: 'text' }]);
  await writeDockerArchive(dir('changed.tar'), layers, { repoTag: 'bad/changed:v1' });
  const layerPaths = JSON.parse(await readMember(dir('changed.tar'), 'manifest.json')) as [{ Layers: string[] }];
  const changed = layerPaths[0].Layers[1]!;
  await scribbleMember(dir('changed.tar'), changed);
  cases.push({ name: 'docker-archive, a layer changed', source: `docker-archive:${dir('changed.tar')}`, message: new RegExp(`^pier push: docker-archive:${dir('changed.tar')}: layer 2 \\(${changed}\\) does not match its diff_id sha256:[a-f0-9]{64} in the image config; nothing was published\\n$`) });

  // docker save whose config names another diff_id for layer 3.
  const config = JSON.parse(imageConfig(layers).toString('utf8')) as { rootfs: { diff_ids: string[] } };
  config.rootfs.diff_ids[2] = `sha256:${'0'.repeat(64)}`;
  await writeDockerArchive(dir('diffids.tar'), layers, { repoTag: 'bad/diffids:v1', config: Buffer.from(JSON.stringify(config)) });
  cases.push({ name: 'docker-archive, a config that does not match its diff_ids', source: `docker-archive:${dir('diffids.tar')}`, message: /^pier push: docker-archive:\S+diffids\.tar: layer 3 \(\S+\) does not match its diff_id sha256:0{64} in the image config; nothing was published\n$/ });

  // OCI layout with a layer blob changed.
  const ociLayers = await generateLayers(dir('l-oci'), [{ size: 200_000 }, { size: 150_000, kind: 'text' }]);
  const oci = await writeOciLayout(dir('oci'), ociLayers, { tag: 'v1', gzip: true });
  const blob = `blobs/sha256/${oci.layerDigests[0]!.slice(7)}`;
  const { size } = await (await import('node:fs/promises')).stat(join(dir('oci'), blob));
  await run('cp', ['-r', dir('oci'), dir('oci-for-archive')]);
  await scribble(join(dir('oci'), blob), 0, size);
  cases.push({ name: 'oci layout, a blob changed', source: `oci:${dir('oci')}:v1`, message: new RegExp(`^pier push: oci:${dir('oci')}:v1: layer 1 \\(${blob}\\) does not match its digest ${oci.layerDigests[0]}; nothing was published\\n$`), blob: oci.layerDigests[0]! });

  // oci-archive with a layer blob changed.
  await run('tar', ['-C', dir('oci-for-archive'), '-cf', dir('oci.tar'), '.']);
  await scribbleMember(dir('oci.tar'), blob);
  cases.push({ name: 'oci-archive, a blob changed', source: `oci-archive:${dir('oci.tar')}:v1`, message: new RegExp(`^pier push: oci-archive:${dir('oci.tar')}:v1: layer 1 \\(${blob}\\) does not match its digest ${oci.layerDigests[0]}; nothing was published\\n$`), blob: oci.layerDigests[0]! });
});

async function readMember(file: string, member: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const e = (await indexTar(file, fh)).get(member)!;
    const buf = Buffer.alloc(e.size);
    await fh.read(buf, 0, e.size, e.offset);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

after(async () => {
  await pier?.kill();
  await distribution?.stop();
  await work?.cleanup();
});

describe('corrupt sources are refused, naming the layer, and leave no tag', { concurrency: true, timeout: 300_000 }, () => {
  for (const target of ['pier', 'distribution'] as const) {
    test(`to ${target}`, async () => {
      const host = target === 'pier' ? pier.host : distribution.host;
      assert.equal(cases.length, 4);
      await Promise.all(
        cases.map(async (c, i) => {
          const repo = `bad/case-${i}`;
          // A fresh cache: nothing known about these layers, so every byte is read.
          const env = { ...work.env, XDG_CACHE_HOME: join(work.dir, `cache-${target}-${i}`) };
          const r = await runPier(['push', '--quiet', c.source, `${host}/${repo}:v1`], { env, timeoutMs: BOUND_MS });
          assert.equal(r.signal, null, `${c.name}: still running after ${BOUND_MS / 1000} s`);
          assert.equal(r.code, 1, `${c.name}: ${r.stdout}${r.stderr}`);
          assert.equal(r.stdout, '', `${c.name}: no digest printed`);
          assert.match(r.stderr, c.message, c.name);
          assert.equal(await registryDigest(host, repo, 'v1'), null, `${c.name}: no tag`);
          const tags = await fetch(`http://${host}/v2/${repo}/tags/list`);
          const body = tags.status === 200 ? ((await tags.json()) as { tags?: string[] | null }) : {};
          assert.deepEqual(body.tags ?? [], [], `${c.name}: the repository has no tags`);
          if (c.blob) assert.equal((await fetch(`http://${host}/v2/${repo}/blobs/${c.blob}`, { method: 'HEAD' })).status, 404, `${c.name}: the upload was not committed`);
        }),
      );
    });
  }
});

test("a registry that reports another digest for the pushed manifest fails the push", { timeout: 120_000 }, async () => {
  const wrong = `sha256:${'0'.repeat(64)}`;
  const proxy = await startHttpProxy(pier.host, {
    maxBody: 1 << 30,
    rewrite: (req, headers) => (req.method === 'PUT' && req.path.includes('/manifests/') ? { ...headers, 'docker-content-digest': wrong } : headers),
  });
  try {
    const r = await runPier(['push', '--quiet', `oci:${join(work.dir, 'oci-for-archive')}:v1`, `${proxy.host}/lying/app:v1`], { env: { ...work.env, XDG_CACHE_HOME: join(work.dir, 'cache-lying') }, timeoutMs: BOUND_MS });
    assert.equal(r.signal, null);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^pier push: pushing manifest v1: 127\\.0\\.0\\.1:\\d+/lying/app: the registry reports digest ${wrong}, the bytes have sha256:[a-f0-9]{64}\\n$`));
  } finally {
    await proxy.close();
  }
});
