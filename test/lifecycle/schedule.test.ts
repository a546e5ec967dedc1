/**
 * Storage that cleans itself: with short schedules, retention deletes the
 * tags no rule keeps, GC then frees their blobs, and an abandoned upload
 * session expires with its bytes — no command run.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Digest } from '../../src/oci/digest.js';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;

before(async () => {
  reg = await startTestRegistry({
    uploads: { maxAge: '2s' },
    // A grace period longer than a push takes: a zero one would let GC unlink a layer before its manifest arrives.
    gc: { schedule: '1s', gracePeriod: '2s' },
    retention: { schedule: '1s', rules: [{ repository: 'ci/**', keepLast: 1 }] },
  });
});

after(async () => {
  await reg.close();
});

async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

test('scheduled retention and GC free old tags; idle uploads expire', { timeout: 60_000 }, async () => {
  const images: TestImage[] = [];
  for (const tag of ['pr-1', 'pr-2', 'pr-3']) {
    const image = await makeImage();
    images.push(image);
    await pushImage(reg.url, 'ci/app', tag, image);
    await sleep(5);
  }
  const start = await fetch(`${reg.url}/v2/ci/app/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location')!;
  assert.equal((await fetch(`${reg.url}${location}`, { method: 'PATCH', body: Buffer.alloc(1000, 1) })).status, 202);

  await eventually('retention kept only the last tag', async () => {
    const { tags } = (await (await fetch(`${reg.url}/v2/ci/app/tags/list`)).json()) as { tags: string[] };
    return tags.length === 1 && tags[0] === 'pr-3';
  });
  const stored = async (image: TestImage) => (await reg.blobs.statWithTime(Digest.parse(image.layers[0]!.digest))) !== undefined;
  await eventually('GC freed the deleted tags’ blobs', async () => !(await stored(images[0]!)) && !(await stored(images[1]!)));
  assert.ok(await stored(images[2]!));
  await eventually('the idle upload expired', async () => (await fetch(`${reg.url}${location}`)).status === 404);
  assert.deepEqual(await readdir(path.join(reg.dataDir, 'blobs', 'uploads')), []);
  const h = (await (await fetch(`${reg.url}/pier/v1/repositories/ci/app/tags/pr-1/history`)).json()) as { changes: { action: string; actor: string }[] };
  assert.deepEqual(h.changes[0], { ...h.changes[0], action: 'delete', actor: 'retention' });
});
