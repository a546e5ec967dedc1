/**
 * 0004: quota reservations (see src/store/meta/quota-ledger.ts): bytes on
 * their way into a namespace, per holder (an upload session or a one-off
 * mount or manifest), counted against its quota with what it stores.
 */
import type { Kysely } from 'kysely';
import type { Dialect } from './types.js';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('quota_reservations')
    .addColumn('holder', 'text', (c) => c.primaryKey())
    .addColumn('namespace', 'text', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('quota_reservations_namespace').on('quota_reservations').columns(['namespace', 'updated_at']).execute();
}
