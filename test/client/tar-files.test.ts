/**
 * Members of a tar read through one shared handle (src/client/sources/files.ts):
 * streams of several members at once, from an offset, and a stream destroyed
 * half-way (a broken upload) leaves the handle working for the retry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { TarFiles } from '../../src/client/sources/files.js';
import { tarOf } from '../helpers/images.js';
import { tempDir } from '../helpers/registry.js';

let dir: string;
let archive: string;
const a = randomBytes(3 * 1024 * 1024 + 123);
const b = Buffer.from('the second member');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

before(async () => {
  dir = await tempDir();
  archive = join(dir, 'x.tar');
  await writeFile(archive, await tarOf([{ name: 'a', data: a }, { name: 'dir/b', data: b }]));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tar members', () => {
  test('parallel streams, offsets, and a destroyed stream does not close the archive', async () => {
    const files = await TarFiles.open(archive);
    try {
      const [whole, tail, small] = await Promise.all([readAll(files.open('a')), readAll(files.open('a', 1_000_000)), files.read('dir/b')]);
      assert.ok(whole.equals(a));
      assert.ok(tail.equals(a.subarray(1_000_000)));
      assert.ok(small.equals(b));
      assert.equal(await files.size('a'), a.length);
      assert.ok((await files.head('a', 10)).equals(a.subarray(0, 10)));

      // A broken upload destroys its source stream after the first chunk...
      const broken = files.open('a');
      await new Promise<void>((resolve) => broken.once('data', () => resolve()));
      broken.destroy();
      await new Promise((resolve) => setImmediate(resolve));
      // ...and the retry reads the same archive again.
      assert.ok((await readAll(files.open('a'))).equals(a));
      assert.ok((await files.read('dir/b')).equals(b));
    } finally {
      await files.close();
    }
    await files.close(); // twice is fine
  });
});
