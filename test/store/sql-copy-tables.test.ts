/**
 * `pier migrate` copies the metadata table by table from a list written by
 * hand (src/store/meta/sql/sql-copy.ts). A table added by a migration and
 * forgotten there would be lost silently in every migration. Here every
 * table of a freshly migrated database (SQLite, and PostgreSQL: the
 * migrations differ in places) must be either copied or listed as not
 * copied with a reason; and a copy of a database holding a row in every
 * copied table leaves the target with the same counts.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import type { Database } from '../../src/store/meta/sql/schema.js';
import { COPIED_TABLES, NOT_COPIED_TABLES, copyRows, rowCounts } from '../../src/store/meta/sql/sql-copy.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { openFreshDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/registry.js';

/** Kysely's own bookkeeping: the target migrates itself. */
const MIGRATOR = new Set(['kysely_migration', 'kysely_migration_lock']);

function checkTables(dialect: string, tables: string[]): void {
  const notCopied = Object.keys(NOT_COPIED_TABLES);
  const both = COPIED_TABLES.filter((t) => notCopied.includes(t));
  assert.deepEqual(both, [], `${dialect}: tables both copied and listed as not copied`);
  const unaccounted = tables.filter((t) => !MIGRATOR.has(t) && !COPIED_TABLES.includes(t) && !notCopied.includes(t));
  assert.deepEqual(unaccounted, [], `${dialect}: add each table to TABLES in sql-copy.ts (copied) or to NOT_COPIED_TABLES (with the reason)`);
  const stale = [...COPIED_TABLES, ...notCopied].filter((t) => !tables.includes(t));
  assert.deepEqual(stale, [], `${dialect}: sql-copy.ts names tables the schema does not have`);
}

test('every table of the migrated SQLite schema is copied by pier migrate or listed as not copied', async () => {
  const dir = await tempDir('pier-copy-tables-');
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  try {
    const { rows } = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db);
    checkTables('sqlite', rows.map((r) => r.name));
  } finally {
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
  }
});

test('every table of the migrated PostgreSQL schema is copied by pier migrate or listed as not copied', async () => {
  const { db, close } = await openFreshDatabase('h_cl_gc_copy');
  try {
    const { rows } = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(db);
    checkTables('postgres', rows.map((r) => r.name));
  } finally {
    await close();
  }
});

/** One row in each supply-chain table (the newest copied ones), through SQL as the supply store writes them. */
async function fillSupply(db: Kysely<Database>): Promise<void> {
  const meta = new SqlMetaStore(db);
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, label: 'copy' }));
  const digest = Digest.of(content);
  await meta.putManifest(parseRepositoryName('copy/app'), { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content, artifactType: undefined, subject: undefined, annotations: undefined, blobs: [], manifests: [] }, [parseTag('v1')], 'test');
  const repo = await db.selectFrom('repositories').select('id').where('name', '=', 'copy/app').executeTakeFirstOrThrow();
  await db.insertInto('vulnerabilities').values({ id: 'OSV-1', modified: '2026-01-01T00:00:00Z', record: '{}' }).execute();
  await db.insertInto('vulnerability_packages').values({ ecosystem: 'Debian', name: 'zlib', vulnerability_id: 'OSV-1' }).execute();
  await db.insertInto('vulndb_imports').values({ imported_at: 1, database_date: 1, records: 1, actor: 'test' }).execute();
  await db.insertInto('layer_inventories').values({ digest: Digest.of(Buffer.from('layer')).toString(), format: 1, inventory: '[]', created_at: 1 }).execute();
  await db
    .insertInto('image_scans')
    .values({ repository_id: Number(repo.id), digest: digest.toString(), status: 'done', source: null, inventory: '[]', findings: '[]', error: null, db_generation: 1, sbom_digest: null, scanned_at: 1, matched_at: 1 })
    .execute();
}

test('pier migrate copies the supply-chain tables: scans, the vulnerability database and the inventory cache', async () => {
  const dir = await tempDir('pier-copy-supply-');
  const source = await openSqliteDatabase(path.join(dir, 'source.db'));
  const target = await openSqliteDatabase(path.join(dir, 'target.db'));
  try {
    await fillSupply(source);
    await copyRows(source, { db: target, dialect: 'sqlite' });
    const [from, to] = [await rowCounts(source), await rowCounts(target)];
    for (const table of ['vulnerabilities', 'vulnerability_packages', 'vulndb_imports', 'layer_inventories', 'image_scans']) {
      assert.equal(from.get(table), 1, `${table} in the source`);
      assert.equal(to.get(table), 1, `${table} copied`);
    }
    assert.deepEqual(to, from);
  } finally {
    await source.destroy();
    await target.destroy();
    await rm(dir, { recursive: true, force: true });
  }
});
