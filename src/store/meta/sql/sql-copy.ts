/**
 * Copies the rows of one metadata database into another with the same
 * schema (`pier migrate`: SQLite into PostgreSQL, or into another SQLite).
 * A bulk copy of the store, not a change to any repository: rows keep their
 * ids, so tag history, webhook deliveries and audit entries stay in order
 * and foreign keys stay true.
 *
 * Resumable and idempotent: each table is copied in one target transaction
 * that also records, in `lifecycle_state` (`migrate.rows.<table>`), how many
 * source rows it copied. A re-run skips a table whose recorded count equals
 * the source's; any other table is copied again with `on conflict do
 * nothing`, so rows already there are kept, never doubled.
 *
 * Transient state is not copied ({@link NOT_COPIED_TABLES}, each with its
 * reason): upload sessions (their bytes are in the source's storage), quota
 * reservations, the coordinator's rows, signing keys and UI sessions.
 * `test/store/sql-copy-tables.test.ts` fails when a table of the schema is
 * in neither list.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from './migrations.js';
import type { Database } from './schema.js';

interface TableSpec {
  name: keyof Database;
  /** The primary key, in order: the copy walks the table by it (keyset pages). */
  key: string[];
  /** The key is an identity column: PostgreSQL needs OVERRIDING SYSTEM VALUE and its sequence moved past the copied ids. */
  identity?: true;
  /** A small key/value table: the source's values replace the target's. */
  upsert?: string[];
}

/** In foreign-key order. */
const TABLES: TableSpec[] = [
  { name: 'repositories', key: ['id'], identity: true },
  { name: 'repository_blobs', key: ['repository_id', 'digest'] },
  { name: 'manifests', key: ['repository_id', 'digest'] },
  { name: 'manifest_references', key: ['repository_id', 'manifest_digest', 'child_digest'] },
  { name: 'tags', key: ['repository_id', 'name'] },
  { name: 'tag_history', key: ['id'], identity: true },
  { name: 'users', key: ['name'] },
  { name: 'groups', key: ['name'] },
  { name: 'group_members', key: ['group_name', 'user_name'] },
  { name: 'access_tokens', key: ['name'] },
  { name: 'refresh_tokens', key: ['secret_hash'] },
  { name: 'policy_rules', key: ['id'], identity: true },
  { name: 'audit_log', key: ['id'], identity: true },
  { name: 'auth_state', key: ['id'], upsert: ['generation'] },
  { name: 'tag_pulls', key: ['repository_id', 'tag'] },
  { name: 'lifecycle_state', key: ['key'], upsert: ['value'] },
  { name: 'webhook_deliveries', key: ['id'], identity: true },
  { name: 'webhook_attempts', key: ['id'], identity: true },
  // Supply chain (decision 0095): the imported vulnerability database, each manifest's scan (its findings decide
  // the serve policy; its SBOM referrer is a manifest copied above) and the per-layer inventory cache.
  { name: 'vulnerabilities', key: ['id'] },
  { name: 'vulnerability_packages', key: ['ecosystem', 'name', 'vulnerability_id'] },
  { name: 'vulndb_imports', key: ['id'], identity: true },
  { name: 'layer_inventories', key: ['digest'] },
  { name: 'image_scans', key: ['repository_id', 'digest'] },
];

/** The tables {@link copyRows} copies, in order. */
export const COPIED_TABLES: readonly string[] = TABLES.map((t) => t.name);

/** The tables {@link copyRows} leaves behind on purpose, and why. */
export const NOT_COPIED_TABLES: Readonly<Partial<Record<keyof Database, string>>> = {
  uploads: 'upload sessions: their bytes are in the source storage; clients start again',
  blob_uploads: "an S3 upload session's parts: transient, like uploads",
  quota_reservations: 'reservations of pushes in flight: none while the source is stopped or read-only',
  coordinator_claims: 'coordinator state of running replicas',
  coordinator_fences: 'coordinator state of running replicas',
  coordinator_locks: 'coordinator state of running replicas',
  coordinator_leases: 'coordinator state of running replicas',
  coordinator_counters: 'coordinator state of running replicas (throttle windows)',
  signing_keys: 'token signing keys: the target makes its own; issued tokens live minutes (decision 0085)',
  ui_sessions: 'web UI sign-ins: users sign in again, as for tokens',
};

const PAGE_ROWS = 500;
/** A page is flushed early past this many bytes of row data (manifests are up to 4 MiB each). */
const PAGE_BYTES = 8 * 1024 * 1024;
const MARK = 'migrate.rows.';

export interface TableCopied {
  table: string;
  rows: number;
  /** Already copied by an earlier run with the same source count: nothing was done. */
  skipped: boolean;
}

type Row = Record<string, unknown>;

/**
 * Copies every table of {@link COPIED_TABLES} from `source` into `target`
 * (already migrated to the same schema), calling `onTable` after each.
 */
export async function copyRows(source: Kysely<Database>, target: { db: Kysely<Database>; dialect: Dialect }, onTable: (done: TableCopied) => void = () => {}): Promise<TableCopied[]> {
  const done: TableCopied[] = [];
  for (const spec of TABLES) {
    const count = await countRows(source, spec.name);
    if (!spec.upsert && (await copiedCount(target.db, spec.name)) === count) {
      done.push({ table: spec.name, rows: count, skipped: true });
      onTable(done[done.length - 1]!);
      continue;
    }
    await target.db.transaction().execute(async (tx) => {
      for await (const page of pages(source, spec)) await insertPage(tx, target.dialect, spec, page);
      if (spec.identity && target.dialect === 'postgres') {
        await sql`select setval(pg_get_serial_sequence(${spec.name}, 'id'), greatest(coalesce((select max(id) from ${sql.table(spec.name)}), 0), 1))`.execute(tx);
      }
      if (!spec.upsert) await markCopied(tx, spec.name, count);
    });
    done.push({ table: spec.name, rows: count, skipped: false });
    onTable(done[done.length - 1]!);
  }
  if (target.dialect === 'postgres') await placeCommitCursor(target.db);
  return done;
}

/**
 * PostgreSQL fans webhooks out in commit order, from an (xid, id) cursor
 * (sql-lifecycle-store.ts). The copied history rows all carry the xid of the
 * transaction that copied them, so the source's cursor (an id) becomes
 * (that xid, id): rows the source had not fanned out yet are still sent,
 * rows it had are not sent again. Without a source cursor nothing is placed:
 * the first replica to start treats everything before it as old history.
 */
async function placeCommitCursor(db: Kysely<Database>): Promise<void> {
  const cursor = await db.selectFrom('lifecycle_state').select('value').where('key', '=', 'webhook_cursor').executeTakeFirst();
  if (!cursor) return;
  const { rows } = await sql<{ xid: string }>`select xid::text as xid from tag_history order by xid limit 1`.execute(db);
  if (rows.length === 0) return;
  await db
    .insertInto('lifecycle_state')
    .values({ key: 'webhook_cursor_xid', value: Number(rows[0]!.xid) })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: Number(rows[0]!.xid) }))
    .execute();
}

/** Rows of each copied table in `db` (for checking a copy), `migrate.rows.*` marks left out. */
export async function rowCounts(db: Kysely<Database>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const spec of TABLES) {
    const n = spec.name === 'lifecycle_state'
      ? Number((await sql<{ n: number | string }>`select count(*) as n from lifecycle_state where key not like ${`${MARK}%`}`.execute(db)).rows[0]?.n ?? 0)
      : await countRows(db, spec.name);
    counts.set(spec.name, n);
  }
  return counts;
}

/** Every blob some repository links, with its size, in digest order. */
export async function linkedBlobs(db: Kysely<Database>): Promise<{ digest: string; size: number }[]> {
  const rows = await db.selectFrom('repository_blobs').select(['digest']).select((eb) => eb.fn.max('size').as('size')).groupBy('digest').orderBy('digest').execute();
  return rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
}

/** Repositories by id, for checking that a target holds nothing but an earlier copy of the source. */
export async function repositoryNames(db: Kysely<Database>): Promise<Map<number, string>> {
  const rows = await db.selectFrom('repositories').select(['id', 'name']).execute();
  return new Map(rows.map((r) => [Number(r.id), r.name]));
}

async function countRows(db: Kysely<Database>, table: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

async function copiedCount(db: Kysely<Database>, table: string): Promise<number | undefined> {
  const row = await db.selectFrom('lifecycle_state').select('value').where('key', '=', `${MARK}${table}`).executeTakeFirst();
  return row === undefined ? undefined : Number(row.value);
}

async function markCopied(db: Kysely<Database>, table: string, count: number): Promise<void> {
  await db
    .insertInto('lifecycle_state')
    .values({ key: `${MARK}${table}`, value: count })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: count }))
    .execute();
}

/** The table in key order, a page at a time (keyset: `where (key) > (last) order by key`). */
async function* pages(db: Kysely<Database>, spec: TableSpec): AsyncGenerator<Row[]> {
  const keys = sql.join(spec.key.map((k) => sql.ref(k)));
  let last: unknown[] | undefined;
  for (;;) {
    const after = last ? sql`where (${keys}) > (${sql.join(last)})` : sql``;
    const { rows } = await sql<Row>`select * from ${sql.table(spec.name)} ${after} order by ${keys} limit ${PAGE_ROWS}`.execute(db);
    if (rows.length === 0) return;
    let page: Row[] = [];
    let bytes = 0;
    for (const row of rows) {
      page.push(row);
      bytes += rowBytes(row);
      if (bytes >= PAGE_BYTES) {
        yield page;
        page = [];
        bytes = 0;
      }
    }
    if (page.length > 0) yield page;
    const end = rows[rows.length - 1]!;
    last = spec.key.map((k) => end[k]);
    if (rows.length < PAGE_ROWS) return;
  }
}

function rowBytes(row: Row): number {
  let n = 0;
  for (const v of Object.values(row)) n += Buffer.isBuffer(v) ? v.length : typeof v === 'string' ? v.length : 8;
  return n;
}

async function insertPage(db: Kysely<Database>, dialect: Dialect, spec: TableSpec, rows: Row[]): Promise<void> {
  const columns = Object.keys(rows[0]!);
  const values = sql.join(rows.map((row) => sql`(${sql.join(columns.map((c) => row[c]))})`));
  const override = spec.identity && dialect === 'postgres' ? sql`overriding system value` : sql``;
  const conflict: RawBuilder<unknown> = spec.upsert
    ? sql`on conflict (${sql.join(spec.key.map((k) => sql.ref(k)))}) do update set ${sql.join(spec.upsert.map((c) => sql`${sql.ref(c)} = excluded.${sql.ref(c)}`))}`
    : sql`on conflict do nothing`;
  await sql`insert into ${sql.table(spec.name)} (${sql.join(columns.map((c) => sql.ref(c)))}) ${override} values ${values} ${conflict}`.execute(db);
}
