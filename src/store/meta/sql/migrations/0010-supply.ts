/**
 * 0010: the supply-chain tables (src/store/meta/supply-store.ts): each
 * layer's inventory (cached per digest, read once), each manifest's scan
 * (status, merged inventory, findings, the SBOM referrer written for it),
 * the imported OSV records with a lookup index by ecosystem and package,
 * and the log of imports (the database's date).
 */
import type { Kysely } from 'kysely';
import { columnTypes, type Dialect } from './types.js';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const t = columnTypes(dialect);
  await db.schema
    .createTable('layer_inventories')
    .addColumn('digest', t.text, (c) => c.primaryKey())
    .addColumn('format', 'integer', (c) => c.notNull())
    .addColumn('inventory', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('image_scans')
    .addColumn('repository_id', 'bigint', (c) => c.notNull())
    .addColumn('digest', t.text, (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('source', 'text')
    .addColumn('inventory', 'text')
    .addColumn('findings', 'text')
    .addColumn('error', 'text')
    .addColumn('db_generation', 'bigint', (c) => c.notNull())
    .addColumn('sbom_digest', 'text')
    .addColumn('scanned_at', 'bigint', (c) => c.notNull())
    .addColumn('matched_at', 'bigint')
    .addPrimaryKeyConstraint('image_scans_pk', ['repository_id', 'digest'])
    .addForeignKeyConstraint('image_scans_manifest', ['repository_id', 'digest'], 'manifests', ['repository_id', 'digest'], (c) => c.onDelete('cascade'))
    .execute();
  await db.schema.createIndex('image_scans_generation').on('image_scans').columns(['status', 'db_generation']).execute();
  await db.schema
    .createTable('vulnerabilities')
    .addColumn('id', t.text, (c) => c.primaryKey())
    .addColumn('modified', 'text', (c) => c.notNull())
    .addColumn('record', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('vulnerability_packages')
    .addColumn('ecosystem', t.text, (c) => c.notNull())
    .addColumn('name', t.text, (c) => c.notNull())
    .addColumn('vulnerability_id', t.text, (c) => c.notNull().references('vulnerabilities.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('vulnerability_packages_pk', ['ecosystem', 'name', 'vulnerability_id'])
    .execute();
  await db.schema.createIndex('vulnerability_packages_record').on('vulnerability_packages').column('vulnerability_id').execute();
  await db.schema
    .createTable('vulndb_imports')
    .addColumn('id', t.id)
    .addColumn('imported_at', 'bigint', (c) => c.notNull())
    .addColumn('database_date', 'bigint', (c) => c.notNull())
    .addColumn('records', 'integer', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .execute();
}
