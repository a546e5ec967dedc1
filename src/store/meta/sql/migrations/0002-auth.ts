/**
 * 0002: accounts and access control: users, groups and memberships, access
 * tokens (robots and CI), refresh tokens, policy rules edited with
 * `pier policy`, the audit log, and a generation counter that every
 * credential or policy change bumps so running registries drop their caches.
 */
import { sql, type Kysely } from 'kysely';
import { columnTypes, type Dialect } from './types.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('users')
    .addColumn('name', t.text, (c) => c.primaryKey())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('groups')
    .addColumn('name', t.text, (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('group_members')
    .addColumn('group_name', t.text, (c) => c.notNull().references('groups.name').onDelete('cascade'))
    .addColumn('user_name', t.text, (c) => c.notNull().references('users.name').onDelete('cascade'))
    .addPrimaryKeyConstraint('group_members_pk', ['group_name', 'user_name'])
    .execute();
  await db.schema
    .createTable('access_tokens')
    .addColumn('name', t.text, (c) => c.primaryKey())
    .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
    .addColumn('owner', t.text, (c) => c.references('users.name').onDelete('cascade'))
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .addColumn('last_used_at', 'bigint')
    .execute();
  await db.schema
    .createTable('refresh_tokens')
    .addColumn('secret_hash', 'text', (c) => c.primaryKey())
    .addColumn('subject', t.text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('refresh_tokens_subject').on('refresh_tokens').column('subject').execute();
  await db.schema
    .createTable('policy_rules')
    .addColumn('id', t.id)
    .addColumn('subject', t.text, (c) => c.notNull())
    .addColumn('repositories', t.text, (c) => c.notNull())
    .addColumn('actions', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_log')
    .addColumn('id', t.id)
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', t.text, (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('repository', t.text)
    .addColumn('target', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
  await db.schema
    .createTable('auth_state')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into auth_state (id, generation) values (1, 0)`.execute(db);
}
