/**
 * Opens the metadata database a configuration names: the embedded SQLite
 * file, or PostgreSQL for replicas sharing one database. Used by the
 * composition roots only (the server's start-up, local administration).
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { SqlAccountStore } from './sql-account-store.js';

/** The `database` section, as the registry's config parses it. */
export type DatabaseChoice = { type: 'sqlite'; path: string; synchronous: 'normal' | 'full' } | { type: 'postgres'; url: string };

/** The Kysely handle over the configured database, migrated to the latest schema. The caller destroys it. */
export async function openDatabase(choice: DatabaseChoice): Promise<Kysely<Database>> {
  // Each driver is loaded only when configured: pg is ~15 MB of a SQLite registry's memory at rest otherwise.
  if (choice.type === 'postgres') return (await import('./postgres.js')).openPostgresDatabase(choice.url);
  return (await import('./sqlite.js')).openSqliteDatabase(choice.path, { synchronous: choice.synchronous });
}

/**
 * The account store of the configured database, for the local
 * administration commands (`pier user`, `token`, `group`, `policy`,
 * `audit`). Its changes are audited as made by `local:` and the OS user.
 */
export async function openLocalAccountStore(choice: DatabaseChoice): Promise<{ store: SqlAccountStore; close(): Promise<void> }> {
  if (choice.type === 'sqlite') return (await import('./sqlite.js')).openSqliteAccountStore(choice.path);
  const [{ openPostgresDatabase }, { SqlAccountStore }, { localActor }] = await Promise.all([import('./postgres.js'), import('./sql-account-store.js'), import('./sqlite.js')]);
  const db = await openPostgresDatabase(choice.url, { poolSize: 2 });
  return { store: new SqlAccountStore(db, localActor()), close: () => db.destroy() };
}
