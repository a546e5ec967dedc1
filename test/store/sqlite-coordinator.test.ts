/**
 * The SQL coordinator on SQLite: the shared suite with two replicas, each
 * its own coordinator over its own connection to one database file (as two
 * processes would have), and what only the SQL one does: rows of a holder
 * that stops renewing lapse, and renewing keeps them.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/store/meta/sql/schema.js';
import { SqlCoordinator } from '../../src/store/meta/sql/sql-coordinator.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { tempDir } from '../helpers/registry.js';
import { coordinatorSuite } from './coordinator-suite.js';

const ROW_TTL_MS = 60_000;

async function openReplicas(clock: { now: () => number }, n: number) {
  const dir = await tempDir('pier-coordinator-');
  const file = path.join(dir, 'pier.db');
  const dbs: Kysely<Database>[] = [];
  const replicas: SqlCoordinator[] = [];
  try {
    // One after the other: the first migrates, the rest find the schema current.
    for (let i = 0; i < n; i++) {
      const db = await openSqliteDatabase(file);
      dbs.push(db);
      replicas.push(new SqlCoordinator(db, { holder: `replica-${i}`, now: clock.now, rowTtlMs: ROW_TTL_MS }));
    }
  } catch (err) {
    for (const db of dbs) await db.destroy();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    replicas,
    async close() {
      for (const r of replicas) await r.close().catch(() => undefined);
      for (const db of dbs) await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

coordinatorSuite('sql (sqlite, two replicas)', async (clock) => ({ ...(await openReplicas(clock, 2)), lapseMs: ROW_TTL_MS }));

test('SQL coordinator: a holder that renews keeps its claim; close() gives everything back', async () => {
  const clock = { t: 1_000_000 };
  const fixture = await openReplicas({ now: () => clock.t }, 2);
  try {
    const [a, b] = fixture.replicas as [SqlCoordinator, SqlCoordinator];
    await a.claim('sha256:kept');
    clock.t += ROW_TTL_MS - 1;
    await a.renew();
    clock.t += ROW_TTL_MS - 1;
    const f = await b.fence(['sha256:kept']);
    assert.deepEqual(f.fenced, [], 'a renewed claim still keeps GC off');
    await f.lift();

    await a.tryLock('repo:v1');
    assert.equal(await a.acquireLease('gc', 3_600_000), true);
    await a.close();
    const lock = await b.tryLock('repo:v1');
    assert.ok(lock, 'a closed replica holds no lock');
    await lock();
    assert.equal(await b.acquireLease('gc', 1000), true, 'nor a lease');
    assert.deepEqual((await b.fence(['sha256:kept'])).fenced, ['sha256:kept'], 'nor a claim');
  } finally {
    await fixture.close();
  }
});
