/**
 * Replicas starting together on one empty PostgreSQL database: every
 * opener succeeds, and each migration ran exactly once (the advisory lock
 * around the migrator).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { migrationProvider } from '../../src/store/meta/sql/migrations.js';
import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { freshDatabase } from '../helpers/postgres.js';

test('PostgreSQL: six openers at once on a fresh database migrate it once, and all of them open it', async () => {
  const database = await freshDatabase('migrate');
  const opened = await Promise.allSettled(Array.from({ length: 6 }, () => openPostgresDatabase(database.url, { poolSize: 2 })));
  try {
    const failed = opened.filter((o) => o.status === 'rejected').map((o) => String((o).reason));
    assert.deepEqual(failed, []);
    const db = (opened[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof openPostgresDatabase>>>).value;
    const { rows } = await sql<{ name: string; n: number }>`select name, count(*)::int as n from kysely_migration group by name order by name`.execute(db);
    assert.equal(rows.length, Object.keys(await migrationProvider('postgres').getMigrations()).length);
    assert.ok(rows.every((r) => r.n === 1), 'each migration recorded once');
  } finally {
    for (const o of opened) if (o.status === 'fulfilled') await o.value.destroy();
    await database.drop();
  }
});
