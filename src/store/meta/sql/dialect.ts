/**
 * What the SQL stores need to know about the database under them, in one
 * place: which dialect it is, how a transaction that a rule depends on is
 * run (its isolation, and the one retry of PostgreSQL's serialization
 * failures), and per-key advisory locks.
 *
 * SQLite runs one writer at a time, so every transaction there is
 * serializable already; the isolation asked for is what PostgreSQL uses
 * (docs/decisions/0075-postgres-isolation-and-locks.md).
 */
import { PostgresAdapter, sql, type Kysely, type Transaction } from 'kysely';
import type { Dialect } from './migrations/types.js';
import type { Database } from './schema.js';

export type { Dialect } from './migrations/types.js';

type Any = Kysely<Database> | Transaction<Database>;

/** The dialect of `db` (a transaction reports its database's). */
export function dialectOf(db: Any): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/**
 * SQLSTATEs that mean "run the transaction again": serialization_failure
 * (SERIALIZABLE conflicts, and a unique or ON CONFLICT clash with a row the
 * snapshot cannot see) and deadlock_detected.
 */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 20;

function retryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && RETRYABLE.has(code);
}

/**
 * Runs `fn` in one transaction at `isolation`, again from the start when
 * PostgreSQL reports a serialization failure or a deadlock (with a short
 * random pause, up to 20 attempts). `fn` must only touch the database:
 * it may run more than once.
 *
 * - `serializable`: rules that read rows and write others on what they
 *   read (a manifest commit checking its references, a tag move checking
 *   the tag, GC deleting what nothing references): PostgreSQL aborts one
 *   of two transactions that would otherwise each miss the other's write.
 * - `read committed`: single-row upserts and transactions that order
 *   themselves with a row or advisory lock taken first.
 */
export async function transact<T>(db: Kysely<Database>, isolation: 'serializable' | 'read committed', fn: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().setIsolationLevel(isolation).execute(fn);
    } catch (err) {
      if (attempt >= MAX_ATTEMPTS || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
    }
  }
}

/**
 * Takes a transaction-scoped advisory lock on `key` (PostgreSQL: held until
 * the transaction ends; two transactions locking one key run one after the
 * other). On SQLite, where transactions already run one at a time, nothing.
 */
export async function lockKey(tx: Transaction<Database>, key: string): Promise<void> {
  if (dialectOf(tx) !== 'postgres') return;
  await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(tx);
}
