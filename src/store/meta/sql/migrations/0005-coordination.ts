/**
 * 0005: the SQL coordinator's rows (src/store/meta/sql/sql-coordinator.ts):
 * blob claims (one row per claim) and fences (one row per fenced digest),
 * named locks, leader leases and fixed-window counters. Every row that a
 * holder keeps for a while carries `expires_at`, renewed while it is held,
 * so a replica that dies cannot keep GC, a tag or a job away for ever.
 * Times are epoch milliseconds.
 */
import type { Kysely } from 'kysely';
import { columnTypes, type Dialect } from './types.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('coordinator_claims')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('digest', t.text, (c) => c.notNull())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('coordinator_claims_digest').on('coordinator_claims').columns(['digest', 'expires_at']).execute();
  await db.schema.createIndex('coordinator_claims_holder').on('coordinator_claims').column('holder').execute();
  await db.schema
    .createTable('coordinator_fences')
    .addColumn('digest', t.text, (c) => c.primaryKey())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('coordinator_fences_token').on('coordinator_fences').column('token').execute();
  await db.schema.createIndex('coordinator_fences_holder').on('coordinator_fences').column('holder').execute();
  await db.schema
    .createTable('coordinator_locks')
    .addColumn('key', t.text, (c) => c.primaryKey())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('coordinator_locks_holder').on('coordinator_locks').column('holder').execute();
  await db.schema
    .createTable('coordinator_leases')
    .addColumn('name', t.text, (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('coordinator_counters')
    .addColumn('key', t.text, (c) => c.primaryKey())
    .addColumn('count', 'bigint', (c) => c.notNull())
    .addColumn('since', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('coordinator_counters_since').on('coordinator_counters').column('since').execute();
}
