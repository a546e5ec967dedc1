/**
 * The shared stores every configuration of the cluster benchmark runs on: one
 * PostgreSQL server and one S3 endpoint, named by `PIER_TEST_PG_URL` and
 * `PIER_TEST_S3_*` (bench/cluster/run starts its own when they are unset).
 * Each configuration gets its own database and its own bucket, named
 * `<prefix>…` (`PIER_BENCH_NAME_PREFIX`, default `pier-bench`), and every one
 * made here is dropped by {@link Stores.removeAll}, also after a failure.
 */
import { randomBytes } from 'node:crypto';
import { AbortMultipartUploadCommand, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { s3TestClient, s3TestEnv } from '../../test/helpers/s3.js';
import type { S3TestEnv } from '../../test/helpers/s3.js';

// The SDK's Node-version notice on stderr is noise here (decision 0080).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface Stores {
  readonly pgAdminUrl: string;
  readonly s3: S3TestEnv;
  /** A new empty database; its URL. */
  database(label: string): Promise<string>;
  /** A new empty bucket; its name. */
  bucket(label: string): Promise<string>;
  /** Drops every database and removes every bucket (objects and open multipart uploads first) made here. */
  removeAll(): Promise<void>;
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function emptyAndDelete(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const uploads = (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    if (uploads.length === 0) break;
    for (const u of uploads) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
  for (;;) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export function openStores(): Stores {
  const pgAdminUrl = process.env.PIER_TEST_PG_URL;
  if (!pgAdminUrl) throw new Error('PIER_TEST_PG_URL is not set (bench/cluster/run starts a PostgreSQL when it is unset)');
  const s3 = s3TestEnv();
  const client = s3TestClient(s3);
  const prefix = (process.env.PIER_BENCH_NAME_PREFIX ?? 'pier-bench').toLowerCase();
  const databases: string[] = [];
  const buckets: string[] = [];
  const name = (label: string): string => `${prefix}-${label}-${randomBytes(4).toString('hex')}`;
  return {
    pgAdminUrl,
    s3,
    async database(label) {
      const db = name(label).replace(/[^a-z0-9_]/g, '_');
      await withAdmin(pgAdminUrl, (c) => c.query(`create database "${db}"`));
      databases.push(db);
      const url = new URL(pgAdminUrl);
      url.pathname = `/${db}`;
      return url.toString();
    },
    async bucket(label) {
      const bucket = name(label);
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      buckets.push(bucket);
      return bucket;
    },
    async removeAll() {
      const problems: string[] = [];
      for (const b of buckets.splice(0)) await emptyAndDelete(client, b).catch((err: unknown) => problems.push(`bucket ${b}: ${String(err)}`));
      for (const d of databases.splice(0)) {
        await withAdmin(pgAdminUrl, (c) => c.query(`drop database if exists "${d}" with (force)`)).catch((err: unknown) => problems.push(`database ${d}: ${String(err)}`));
      }
      client.destroy();
      if (problems.length > 0) throw new Error(`cleaning up: ${problems.join('; ')}`);
    },
  };
}
