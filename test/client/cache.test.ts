/**
 * The client cache's logs (src/client/cache.ts): records survive the
 * process, later records win, a torn line is skipped, two writers at once
 * lose nothing, and a log far longer than its entries is compacted.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PierCache } from '../../src/client/cache.js';
import { Digest } from '../../src/oci/index.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pier-cache-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const blob = (n: number) => Digest.of(Buffer.from(`blob ${n}`));

describe('client cache', () => {
  test('mount records: most recent repository first, at most 8, across processes', async () => {
    const path = join(dir, 'mounts');
    const a = new PierCache(path);
    for (let i = 0; i < 10; i++) await a.recordBlob('r.example', `repo${i}`, blob(1));
    await a.recordBlob('r.example', 'repo3', blob(1));
    await a.recordBlob('other.example', 'x', blob(1));
    await a.close();
    const b = new PierCache(path);
    assert.deepEqual(await b.repositoriesWithBlob('r.example', blob(1)), ['repo3', 'repo9', 'repo8', 'repo7', 'repo6', 'repo5', 'repo4', 'repo2']);
    assert.deepEqual(await b.repositoriesWithBlob('other.example', blob(1)), ['x']);
    assert.deepEqual(await b.repositoriesWithBlob('r.example', blob(2)), []);
    await b.close();
  });

  test('diffID records: a torn line is skipped, the records after it count', async () => {
    const path = join(dir, 'diffids');
    const a = new PierCache(path);
    await a.recordCompressedForm(blob(1), 'gzip-x', { digest: blob(11).toString(), size: 11, mediaType: 'm' });
    await a.close();
    await appendFile(join(path, 'diffids.log'), '{"diffID":"sha256:tor');
    await appendFile(join(path, 'diffids.log'), '\n{"diffID":"' + blob(2).toString() + '","codec":"gzip-x","digest":"' + blob(22).toString() + '","size":22,"mediaType":"m"}\n');
    const b = new PierCache(path);
    assert.deepEqual(await b.compressedForm(blob(1), 'gzip-x'), { digest: blob(11).toString(), size: 11, mediaType: 'm' });
    assert.equal((await b.compressedForm(blob(2), 'gzip-x'))?.size, 22);
    assert.equal(await b.compressedForm(blob(1), 'gzip-y'), undefined, 'the codec is part of the key');
    await b.close();
    // A crash mid-write leaves a line without its newline: the next record must not be glued to it.
    await appendFile(join(path, 'diffids.log'), '{"diffID":"sha256:torn-again');
    const c = new PierCache(path);
    await c.recordCompressedForm(blob(3), 'gzip-x', { digest: blob(33).toString(), size: 33, mediaType: 'm' });
    await c.close();
    await c.recordCompressedForm(blob(4), 'gzip-x', { digest: blob(44).toString(), size: 44, mediaType: 'm' });
    const d = new PierCache(path);
    assert.equal((await d.compressedForm(blob(3), 'gzip-x'))?.size, 33);
    assert.equal((await d.compressedForm(blob(4), 'gzip-x'))?.size, 44, 'a record after close is still written');
    await d.close();
  });

  test('two writers at once lose nothing', async () => {
    const path = join(dir, 'concurrent');
    const a = new PierCache(path);
    const b = new PierCache(path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).recordBlob('r.example', 'repo', blob(100 + i))));
    await Promise.all([a.close(), b.close()]);
    const c = new PierCache(path);
    for (let i = 0; i < 50; i++) assert.deepEqual(await c.repositoriesWithBlob('r.example', blob(100 + i)), ['repo']);
    await c.close();
  });

  test('a log far longer than its entries is compacted when read', async () => {
    const path = join(dir, 'compact');
    const a = new PierCache(path);
    for (let i = 0; i < 1200; i++) await a.recordBlob('r.example', `repo${i % 3}`, blob(i % 2));
    await a.close();
    const before = (await readFile(join(path, 'mounts.log'), 'utf8')).trim().split('\n').length;
    assert.equal(before, 1200);
    const b = new PierCache(path);
    assert.deepEqual(await b.repositoriesWithBlob('r.example', blob(1)), ['repo2', 'repo0', 'repo1']);
    const lines = (await readFile(join(path, 'mounts.log'), 'utf8')).trim().split('\n').length;
    assert.equal(lines, 6, 'one line per remembered repository');
    await b.close();
    const c = new PierCache(path);
    assert.deepEqual(await c.repositoriesWithBlob('r.example', blob(1)), ['repo2', 'repo0', 'repo1'], 'order kept through compaction');
    assert.deepEqual(await c.repositoriesWithBlob('r.example', blob(0)), ['repo1', 'repo2', 'repo0']);
    await c.close();
  });
});
