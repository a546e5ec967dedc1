/**
 * A fresh PostgreSQL database per test. scripts/test.sh starts one server
 * per run (scripts/services/postgres.sh) and exports PIER_TEST_PG_URL, an
 * admin URL where tests may CREATE DATABASE; a developer may point it at a
 * running server instead. A test that needs PostgreSQL fails (never skips)
 * when the variable is missing.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import type { Database } from '../../src/store/meta/sql/schema.js';

/** The admin URL, or a clear failure saying how to get one. */
export function pgAdminUrl(): string {
  const url = process.env.PIER_TEST_PG_URL;
  if (!url) {
    throw new Error(
      'PIER_TEST_PG_URL is not set: this test needs PostgreSQL. Run it through `npm test` (scripts/test.sh starts one), ' +
        'or export PIER_TEST_PG_URL=postgres://USER@127.0.0.1:PORT/postgres (a role that may CREATE DATABASE)',
    );
  }
  return url;
}

export interface TestDatabase {
  /** A URL for the new, empty database. */
  url: string;
  name: string;
  /** Drops the database (closing any session still on it). */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgAdminUrl(), connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database named `pier_test_<prefix>_<random>`. */
export async function freshDatabase(prefix = 't'): Promise<TestDatabase> {
  const name = `pier_test_${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`create database "${name}"`));
  const url = new URL(pgAdminUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin((c) => c.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

/**
 * A fresh database migrated to the latest schema and opened with Kysely;
 * `close` destroys the pool and drops the database (also when opening fails).
 */
export async function openFreshDatabase(prefix = 't'): Promise<{ db: Kysely<Database>; close: () => Promise<void> }> {
  const database = await freshDatabase(prefix);
  try {
    const db = await openPostgresDatabase(database.url);
    return {
      db,
      close: async () => {
        await db.destroy();
        await database.drop();
      },
    };
  } catch (err) {
    await database.drop();
    throw err;
  }
}
