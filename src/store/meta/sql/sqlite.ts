/** Opens the embedded SQLite database and brings its schema up to date. */
import os from 'node:os';
import { chmod, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type Driver, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { MigrateError } from '../../migrate-error.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';
import { SqlAccountStore } from './sql-account-store.js';
import { SqlMetaStore } from './sql-meta-store.js';

/**
 * SQLite rolls a transaction back by itself on some errors (SQLITE_FULL
 * when the disk is full, SQLITE_IOERR); Kysely's ROLLBACK then fails with
 * "no transaction is active" and hides the error that mattered. This
 * dialect skips the ROLLBACK when SQLite has already done it.
 */
class RollbackSafeSqliteDialect extends SqliteDialect {
  constructor(private readonly sqlite: SQLite.Database) {
    super({ database: cachingStatements(sqlite) });
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const rollback = driver.rollbackTransaction.bind(driver);
    driver.rollbackTransaction = async (connection) => {
      if (this.sqlite.inTransaction) await rollback(connection);
    };
    return driver;
  }
}

/** Prepared statements kept per database (Pier's queries are a few hundred distinct SQL strings). */
const STATEMENT_CACHE = 500;

/**
 * The database as Kysely's SQLite driver sees it, with prepared statements
 * reused by SQL text: the driver prepares every query anew (0.45 s of the
 * ~2.7 s spent in Kysely and SQLite in a profile of 50 concurrent pushes,
 * docs/performance.md). Safe because
 * better-sqlite3 runs a statement to completion synchronously (`all`, `run`)
 * and Pier never streams (`iterate`) a query, so a cached statement is never
 * busy when it is taken again; SQLite re-prepares one whose schema changed.
 * Least recently used statements are dropped past {@link STATEMENT_CACHE}.
 */
function cachingStatements(sqlite: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string): SqliteStatement {
      let stmt = cache.get(text);
      if (stmt) {
        cache.delete(text);
      } else {
        stmt = sqlite.prepare(text);
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, stmt);
      return stmt;
    },
  };
}

/**
 * The Kysely handle over `file`, migrated to the latest schema. Other
 * stores (accounts, lifecycle) share it; the caller destroys it once.
 */
export async function openSqliteDatabase(file: string, options: { synchronous?: 'normal' | 'full' } = {}): Promise<Kysely<Database>> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await makePrivate(file);
  const sqlite = new SQLite(file);
  // WAL lets readers run beside the writer. In WAL mode, NORMAL keeps every
  // commit across a process crash and the database consistent across a power
  // loss (the last commits may roll back); FULL fsyncs each commit. See
  // docs/decisions/0004-sqlite-synchronous.md.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new RollbackSafeSqliteDialect(sqlite) });
  const { error, results } = await new Migrator({ db, provider: migrationProvider('sqlite') }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    await db.destroy();
    throw new Error(`migrating ${file} failed${failed ? ` at ${failed.migrationName}` : ''}`, { cause: error });
  }
  return db;
}

/**
 * Opens an existing database read-only (SQLite refuses every write), for
 * reading a registry that is stopped or serving read-only (`pier migrate`).
 * Its schema must be this version's: a read-only database cannot be
 * migrated, so an older one is an error saying to start `pier serve` on it
 * once.
 */
export async function openSqliteReadOnly(file: string): Promise<Kysely<Database>> {
  let sqlite: SQLite.Database;
  try {
    sqlite = new SQLite(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new MigrateError(`cannot open ${file} read-only: ${(err as Error).message}`, { cause: err });
  }
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new RollbackSafeSqliteDialect(sqlite) });
  const expected = Object.keys(await migrationProvider('sqlite').getMigrations());
  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db).then(
    (r) => r.rows.map((row) => row.name),
    (): string[] => [],
  );
  if (expected.some((name) => !applied.includes(name))) {
    await db.destroy();
    throw new MigrateError(`${file} has an older schema than this pier: run this version's 'pier serve' on it once, then stop it`);
  }
  return db;
}

export async function openSqliteMetaStore(file: string): Promise<SqlMetaStore> {
  return new SqlMetaStore(await openSqliteDatabase(file));
}

/**
 * The account store over `file`, for the local administration commands
 * (`pier user`, `token`, `group`, `policy`, `audit`). Its changes are
 * audited as made by `local:` and the OS user.
 */
export async function openSqliteAccountStore(file: string): Promise<{ store: SqlAccountStore; close(): Promise<void> }> {
  const db = await openSqliteDatabase(file);
  return { store: new SqlAccountStore(db, localActor()), close: () => db.destroy() };
}

/** Who local administration acts as in the audit log: `local:` and the OS user. */
export function localActor(): { name: string } {
  return { name: `local:${localUser()}` };
}

function localUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/**
 * Creates the database file readable by the service user only (0600), and
 * makes an existing one (and its WAL and shared-memory files) so. SQLite
 * gives the -wal and -shm files it creates the database file's mode.
 */
async function makePrivate(file: string): Promise<void> {
  await (await open(file, 'a', 0o600)).close();
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    await chmod(f, 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}
