/**
 * 0013: web UI sessions (src/store/meta/sessions.ts). The key is the
 * SHA-256 of the cookie's secret, never the secret. Times are epoch ms.
 */
import type { Kysely } from 'kysely';
import { columnTypes, type Dialect } from './types.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('ui_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_name', t.text, (c) => c.notNull())
    .addColumn('csrf', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ui_sessions_user').on('ui_sessions').column('user_name').execute();
  await db.schema.createIndex('ui_sessions_expires').on('ui_sessions').column('expires_at').execute();
}
