/**
 * 0007: the commit order of tag history on PostgreSQL. With several
 * writers, identity ids are handed out in insert order, not commit order:
 * a row with a lower id can commit after one with a higher id, so a cursor
 * on ids would skip it. Each row records the id of the transaction that
 * wrote it (`xid`, a 64-bit xid8); the webhook fan-out reads only rows of
 * transactions older than every one still running, in (xid, id) order
 * (docs/decisions/0076-webhook-outbox-commit-order.md). SQLite has one
 * writer, so its ids are already in commit order: nothing to add there.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from './types.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`alter table tag_history add column xid xid8 not null default pg_current_xact_id()`.execute(db);
  await sql`create index tag_history_commit_order on tag_history (xid, id)`.execute(db);
}
