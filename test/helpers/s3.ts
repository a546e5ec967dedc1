/**
 * The S3-compatible store the tests use: scripts/test.sh starts one Ceph
 * RGW per run and exports PIER_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY
 * and _REGION (or they point at one already running). Each test gets its
 * own bucket ({@link testBucket}), emptied and deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';

export interface S3TestEnv {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** The test S3 endpoint; throws a clear error when the run did not provide one. */
export function s3TestEnv(): S3TestEnv {
  const env = process.env;
  const endpoint = env.PIER_TEST_S3_ENDPOINT;
  if (!endpoint) {
    throw new Error(
      'PIER_TEST_S3_ENDPOINT is not set: run the tests with `npm test` (scripts/test.sh starts Ceph RGW), or export PIER_TEST_S3_ENDPOINT, PIER_TEST_S3_ACCESS_KEY, PIER_TEST_S3_SECRET_KEY and PIER_TEST_S3_REGION for a running one',
    );
  }
  return {
    endpoint,
    accessKeyId: env.PIER_TEST_S3_ACCESS_KEY ?? '',
    secretAccessKey: env.PIER_TEST_S3_SECRET_KEY ?? '',
    region: env.PIER_TEST_S3_REGION ?? 'us-east-1',
  };
}

export function s3TestClient(env: S3TestEnv = s3TestEnv()): S3Client {
  return new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export interface TestBucket {
  name: string;
  env: S3TestEnv;
  client: S3Client;
  /** Keys in the bucket under `prefix`. */
  keys(prefix?: string): Promise<string[]>;
  /** Multipart uploads still open in the bucket. */
  openMultipartUploads(): Promise<number>;
  /** The store's config section for this bucket (storage.s3.*). */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Empties (objects and open multipart uploads) and deletes the bucket. */
  remove(): Promise<void>;
}

/** A fresh bucket of this test's own (prefix: PIER_TEST_S3_BUCKET_PREFIX, default `pier-test`). */
export async function testBucket(): Promise<TestBucket> {
  const env = s3TestEnv();
  const client = s3TestClient(env);
  const name = `${process.env.PIER_TEST_S3_BUCKET_PREFIX ?? 'pier-test'}-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: name }));
  const keys = async (prefix = ''): Promise<string[]> => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: name, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  };
  const multipart = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: name }))).Uploads ?? [];
  return {
    name,
    env,
    client,
    keys,
    openMultipartUploads: async () => (await multipart()).length,
    config: (extra = {}) => ({
      type: 's3',
      s3: { bucket: name, endpoint: env.endpoint, region: env.region, accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey, forcePathStyle: true, ...extra },
    }),
    async remove() {
      try {
        for (const u of await multipart()) await client.send(new AbortMultipartUploadCommand({ Bucket: name, Key: u.Key, UploadId: u.UploadId }));
        for (let all = await keys(); all.length > 0; all = await keys()) {
          for (let i = 0; i < all.length; i += 1000) {
            await client.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: all.slice(i, i + 1000).map((Key) => ({ Key })) } }));
          }
        }
        await client.send(new DeleteBucketCommand({ Bucket: name }));
      } finally {
        client.destroy();
      }
    },
  };
}
