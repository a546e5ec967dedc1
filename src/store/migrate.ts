/**
 * Moving a registry to other stores (`pier migrate`): an embedded registry
 * (SQLite and files) into a scale-out one (PostgreSQL and S3), or any pair
 * of adapters with the same schema. The source is only read; it must be
 * stopped or serving read-only, so nothing changes under the copy.
 *
 * Order and guarantees:
 * 1. Blobs first: every blob some repository links is streamed from the
 *    source store into the target's and committed there only if its bytes
 *    hash to its digest (the target store verifies on commit). A blob the
 *    target already holds was verified when it was committed, so a re-run
 *    skips it: the expensive work is never redone.
 * 2. Then the rows (sql-copy.ts), one transaction per table, in foreign-key
 *    order, ids kept: tags with their whole history, accounts, tokens,
 *    policies, the audit log, the webhook outbox and its cursor.
 * 3. Then the row counts of source and target are compared.
 * So a target never links a blob it lacks, and an interrupted run (even a
 * SIGKILL) is finished by running it again. Start the target registry only
 * after a run reports done.
 */
import type { Kysely } from 'kysely';
import { Digest } from '../oci/digest.js';
import type { BlobStore } from './blob/blob-store.js';
import { MigrateError } from './migrate-error.js';
import type { Dialect } from './meta/sql/migrations.js';
import type { Database } from './meta/sql/schema.js';
import { copyRows, linkedBlobs, repositoryNames, rowCounts, type TableCopied } from './meta/sql/sql-copy.js';

export { MigrateError } from './migrate-error.js';

export interface MigrationEnd {
  blobs: BlobStore;
  db: Kysely<Database>;
}

export type MigrateProgress =
  | { kind: 'blobs-planned'; total: number; bytes: number; present: number }
  | { kind: 'blob-copied'; digest: string; size: number; done: number; total: number }
  | { kind: 'table'; done: TableCopied };

export interface MigrateReport {
  blobs: { total: number; copied: number; alreadyPresent: number; bytesCopied: number };
  tables: TableCopied[];
}

/** Copies `source` into `target` (see the module comment); `jobs` blobs stream at once. */
export async function migrateRegistry(
  source: MigrationEnd,
  target: MigrationEnd & { dialect: Dialect },
  options: { jobs?: number; onProgress?: (event: MigrateProgress) => void } = {},
): Promise<MigrateReport> {
  const progress = options.onProgress ?? (() => {});
  await checkTargetHoldsOnlySource(source.db, target.db);

  const blobs = await linkedBlobs(source.db);
  const missing: { digest: Digest; size: number }[] = [];
  for (const b of blobs) {
    const digest = Digest.parse(b.digest);
    const there = await target.blobs.stat(digest);
    if (there?.size !== b.size) missing.push({ digest, size: b.size });
  }
  const present = blobs.length - missing.length;
  progress({ kind: 'blobs-planned', total: blobs.length, bytes: missing.reduce((n, b) => n + b.size, 0), present });

  let done = present;
  let bytesCopied = 0;
  const failures: string[] = [];
  const queue = [...missing];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      try {
        await copyBlob(source.blobs, target.blobs, next.digest, next.size);
        bytesCopied += next.size;
        done++;
        progress({ kind: 'blob-copied', digest: next.digest.toString(), size: next.size, done, total: blobs.length });
      } catch (err) {
        failures.push(`${next.digest.toString()}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.jobs ?? 4) }, worker));
  if (failures.length > 0) {
    throw new MigrateError(`${failures.length} blob(s) could not be copied, nothing else was changed (first: ${failures[0]})`);
  }

  const tables = await copyRows(source.db, target, (t) => progress({ kind: 'table', done: t }));
  const [from, to] = [await rowCounts(source.db), await rowCounts(target.db)];
  for (const [table, n] of from) {
    const m = to.get(table) ?? 0;
    // auth_state and lifecycle_state are upserted; the target may hold rows of its own in them.
    if (m < n) throw new MigrateError(`${table}: the target has ${m} rows after the copy, the source ${n}`);
  }
  return { blobs: { total: blobs.length, copied: missing.length, alreadyPresent: present, bytesCopied }, tables };
}

async function copyBlob(from: BlobStore, to: BlobStore, digest: Digest, size: number): Promise<void> {
  const id = await to.startUpload();
  try {
    await to.append(id, 0, await from.open(digest), { expectedBytes: size });
    await to.commit(id, digest, size);
  } catch (err) {
    await to.cancelUpload(id).catch(() => {});
    throw err;
  }
}

/** A target is empty or an earlier (interrupted) copy of this source: its repositories are the source's, id for id. */
async function checkTargetHoldsOnlySource(source: Kysely<Database>, target: Kysely<Database>): Promise<void> {
  const [mine, theirs] = [await repositoryNames(source), await repositoryNames(target)];
  for (const [id, name] of theirs) {
    if (mine.get(id) !== name) throw new MigrateError(`the target already holds repository ${name}, which is not from this source: migrate into an empty target`);
  }
}
