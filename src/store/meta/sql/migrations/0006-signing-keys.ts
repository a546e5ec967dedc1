/**
 * 0006: token signing keys kept in the database (src/store/meta/signing-keys.ts),
 * so every replica on one PostgreSQL signs and verifies with the same keys.
 * The first replica to start inserts one; the others find it.
 */
import type { Kysely } from 'kysely';
import { columnTypes, type Dialect } from './types.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('signing_keys')
    .addColumn('id', t.text, (c) => c.primaryKey())
    .addColumn('private_key', 'text', (c) => c.notNull())
    .addColumn('certificate', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
