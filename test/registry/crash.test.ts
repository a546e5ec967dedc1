/**
 * Crash safety: SIGKILL the registry at 24 points spread over a push
 * (while chunks stream, while an upload commits, while a manifest commits),
 * restart it on the same data, and check that every served blob matches
 * its digest, no tag points at a missing manifest or blob, and the client
 * can push again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { rm } from 'node:fs/promises';
import { makeImage, sha256, type TestImage } from '../helpers/images.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';

const CHUNK = 512 * 1024;
const KILL_POINTS = 24;

interface Step {
  label: string;
  send(base: string): Promise<Response>;
}

/** The requests of a chunked push, one step each, so the test can kill between or during them. */
function pushSteps(repo: string, tag: string, image: TestImage): Step[] {
  const steps: Step[] = [];
  let location = '';
  for (const b of [...image.layers, image.config]) {
    steps.push({
      label: `start ${b.digest.slice(7, 15)}`,
      async send(base) {
        const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
        location = res.headers.get('location') ?? '';
        return res;
      },
    });
    for (let off = 0; off < b.size; off += CHUNK) {
      const end = Math.min(off + CHUNK, b.size);
      steps.push({
        label: `patch ${off}`,
        send: (base) =>
          fetch(`${base}${location}`, {
            method: 'PATCH',
            body: b.data.subarray(off, end),
            headers: { 'content-range': `${off}-${end - 1}`, 'content-type': 'application/octet-stream' },
          }),
      });
    }
    steps.push({ label: `commit ${b.digest.slice(7, 15)}`, send: (base) => fetch(`${base}${location}?digest=${b.digest}`, { method: 'PUT' }) });
  }
  steps.push({
    label: 'manifest',
    send: (base) => fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } }),
  });
  return steps;
}

async function pushAll(base: string, steps: Step[]): Promise<void> {
  for (const step of steps) {
    const res = await step.send(base);
    const text = await res.text();
    assert.ok(res.status < 300, `${step.label}: ${res.status} ${text}`);
  }
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The invariants that must hold after any crash. */
async function checkConsistent(reg: SpawnedRegistry): Promise<void> {
  // 1. Every committed blob on disk is whole and correct.
  const root = path.join(reg.dataDir, 'blobs', 'blobs', 'sha256');
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(root, prefix))) {
      assert.equal(await hashFile(path.join(root, prefix, name)), name, `blob ${name} on disk does not match its digest`);
    }
  }
  // 2. Every tag resolves to a manifest whose blobs are all served, with the right bytes.
  const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
  for (const repo of catalog.repositories) {
    const { tags } = (await (await fetch(`${reg.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    for (const tag of tags) {
      const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`);
      assert.equal(res.status, 200, `tag ${repo}:${tag} points at a missing manifest`);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(sha256(body), res.headers.get('docker-content-digest'));
      const manifest = JSON.parse(body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
      for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        const blob = await fetch(`${reg.url}/v2/${repo}/blobs/${d}`);
        assert.equal(blob.status, 200, `${repo}:${tag} references ${d}, which is not served`);
        assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), d, `blob ${d} served with the wrong bytes`);
      }
    }
  }
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test(`SIGKILL at ${KILL_POINTS} points during pushes loses nothing committed and corrupts nothing`, { timeout: 600_000 }, async () => {
  const dataDir = await tempDir('pier-crash-');
  dirs.push(dataDir);
  const images = await Promise.all([0, 1, 2].map(() => makeImage({ layers: [3 * CHUNK + 1000, 2 * CHUNK + 7, 100_000] })));
  const plans = images.map((image, i) => ({ image, repo: `crash/app${i}`, tag: `v${i}`, steps: pushSteps(`crash/app${i}`, `v${i}`, image) }));
  const stepsPerPush = plans[0]!.steps.length;
  let reg = await spawnTestRegistry({ dataDir });
  const killedDuring = new Set<string>();
  try {
    for (let k = 0; k < KILL_POINTS; k++) {
      const plan = plans[k % plans.length]!;
      // Spread kill points over the whole push: step index, and a delay into that request.
      const at = Math.floor(((k + 0.5) / KILL_POINTS) * stepsPerPush);
      const delayMs = (k * 7) % 13;
      for (const step of plan.steps.slice(0, at)) {
        const res = await step.send(reg.url).catch(() => undefined);
        await res?.arrayBuffer();
      }
      const inflight = plan.steps[at]!.send(reg.url).then((r) => r.arrayBuffer()).catch(() => undefined);
      await new Promise((r) => setTimeout(r, delayMs));
      await reg.kill('SIGKILL');
      // A request cut off by the kill may never settle in undici (no socket left to fail): do not wait on it forever.
      await Promise.race([inflight, new Promise((r) => setTimeout(r, 2000))]);
      killedDuring.add(plan.steps[at]!.label.split(' ')[0]!);
      reg = await spawnTestRegistry({ dataDir });
      await checkConsistent(reg);
    }
    // The client can push everything again, and it is all served correctly.
    for (const plan of plans) await pushAll(reg.url, plan.steps);
    await checkConsistent(reg);
    for (const plan of plans) {
      const res = await fetch(`${reg.url}/v2/${plan.repo}/manifests/${plan.tag}`, { method: 'HEAD' });
      assert.equal(res.headers.get('docker-content-digest'), plan.image.digest);
    }
    assert.ok(['start', 'patch', 'commit', 'manifest'].every((s) => killedDuring.has(s)), `kill points covered ${[...killedDuring].join(', ')}`);
  } finally {
    await reg.kill('SIGKILL');
  }
});
