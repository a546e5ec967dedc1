/**
 * The free-space guard on a real volume (a 64 MiB tmpfs the test mounts;
 * CI runs as root): a reading of the volume may answer later checks only
 * far from the floor; near it, every check reads the volume again, so a
 * volume filled since the last reading is refused at once.
 */
import assert from 'node:assert/strict';
import { rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DiskSpace } from '../../src/store/disk-space.js';
import { tempDir } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';

const MiB = 1024 * 1024;
let mountPoint = '';
let mounted = false;
let skip: string | false = false;

before(async () => {
  mountPoint = await tempDir('pier-diskspace-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', mountPoint], { timeoutMs: 10_000 });
    mounted = true;
  } catch (err) {
    skip = `cannot mount a tmpfs (needs root): ${(err as Error).message}`;
  }
});

after(async () => {
  if (mounted) await run('umount', ['-l', mountPoint], { timeoutMs: 10_000 }).catch(() => undefined);
  await rm(mountPoint, { recursive: true, force: true });
});

async function leaveFree(bytes: number, file: string): Promise<void> {
  const s = await statfs(mountPoint);
  await writeFile(path.join(mountPoint, file), Buffer.alloc(s.bavail * s.bsize - bytes));
}

test('near the floor every check reads the volume again: space filled since the last check is refused at once', async (t) => {
  if (skip) return t.skip(skip);
  // Readings would be reused for a minute, but only with 16 MiB to spare above the 8 MiB floor.
  const space = new DiskSpace([{ name: 'storage', path: mountPoint }], { bytes: 8 * MiB }, { ms: 60_000, headroom: 16 * MiB });
  await leaveFree(20 * MiB, 'a');
  await space.ensureRoom(0);
  await space.ensureRoom(10 * MiB);
  await leaveFree(10 * MiB, 'b');
  await assert.rejects(space.ensureRoom(5 * MiB), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_STORAGE_LOW');
    assert.match(err.message, /storage has \d+ bytes free for 5242880 more bytes, below the minimum of 8388608/);
    return true;
  });
  await assert.rejects(space.ensureRoom(3 * MiB), /out of storage/);
  await space.ensureRoom(1 * MiB);
  await rm(path.join(mountPoint, 'b'));
  await space.ensureRoom(5 * MiB);
});
