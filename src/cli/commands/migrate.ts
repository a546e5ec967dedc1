/**
 * `pier migrate --to CONFIG`: copies the registry in a data folder (SQLite
 * and files; stopped or read-only) into the stores another configuration
 * names, through src/store/migrate.ts. A composition root
 * (test/architecture.test.ts names it): it chooses the adapters of both ends.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { embeddedAdapters, loadConfig, type RegistryConfig } from '../../registry/config.js';
import type { BlobStore } from '../../store/blob/blob-store.js';
import { FsBlobStore } from '../../store/blob/fs/fs-blob-store.js';
import { MigrateError, migrateRegistry, type MigrateProgress, type MigrationEnd } from '../../store/migrate.js';
import type { Dialect } from '../../store/meta/sql/migrations.js';
import { openPostgresDatabase } from '../../store/meta/sql/postgres.js';
import type { Database } from '../../store/meta/sql/schema.js';
import { SqlUploadStateStore } from '../../store/meta/sql/sql-upload-state-store.js';
import { openSqliteDatabase, openSqliteReadOnly } from '../../store/meta/sql/sqlite.js';
import { S3BlobStore } from '../../store/blob/s3/s3-blob-store.js';
import type { Kysely } from 'kysely';
import { formatBytes } from '../../shared/bytes.js';
import { parseFlags, UsageError, type Command, type Io } from '../command.js';
import type { Scope } from '../scope.js';
import { DATA_FLAGS, DATA_USAGE } from './auth-common.js';

export const migrate: Command = {
  name: 'migrate',
  summary: 'Copy a registry (SQLite and files) into the stores another config names (PostgreSQL and S3)',
  usage: `Usage: pier migrate --to CONFIG [--data DIR | --config FILE]

Copies the registry in DIR — stop it first, or keep it read-only — into the
database and storage that CONFIG (a pier serve YAML file) names: every blob
some repository links, verified against its digest as it lands; then
repositories, manifests, tags with their whole history, users, groups,
tokens, policies, the audit log and the webhook outbox, ids kept.

Interrupted (Ctrl-C, a crash, a killed process), run it again: blobs already
in the target are not sent again, tables already copied are skipped. Start
registries on the target only after it prints 'done'.

Options:
  --to CONFIG         the target's configuration file (required; the
                      environment's PIER_* variables are not applied to it)
  --jobs N            blobs copied at once (default 4)
${DATA_USAGE}`,
  async run(args, io, scope) {
    const { values, positionals } = parseFlags('migrate', args, { ...DATA_FLAGS, to: { type: 'string' }, jobs: { type: 'string' } });
    if (positionals.length > 0) throw new UsageError("migrate: takes no arguments (see 'pier help migrate')");
    if (!values.to) throw new UsageError("migrate: name the target's configuration with --to CONFIG (see 'pier help migrate')");
    const jobs = values.jobs === undefined ? 4 : Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new UsageError('migrate: --jobs must be a whole number from 1 to 64');

    const sourceConfig = await loadConfig({ file: values.config ?? io.env.PIER_CONFIG, env: io.env, flags: { data: values.data } });
    const targetConfig = await loadConfig({ file: values.to, env: {} });
    const source = await openSource(sourceConfig, scope);
    const target = await openTarget(targetConfig, sourceConfig, scope);
    const started = Date.now();
    const report = await migrateRegistry(source, target, { jobs, onProgress: printer(io) });
    const copied = report.tables.filter((t) => !t.skipped).length;
    io.stdout.write(
      `done: ${report.blobs.total} blobs (${report.blobs.copied} copied, ${formatBytes(report.blobs.bytesCopied, 'docker')}; ${report.blobs.alreadyPresent} already there), ` +
        `${report.tables.length} tables (${copied} copied, ${report.tables.length - copied} already done) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  },
};

/** At most about 100 progress lines for the blobs, one per table. */
function printer(io: Io): (event: MigrateProgress) => void {
  let every = 1;
  return (event) => {
    switch (event.kind) {
      case 'blobs-planned':
        every = Math.max(1, Math.floor(event.total / 100));
        io.stdout.write(`blobs: ${event.total} linked, ${event.present} already in the target, ${formatBytes(event.bytes, 'docker')} to copy\n`);
        break;
      case 'blob-copied':
        if (event.done % every === 0 || event.done === event.total) io.stdout.write(`blobs: ${event.done}/${event.total} verified in the target\n`);
        break;
      case 'table':
        io.stdout.write(`rows: ${event.done.table}: ${event.done.rows}${event.done.skipped ? ' (already copied)' : ''}\n`);
        break;
    }
  };
}

async function openSource(config: RegistryConfig, scope: Scope): Promise<MigrationEnd> {
  const { storage, database } = embeddedAdapters(config);
  if (database.type !== 'sqlite' || storage.type !== 'fs') {
    throw new MigrateError(`the source is ${database.type} and ${storage.type}: pier migrate copies an embedded registry (SQLite and files)`);
  }
  const exists = await stat(database.path).then((s) => s.isFile(), () => false);
  if (!exists) throw new UsageError(`migrate: no Pier database in ${config.data} (${database.path} does not exist); name the source's data folder with --data DIR`, 1);
  const db = await openSqliteReadOnly(database.path);
  scope.defer(() => db.destroy());
  const blobs = await FsBlobStore.open(storage.path);
  scope.use(blobs);
  return { db, blobs };
}

/** The target's stores, created and migrated to this version's schema: SQLite or PostgreSQL, files or S3. */
async function openTarget(config: RegistryConfig, source: RegistryConfig, scope: Scope): Promise<MigrationEnd & { dialect: Dialect }> {
  const database = config.database;
  let db: Kysely<Database>;
  if (database.type === 'postgres') {
    db = await openPostgresDatabase(database.url);
  } else {
    const from = embeddedAdapters(source).database;
    const sourceDb = from.type === 'sqlite' ? from.path : '';
    if (path.resolve(database.path) === path.resolve(sourceDb)) throw new MigrateError(`the target's database is the source's (${sourceDb}): the target config must name another`);
    db = await openSqliteDatabase(database.path, { synchronous: database.synchronous });
  }
  scope.defer(() => db.destroy());
  const storage = config.storage;
  // S3 upload sessions keep their state in the target's database, as on a replica.
  const blobs: BlobStore = storage.type === 'fs' ? await FsBlobStore.open(storage.path) : await S3BlobStore.open(storage, new SqlUploadStateStore(db));
  scope.use(blobs);
  return { db, blobs, dialect: database.type };
}
