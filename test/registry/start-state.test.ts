/**
 * What `pier serve` finds and leaves on disk at start: crash leftovers are
 * reconciled (an upload file without a session is removed, a session
 * without a file is ended, a whole session resumes), and the database,
 * keys and uploads are readable by the service user only, even when an
 * older version left the database world-readable.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';

let dataDir = '';
let registry: SpawnedRegistry | undefined;

after(async () => {
  await registry?.kill();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

async function startSession(base: string): Promise<string> {
  const res = await fetch(`${base}/v2/start/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  return new URL(res.headers.get('location') ?? '', base).toString();
}

test('crash leftovers are reconciled at start, and files are private', async () => {
  dataDir = await tempDir('pier-start-');
  registry = await spawnTestRegistry({ dataDir, env: { PIER_STORAGE_MIN_FREE: '0' } });
  const kept = await startSession(registry.url);
  const patched = await fetch(kept, { method: 'PATCH', body: Buffer.from('hello '), headers: { 'content-range': '0-5' } });
  assert.equal(patched.status, 202);
  const lost = await startSession(registry.url);
  await registry.kill();
  registry = undefined;

  const uploads = path.join(dataDir, 'blobs', 'uploads');
  const lostId = lost.split('/').pop() ?? '';
  const keptId = kept.split('/').pop() ?? '';
  const orphan = randomUUID();
  await unlink(path.join(uploads, lostId));
  await writeFile(path.join(uploads, orphan), 'left by a crash');
  await chmod(path.join(dataDir, 'pier.db'), 0o644);

  registry = await spawnTestRegistry({ dataDir, env: { PIER_STORAGE_MIN_FREE: '0' } });
  const base = registry.url;
  assert.deepEqual((await readdir(uploads)).sort(), [keptId], 'the orphan file is removed, the whole session stays');
  assert.equal((await fetch(lost.replace(/^http:\/\/[^/]+/, base))).status, 404, 'a session without a file is ended');
  const resumed = kept.replace(/^http:\/\/[^/]+/, base);
  const state = await fetch(resumed);
  assert.equal(state.status, 204);
  assert.equal(state.headers.get('range'), '0-5');
  const rest = await fetch(resumed, { method: 'PATCH', body: Buffer.from('world'), headers: { 'content-range': '6-10' } });
  assert.equal(rest.status, 202);

  // Private files: the database (made private again), its WAL, keys, blobs and uploads.
  assert.equal(await mode(path.join(dataDir, 'pier.db')), 0o600);
  for (const f of ['pier.db-wal', 'pier.db-shm']) {
    const file = path.join(dataDir, f);
    if (await stat(file).then(() => true, () => false)) assert.equal(await mode(file), 0o600, f);
  }
  assert.equal(await mode(path.join(uploads, keptId)), 0o600);
  assert.equal(await mode(uploads), 0o700);
  assert.equal(await mode(path.join(dataDir, 'blobs', 'blobs')), 0o700);
  const keys = path.join(dataDir, 'keys');
  if (await stat(keys).then(() => true, () => false)) {
    assert.equal(await mode(keys), 0o700);
    for (const k of await readdir(keys)) {
      if (k.endsWith('.key') || k.endsWith('.pem')) assert.equal((await mode(path.join(keys, k))) & 0o077, 0, `${k} is private`);
    }
  }
});
