/**
 * The SQL coordinator on PostgreSQL: the shared suite with three replicas,
 * each its own coordinator over its own connection pool to one database
 * (as three processes would have).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/store/meta/sql/schema.js';
import { SqlCoordinator } from '../../src/store/meta/sql/sql-coordinator.js';
import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { freshDatabase } from '../helpers/postgres.js';
import { coordinatorSuite } from './coordinator-suite.js';

const ROW_TTL_MS = 60_000;

coordinatorSuite('sql (postgres, three replicas)', async (clock) => {
  const database = await freshDatabase('coordinator');
  const dbs: Kysely<Database>[] = [];
  const replicas: SqlCoordinator[] = [];
  const close = async () => {
    for (const r of replicas) await r.close().catch(() => undefined);
    for (const db of dbs) await db.destroy();
    await database.drop();
  };
  try {
    for (let i = 0; i < 3; i++) {
      const db = await openPostgresDatabase(database.url, { poolSize: 4 });
      dbs.push(db);
      replicas.push(new SqlCoordinator(db, { holder: `replica-${i}`, now: clock.now, rowTtlMs: ROW_TTL_MS }));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { replicas, lapseMs: ROW_TTL_MS, close };
});

test('SQL coordinator on PostgreSQL: claims and fences from three replicas at once never both hold one digest', async () => {
  const database = await freshDatabase('claims');
  const dbs: Kysely<Database>[] = [];
  const replicas: SqlCoordinator[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const db = await openPostgresDatabase(database.url, { poolSize: 6 });
      dbs.push(db);
      replicas.push(new SqlCoordinator(db, { holder: `replica-${i}` }));
    }
    const digests = ['sha256:one', 'sha256:two'];
    const claimed = new Map<string, number>();
    const fenced = new Set<string>();
    let claims = 0;
    let fences = 0;
    const violations: string[] = [];
    const claimer = async (c: SqlCoordinator, digest: string) => {
      for (let i = 0; i < 25; i++) {
        const release = await c.claim(digest);
        claims++;
        if (fenced.has(digest)) violations.push(`claim granted on fenced ${digest}`);
        claimed.set(digest, (claimed.get(digest) ?? 0) + 1);
        await new Promise((r) => setImmediate(r));
        claimed.set(digest, claimed.get(digest)! - 1);
        await release();
      }
    };
    const fencer = async (c: SqlCoordinator) => {
      for (let i = 0; i < 25; i++) {
        const f = await c.fence(digests);
        for (const d of f.fenced) {
          fences++;
          if ((claimed.get(d) ?? 0) > 0) violations.push(`fence granted on claimed ${d}`);
          fenced.add(d);
        }
        await new Promise((r) => setImmediate(r));
        for (const d of f.fenced) fenced.delete(d);
        await f.lift();
      }
    };
    const [a, b, c] = replicas as [SqlCoordinator, SqlCoordinator, SqlCoordinator];
    await Promise.all([claimer(a, 'sha256:one'), claimer(b, 'sha256:one'), claimer(a, 'sha256:two'), claimer(c, 'sha256:two'), fencer(b), fencer(c)]);
    assert.deepEqual(violations, []);
    assert.equal(claims, 100);
    assert.ok(fences > 0, 'GC got to fence some of the time');
  } finally {
    for (const r of replicas) await r.close().catch(() => undefined);
    for (const db of dbs) await db.destroy();
    await database.drop();
  }
});
