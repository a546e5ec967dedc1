/**
 * Opens the metadata database a configuration names: the embedded SQLite
 * file, or PostgreSQL for replicas sharing one database. Used by the
 * composition roots only (the server's start-up, local administration).
 */
import type { Kysely } from 'kysely';
import { openPostgresDatabase } from './postgres.js';
import type { Database } from './schema.js';
import { SqlAccountStore } from './sql-account-store.js';
import { localActor, openSqliteAccountStore, openSqliteDatabase } from './sqlite.js';

/** The `database` section, as the registry's config parses it. */
export type DatabaseChoice = { type: 'sqlite'; path: string; synchronous: 'normal' | 'full' } | { type: 'postgres'; url: string };

/** The Kysely handle over the configured database, migrated to the latest schema. The caller destroys it. */
export function openDatabase(choice: DatabaseChoice): Promise<Kysely<Database>> {
  return choice.type === 'postgres' ? openPostgresDatabase(choice.url) : openSqliteDatabase(choice.path, { synchronous: choice.synchronous });
}

/**
 * The account store of the configured database, for the local
 * administration commands (`pier user`, `token`, `group`, `policy`,
 * `audit`). Its changes are audited as made by `local:` and the OS user.
 */
export async function openLocalAccountStore(choice: DatabaseChoice): Promise<{ store: SqlAccountStore; close(): Promise<void> }> {
  if (choice.type === 'sqlite') return openSqliteAccountStore(choice.path);
  const db = await openPostgresDatabase(choice.url, { poolSize: 2 });
  return { store: new SqlAccountStore(db, localActor()), close: () => db.destroy() };
}
