/**
 * 0008: object-store upload sessions (src/store/blob/upload-state.ts): the
 * bytes received so far as multipart parts and staged objects, and which
 * writer holds the session (`holder` until `held_until`), so any replica
 * can continue an upload. `parts` and `staged` are JSON lists. Times are
 * epoch milliseconds.
 */
import type { Kysely } from 'kysely';
import type { Dialect } from './types.js';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('blob_uploads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('multipart_id', 'text')
    .addColumn('parts', 'text', (c) => c.notNull())
    .addColumn('staged', 'text', (c) => c.notNull())
    .addColumn('assembled', 'integer', (c) => c.notNull())
    .addColumn('holder', 'text')
    .addColumn('held_until', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('blob_uploads_updated_at').on('blob_uploads').column('updated_at').execute();
}
