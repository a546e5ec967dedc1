/**
 * Opens a PostgreSQL database (`database.type: postgres`) and brings its
 * schema up to date: the same migrations as SQLite (migrationProvider
 * ('postgres')), run once even when several replicas start together.
 *
 * Values at the edge: `bigint` columns (times in epoch milliseconds, sizes,
 * ids) come back from `pg` as strings; this pool parses them into numbers,
 * refusing one past 2^53 rather than rounding it.
 */
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import { DatabaseError } from '../database-error.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';

/** The session advisory lock key every replica's migrator takes (an arbitrary constant: "pier" in ASCII). */
const MIGRATION_LOCK = 0x70696572;
const INT8 = 20;

function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new DatabaseError(`a bigint from PostgreSQL (${text}) is past what Pier counts exactly (2^53)`);
  return n;
}

const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8 && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** `url` without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the database URL';
  }
}

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  poolSize?: number;
}

/**
 * The Kysely handle over `url` (a `postgres://` URL), migrated to the
 * latest schema. Concurrent openers (replicas starting together) take one
 * session advisory lock around the migrator, so each migration runs once
 * and the others find the schema current. The caller destroys the handle.
 *
 * @throws DatabaseError when the server cannot be reached or a migration fails.
 */
export async function openPostgresDatabase(url: string, options: PostgresOptions = {}): Promise<Kysely<Database>> {
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its connection (the server restarts) reports here; the pool replaces it.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, url);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return db;
}

async function migrate(db: Kysely<Database>, url: string): Promise<void> {
  const where = redactUrl(url);
  const lock = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  lock.on('error', () => undefined);
  try {
    await lock.connect();
  } catch (err) {
    throw new DatabaseError(`cannot connect to PostgreSQL at ${where}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const { error, results } = await new Migrator({ db, provider: migrationProvider('postgres') }).migrateToLatest();
    const failed = results?.find((r) => r.status === 'Error');
    if (error || failed) {
      throw new DatabaseError(`migrating ${where} failed${failed ? ` at ${failed.migrationName}` : ''}: ${String((error as Error | undefined)?.message ?? error)}`, { cause: error });
    }
  } finally {
    // Ending the session releases its advisory lock, whatever happened above.
    await lock.end().catch(() => undefined);
  }
}
