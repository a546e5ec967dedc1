/**
 * `pier pull` refuses what does not match its digest. A proxy in front of
 * Pier and of distribution flips one byte in the middle of a chosen blob;
 * the pull exits 1 with one line naming the blob, and the destination is
 * exactly as before (absent, or an existing layout unchanged), with no
 * staging folder left behind. Also: a bad config, an unknown tag, usage
 * mistakes, and Ctrl-C in the middle of a download.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, runPier, startTarget, type Target } from './harness.js';
import { generateLayers, writeOciLayout, type WrittenImage } from './image-files.js';
import { startCorruptingProxy, type CorruptingProxy } from './pull-corrupting-proxy.js';

const TIMEOUT = 60_000;

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let image: WrittenImage;

async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) out.push(join(e.parentPath, e.name));
  return out.sort();
}

before(async () => {
  work = await isolatedEnv();
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 1 << 20 }, { size: 3 << 20 }, { size: 200_000, kind: 'text' }]);
  image = await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1', gzip: true });
});

after(async () => {
  await work?.cleanup();
});

for (const kind of ['pier', 'plain'] as const) {
  describe(`corrupt blobs from ${kind === 'pier' ? 'Pier' : 'distribution'}`, { timeout: 180_000 }, () => {
    let target: Target;
    let proxy: CorruptingProxy;
    let env: NodeJS.ProcessEnv;
    let ref: string;
    let out: string;

    before(async () => {
      target = await startTarget(kind);
      proxy = await startCorruptingProxy(target.host);
      env = { ...work.env, XDG_CACHE_HOME: join(work.dir, `cache-${kind}`) };
      out = join(work.dir, `out-${kind}`);
      await mkdir(out);
      const r = await runPier(['push', '--quiet', `oci:${join(work.dir, 'layout')}:v1`, `${target.host}/pull/corrupt:v1`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      ref = `${proxy.host}/pull/corrupt:v1`;
    });
    after(async () => {
      await proxy?.close();
      await target?.stop();
    });

    test('a flipped byte in a layer: exit 1, one line naming the layer, nothing at DEST', async () => {
      const layer = image.layerDigests[1]!;
      proxy.corrupt.add(layer);
      try {
        for (const dest of [`oci:${join(out, 'dir')}`, `oci-archive:${join(out, 'new', 'deeper', 'image.tar')}`, `docker-archive:${join(out, 'docker.tar')}`]) {
          const before = proxy.corrupted;
          const r = await runPier(['pull', ref, dest], { env, timeoutMs: TIMEOUT });
          assert.equal(r.code, 1, `${dest}: ${r.stderr}`);
          assert.ok(proxy.corrupted > before, 'the proxy corrupted the layer');
          const lines = r.stderr.trim().split('\n').filter((l) => !/: (Waiting|Downloading|Pull complete)$/.test(l));
          assert.equal(lines.length, 1, r.stderr);
          const named = dest.startsWith('docker-archive:')
            ? // gunzip may notice before the hash does; either way the layer is named.
              new RegExp(`^pier pull: layer ${layer} \\(2 of 3\\) from ${proxy.host}/pull/corrupt (does not match its digest \\(got sha256:[0-9a-f]{64}\\)|is not valid gzip \\(.+\\)); nothing was written to ${dest}:${proxy.host}/pull/corrupt:v1$`)
            : new RegExp(`^pier pull: layer ${layer} \\(2 of 3\\) from ${proxy.host}/pull/corrupt does not match its digest \\(got sha256:[0-9a-f]{64}\\); nothing was written to ${dest}:v1$`);
          assert.match(lines[0]!, named);
        }
        assert.deepEqual(await readdir(out), [], 'nothing at any DEST, no staging left, no folder made for it');
      } finally {
        proxy.corrupt.delete(layer);
      }
    });

    test('an existing layout is left exactly as it was', async () => {
      const dir = join(out, 'existing');
      const good = await runPier(['pull', '--quiet', `${target.host}/pull/corrupt:v1`, `oci:${dir}`], { env, timeoutMs: TIMEOUT });
      assert.equal(good.code, 0, good.stderr);
      const files = await listing(dir);
      const index = await readFile(join(dir, 'index.json'));
      // Another image, whose last layer is new to the layout and corrupted on the way.
      const layers = await generateLayers(join(work.dir, 'more'), [{ size: 500_000 }]);
      const other = await writeOciLayout(join(work.dir, 'other'), layers, { tag: 'v2', gzip: true });
      const push = await runPier(['push', '--quiet', `oci:${join(work.dir, 'other')}:v2`, `${target.host}/pull/corrupt:v2`], { env, timeoutMs: TIMEOUT });
      assert.equal(push.code, 0, push.stderr);
      proxy.corrupt.add(other.layerDigests[0]!);
      try {
        const r = await runPier(['pull', '--quiet', `${proxy.host}/pull/corrupt:v2`, `oci:${dir}`], { env, timeoutMs: TIMEOUT });
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`layer ${other.layerDigests[0]!} \\(1 of 1\\) from ${proxy.host}/pull/corrupt does not match its digest`));
      } finally {
        proxy.corrupt.delete(other.layerDigests[0]!);
      }
      assert.deepEqual(await listing(dir), files);
      assert.deepEqual(await readFile(join(dir, 'index.json')), index);
      assert.deepEqual((await readdir(out)).filter((n) => n.includes('.pier-')), []);
    });

    test('a corrupt config is refused before any layer is written', async () => {
      proxy.corrupt.add(image.configDigest);
      try {
        const dest = `oci:${join(out, 'config')}`;
        const r = await runPier(['pull', '--quiet', ref, dest], { env, timeoutMs: TIMEOUT });
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stderr.trim(), `pier pull: config ${image.configDigest} from ${proxy.host}/pull/corrupt does not match its digest; nothing was written to ${dest}:v1`);
        assert.ok(!existsSync(join(out, 'config')));
      } finally {
        proxy.corrupt.delete(image.configDigest);
      }
    });

    test('an unknown tag is one line and creates nothing', async () => {
      const r = await runPier(['pull', `${target.host}/pull/corrupt:nope`, `oci-archive:${join(out, 'nope.tar')}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^pier pull: fetching manifest nope: .*not found/);
      assert.ok(!existsSync(join(out, 'nope.tar')));
      assert.deepEqual((await readdir(out)).filter((n) => n.includes('.pier-')), []);
    });

    test('a connection reset in the middle of a layer continues from where it broke, and the pull succeeds', async () => {
      const layer = image.layerDigests[1]!;
      proxy.cut.add(layer);
      // docker-archive: the gunzip and the diff_id hash carry on across the two responses too.
      const dest = join(out, 'retried.tar');
      const seen = proxy.blobGets.length;
      const r = await runPier(['pull', '--format', 'json', ref, `docker-archive:${dest}`], { env, timeoutMs: TIMEOUT });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(proxy.cut.size, 0, 'the proxy cut the layer');
      const gets = proxy.blobGets.slice(seen).filter((g) => g.digest === layer);
      assert.equal(gets.length, 2);
      assert.equal(gets[0]!.range, undefined);
      assert.match(gets[1]!.range ?? '', /^bytes=[1-9]\d*-$/, 'the second request asks for the rest only');
      const retry = r.events.find((e) => e.type === 'retry');
      assert.equal(retry?.id, image.layerDigests[1]!.slice(7, 19), JSON.stringify(r.events.filter((e) => e.type !== 'progress')));
      assert.equal(r.events.find((e) => e.type === 'manifest')?.digest, image.manifestDigest);
      assert.ok(existsSync(dest));
      assert.deepEqual((await readdir(out)).filter((n) => n.includes('.pier-')), []);
    });

    test('Ctrl-C in the middle of a download: exit 130, nothing at DEST', async () => {
      proxy.stall.add(image.layerDigests[1]!);
      try {
        const dest = join(out, 'interrupted.tar');
        const r = await runPier(['pull', '--format', 'json', ref, `oci-archive:${dest}`], {
          env,
          timeoutMs: TIMEOUT,
          killSignal: 'SIGINT',
          killWhen: (e) => e.type === 'progress' && e.id === image.layerDigests[1]!.slice(7, 19),
        });
        assert.equal(r.code, 130, r.stderr);
        assert.equal(r.signal, null);
        assert.ok(!existsSync(dest));
        assert.deepEqual((await readdir(out)).filter((n) => n.includes('.pier-') || n.startsWith('interrupted')), []);
      } finally {
        proxy.stall.delete(image.layerDigests[1]!);
      }
    });
  });
}

describe('pull usage', () => {
  test('DEST must be a file transport; REF and DEST are both needed', async () => {
    const r = await runPier(['pull', '127.0.0.1:1/x:v1', './dir'], { timeoutMs: TIMEOUT });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'pier pull: DEST must be oci:DIR, oci-archive:FILE or docker-archive:FILE, not "./dir" (to copy between registries: pier copy)\n');
    const one = await runPier(['pull', '127.0.0.1:1/x:v1'], { timeoutMs: TIMEOUT });
    assert.equal(one.code, 2);
    assert.equal(one.stderr, "pier pull: needs REF DEST (see 'pier help pull')\n");
    const tag = await runPier(['pull', '127.0.0.1:1/x:v1', 'oci:/tmp/x:bad~tag'], { timeoutMs: TIMEOUT });
    assert.equal(tag.code, 2);
    assert.equal(tag.stderr, 'pier pull: oci:/tmp/x:bad~tag: "bad~tag" is not a valid tag\n');
    const busy = join(work.dir, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'notes.txt'), 'mine');
    const refused = await runPier(['pull', '127.0.0.1:1/x:v1', `oci:${busy}`], { timeoutMs: TIMEOUT });
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, `pier pull: oci:${busy}: the folder is not empty and not an OCI image layout\n`);
    assert.deepEqual(await readdir(work.dir).then((n) => n.filter((x) => x.includes('.pier-'))), []);
    const name = await runPier(['copy', '127.0.0.1:1/x:v1', 'docker-archive:/tmp/x.tar:Bad Name'], { timeoutMs: TIMEOUT });
    assert.equal(name.code, 2);
    assert.equal(name.stderr, 'pier copy: docker-archive:/tmp/x.tar:Bad Name: "Bad Name" is not an image name\n');
  });
});
