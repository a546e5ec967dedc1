/**
 * Broken connections and killed commands. A TCP proxy the test controls sits
 * between `pier push` and the registry and counts the bytes sent through it.
 *
 * Pier keeps the bytes of a broken upload and reports them on GET, so the
 * push continues where the connection broke and nothing is sent twice.
 * distribution 2.8 cancels an upload whose request broke (its `_state` no
 * longer matches the stored size), so there only the broken blob starts
 * over; blobs it already had are never sent again.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, OciLayoutSource, type PushEvent } from '../../src/client/index.js';
import { ImageReference } from '../../src/oci/index.js';
import { isolatedEnv, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { generateLayers, writeOciLayout, type WrittenImage } from './image-files.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const MiB = 1 << 20;
let work: Awaited<ReturnType<typeof isolatedEnv>>;
let big: WrittenImage; // one 40 MiB layer
let two: WrittenImage; // 8 MiB then 40 MiB
const bigLayout = () => join(work.dir, 'big');
const twoLayout = () => join(work.dir, 'two');

before(async () => {
  work = await isolatedEnv();
  const l1 = await generateLayers(join(work.dir, 'l1'), [{ size: 40 * MiB }]);
  big = await writeOciLayout(bigLayout(), l1, { tag: 'v1' });
  const l2 = await generateLayers(join(work.dir, 'l2'), [{ size: 8 * MiB }, { size: 40 * MiB }]);
  two = await writeOciLayout(twoLayout(), l2, { tag: 'v1' });
});
after(async () => {
  await work?.cleanup();
});

async function proxyTo(target: Target): Promise<TcpProxy> {
  const [host, port] = target.host.split(':');
  return startTcpProxy({ host: host!, port: Number(port) });
}

/** The proxy's byte count once it has stopped moving. */
async function settled(proxy: TcpProxy): Promise<number> {
  let last = -1;
  while (proxy.bytesUp !== last) {
    last = proxy.bytesUp;
    await new Promise((r) => setTimeout(r, 300));
  }
  return last;
}

function blobSize(image: WrittenImage, i: number): number {
  return (JSON.parse(image.manifest.toString()) as { layers: { size: number }[] }).layers[i]!.size;
}

describe('a connection broken mid-blob', { timeout: 180_000 }, () => {
  test('Pier: the push continues from the offset the registry reports; nothing is re-sent', async () => {
    const target = await startTarget('pier');
    const proxy = await proxyTo(target);
    const events: PushEvent[] = [];
    const client = new Client({ cacheDir: join(work.dir, 'cache-a'), onEvent: (e) => events.push(e), retry: { attempts: 5, baseDelay: 50, maxDelay: 500 } });
    try {
      const size = blobSize(big, 0);
      proxy.breakAfter(16 * MiB);
      const r = await client.push(OciLayoutSource.dir(bigLayout(), 'v1'), ImageReference.parse(`${proxy.host}/resume/a:v1`));
      assert.equal(r.digest.toString(), big.manifestDigest);
      assert.equal(proxy.breaks, 1);
      const resume = events.find((e) => e.type === 'resume');
      assert.ok(resume && resume.type === 'resume' && resume.offset > 8 * MiB, `resumed at ${JSON.stringify(resume)}`);
      assert.equal(r.stats.resumed, 1, JSON.stringify(events.filter((e) => e.type !== "progress")));
      // Every byte of the 40 MiB layer crossed the proxy once, plus headers and the small config/manifest.
      assert.ok(proxy.bytesUp < size + 256 * 1024, `sent ${proxy.bytesUp} bytes for a ${size}-byte blob`);
      await skopeoPullAndVerify(`${target.host}/resume/a:v1`, big.manifestDigest);
    } finally {
      await client.close();
      await proxy.close();
      await target.stop();
    }
  });

  test('distribution: the broken blob starts over, blobs the registry has are not re-sent', async () => {
    const target = await startTarget('plain');
    const proxy = await proxyTo(target);
    const events: PushEvent[] = [];
    const client = new Client({ cacheDir: join(work.dir, 'cache-b'), onEvent: (e) => events.push(e), retry: { attempts: 5, baseDelay: 50, maxDelay: 500 } });
    try {
      const small = blobSize(two, 0);
      const large = blobSize(two, 1);
      const brokenAt = small + 16 * MiB;
      proxy.breakAfter(brokenAt);
      // One job: the 8 MiB layer is complete before the 40 MiB one starts.
      const r = await client.push(OciLayoutSource.dir(twoLayout(), 'v1'), ImageReference.parse(`${proxy.host}/resume/b:v1`), { jobs: 1 });
      assert.equal(r.digest.toString(), two.manifestDigest);
      assert.equal(proxy.breaks, 1);
      assert.ok(events.some((e) => e.type === 'retry'));
      // small once + large's first 16 MiB (lost with the cancelled session) + large once.
      assert.ok(proxy.bytesUp < small + large + 16 * MiB + 256 * 1024, `sent ${proxy.bytesUp}`);
      assert.ok(proxy.bytesUp >= small + large, 'every blob arrived');
      await skopeoPullAndVerify(`${target.host}/resume/b:v1`, two.manifestDigest);
    } finally {
      await client.close();
      await proxy.close();
      await target.stop();
    }
  });
});

describe('a killed push', { timeout: 180_000 }, () => {
  test('Pier: SIGKILL mid-blob, and the next run resumes from the journal', async () => {
    const target = await startTarget('pier');
    const proxy = await proxyTo(target);
    const env = { ...work.env, XDG_CACHE_HOME: join(work.dir, 'cache-kill') };
    try {
      const size = blobSize(big, 0);
      proxy.throttle(16 * MiB);
      const ref = `${proxy.host}/resume/killed:v1`;
      const first = await runPier(['push', '--format', 'json', `oci:${bigLayout()}:v1`, ref], {
        env,
        killWhen: (e) => e.type === 'progress' && typeof e.current === 'number' && e.current > 12 * MiB,
      });
      assert.equal(first.signal, 'SIGKILL');
      // What the killed process had already handed to the kernel still flows through the proxy: let it drain.
      proxy.throttle(0);
      const sentBefore = await settled(proxy);
      assert.ok(sentBefore < size, 'killed before the blob was complete');
      const second = await runPier(['push', '--format', 'json', `oci:${bigLayout()}:v1`, ref], { env });
      assert.equal(second.code, 0, second.stderr);
      const resume = second.events.find((e) => e.type === 'resume');
      assert.ok(resume && typeof resume.offset === 'number' && resume.offset > 8 * MiB, `second run resumed: ${JSON.stringify(resume)}`);
      const sentAfter = proxy.bytesUp - sentBefore;
      assert.ok(sentAfter < size - (resume.offset) + 256 * 1024, `second run sent ${sentAfter} bytes`);
      assert.equal(second.events.find((e) => e.type === 'manifest')?.digest, big.manifestDigest);
      await skopeoPullAndVerify(`${target.host}/resume/killed:v1`, big.manifestDigest);
    } finally {
      await proxy.close();
      await target.stop();
    }
  });

  test('Pier: Ctrl-C stops cleanly (one line, exit 130) and the next run resumes', async () => {
    const target = await startTarget('pier');
    const proxy = await proxyTo(target);
    const env = { ...work.env, XDG_CACHE_HOME: join(work.dir, 'cache-int') };
    try {
      proxy.throttle(16 * MiB);
      const ref = `${proxy.host}/resume/interrupted:v1`;
      const first = await runPier(['push', '--format', 'json', `oci:${bigLayout()}:v1`, ref], {
        env,
        killSignal: 'SIGINT',
        killWhen: (e) => e.type === 'progress' && typeof e.current === 'number' && e.current > 8 * MiB,
      });
      assert.equal(first.code, 130);
      assert.deepEqual(first.stderr.trim().split('\n'), ['pier push: interrupted; run the same command again to resume']);
      proxy.throttle(0);
      const second = await runPier(['push', '--format', 'json', `oci:${bigLayout()}:v1`, ref], { env });
      assert.equal(second.code, 0, second.stderr);
      assert.ok(second.events.some((e) => e.type === 'resume' && typeof e.offset === 'number' && e.offset > 0));
      assert.equal(second.events.find((e) => e.type === 'manifest')?.digest, big.manifestDigest);
    } finally {
      await proxy.close();
      await target.stop();
    }
  });

  test('distribution: the next run finishes, without re-sending completed blobs', async () => {
    const target = await startTarget('plain');
    const proxy = await proxyTo(target);
    const env = { ...work.env, XDG_CACHE_HOME: join(work.dir, 'cache-kill-d') };
    try {
      proxy.throttle(24 * MiB);
      const ref = `${proxy.host}/resume/killed:v1`;
      const small = blobSize(two, 0);
      const first = await runPier(['push', '--jobs', '1', '--format', 'json', `oci:${twoLayout()}:v1`, ref], {
        env,
        killWhen: (e) => e.type === 'progress' && typeof e.current === 'number' && e.current > 8 * MiB && e.total === blobSize(two, 1),
      });
      assert.equal(first.signal, 'SIGKILL');
      proxy.throttle(0);
      const second = await runPier(['push', '--format', 'json', `oci:${twoLayout()}:v1`, ref], { env });
      assert.equal(second.code, 0, second.stderr);
      const statuses = second.events.filter((e) => e.type === 'blob').map((e) => `${String(e.id)}:${String(e.status)}`);
      assert.ok(statuses.some((s) => s.endsWith(':exists')), `the completed layer exists: ${statuses.join(' ')}`);
      assert.ok(!second.events.some((e) => e.type === 'progress' && e.total === small), 'the 8 MiB layer was not sent again');
      await skopeoPullAndVerify(`${target.host}/resume/killed:v1`, two.manifestDigest);
    } finally {
      await proxy.close();
      await target.stop();
    }
  });
});
