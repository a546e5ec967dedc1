/**
 * The stores the scale-out tests run on, each test with its own: a fresh
 * PostgreSQL database on the runner's server (`PIER_TEST_PG_URL`) and a
 * fresh bucket on its S3 store (`PIER_TEST_S3_ENDPOINT`,
 * `PIER_TEST_S3_ACCESS_KEY`, `PIER_TEST_S3_SECRET_KEY`, `PIER_TEST_S3_REGION`),
 * dropped and emptied afterwards. Without them, the tests that need them are
 * skipped with a reason that says which variable is missing.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';

// The SDK's Node-version notice on stderr is noise here (decision 0080).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface PreparedStores {
  /** The config's `database:` and `storage:` sections (and `data:` beside `dir`), as YAML. */
  yaml: string;
  /** Drops the database, empties and deletes the bucket. */
  end: () => Promise<void>;
}

export interface ClusterTarget {
  name: string;
  /** Why the test is skipped, or false. */
  skip: string | false;
  prepare(dir: string): Promise<PreparedStores>;
}

export interface S3Settings {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export function s3Settings(env: NodeJS.ProcessEnv = process.env): S3Settings | undefined {
  const { PIER_TEST_S3_ENDPOINT: endpoint, PIER_TEST_S3_ACCESS_KEY: accessKeyId, PIER_TEST_S3_SECRET_KEY: secretAccessKey } = env;
  if (!endpoint || !accessKeyId || !secretAccessKey) return undefined;
  return { endpoint, accessKeyId, secretAccessKey, region: env.PIER_TEST_S3_REGION ?? 'us-east-1' };
}

/** Why PostgreSQL + S3 tests cannot run here, or false. */
export function scaleOutSkip(env: NodeJS.ProcessEnv = process.env): string | false {
  const missing = [!env.PIER_TEST_PG_URL && 'PIER_TEST_PG_URL', !s3Settings(env) && 'PIER_TEST_S3_ENDPOINT/ACCESS_KEY/SECRET_KEY'].filter(Boolean);
  return missing.length > 0 ? `needs PostgreSQL and S3 (${missing.join(', ')} not set)` : false;
}

/** A fresh database on the test server; its URL, and how to drop it. */
export async function freshDatabase(prefix = 'h_cluster'): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.PIER_TEST_PG_URL!;
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

function s3Client(s: S3Settings): S3Client {
  return new S3Client({ endpoint: s.endpoint, region: s.region, forcePathStyle: true, credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    // A store that accepts and never answers (a full Ceph OSD) fails the test's setup instead of hanging it.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 30_000, throwOnRequestTimeout: true },
  });
}

/** A fresh bucket on the test S3 store; its name, and how to empty and delete it. */
export async function freshBucket(prefix = 'h-cluster'): Promise<{ bucket: string; drop(): Promise<void> }> {
  const s = s3Settings()!;
  const bucket = `${prefix}-${randomBytes(6).toString('hex')}`;
  const client = s3Client(s);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    bucket,
    async drop() {
      try {
        for (;;) {
          const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
          const keys = (listed.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
          if (keys.length === 0) break;
          await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
        }
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
    },
  };
}

/** The `database:` and `storage:` YAML of a scale-out registry on `url` and `bucket`. */
export function scaleOutYaml(url: string, bucket: string): string {
  const s = s3Settings()!;
  return [
    'database:',
    '  type: postgres',
    `  url: ${JSON.stringify(url)}`,
    'storage:',
    '  type: s3',
    '  s3:',
    `    endpoint: ${JSON.stringify(s.endpoint)}`,
    `    region: ${JSON.stringify(s.region)}`,
    `    bucket: ${JSON.stringify(bucket)}`,
    `    accessKeyId: ${JSON.stringify(s.accessKeyId)}`,
    `    secretAccessKey: ${JSON.stringify(s.secretAccessKey)}`,
    '    forcePathStyle: true',
    '',
  ].join('\n');
}

/** Where `pier migrate` tests copy to: another embedded registry, and PostgreSQL + S3 when the runner has them. */
export function clusterTargets(): ClusterTarget[] {
  return [
    {
      name: 'SQLite + files',
      skip: false,
      prepare: (dir) => Promise.resolve({ yaml: `data: ${JSON.stringify(path.join(dir, 'target-data'))}\n`, end: () => Promise.resolve() }),
    },
    {
      name: 'PostgreSQL + S3',
      skip: scaleOutSkip(),
      async prepare(dir) {
        const db = await freshDatabase();
        try {
          const bucket = await freshBucket();
          return {
            yaml: `data: ${JSON.stringify(path.join(dir, 'target-data'))}\n${scaleOutYaml(db.url, bucket.bucket)}`,
            async end() {
              await bucket.drop();
              await db.drop();
            },
          };
        } catch (err) {
          await db.drop();
          throw err;
        }
      },
    },
  ];
}
