/**
 * `pier serve` on PostgreSQL, end to end: two replicas (separate
 * processes, each with its own data folder) started at once on one fresh
 * database and one shared blob folder.
 * They migrate once between them, create the initial admin and the token
 * signing key once, and act as one registry: skopeo pushes through one and
 * pulls through the other, a token issued by one is accepted by the other,
 * and the tag's history is the same on both.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { migrationProvider } from '../../src/store/meta/sql/migrations.js';
import { makeImage, writeOciLayout, type TestImage } from '../helpers/images.js';
import { freshDatabase, type TestDatabase } from '../helpers/postgres.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/tools.js';

describe('pier serve --database postgres: two replicas on one database', () => {
  let database: TestDatabase;
  let work: string;
  let layout: string;
  let images: TestImage[];
  const replicas: SpawnedRegistry[] = [];
  const basic = `Basic ${Buffer.from('admin:admin-password-1').toString('base64')}`;

  before(async () => {
    database = await freshDatabase('replicas');
    work = await tempDir('pier-pg-replicas-');
    layout = path.join(work, 'layout');
    images = [await makeImage({ layers: [40_000, 5_000] }), await makeImage({ layers: [30_000] })];
    await writeOciLayout(layout, [
      { tag: 'v1', image: images[0]! },
      { tag: 'v2', image: images[1]! },
    ]);
    // Each replica its own data folder (and so its own auth.keys folder); the blobs in one shared folder.
    const env = { PIER_DATABASE_TYPE: 'postgres', PIER_DATABASE_URL: database.url, PIER_AUTH_INITIAL_ADMIN_PASSWORD: 'admin-password-1', PIER_STORAGE_PATH: path.join(work, 'blobs') };
    // Both at once: the migrations, the initial admin and the signing key are each made once.
    const started = await Promise.allSettled([0, 1].map((i) => spawnTestRegistry({ dataDir: path.join(work, `data-${i}`), env })));
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });
  after(async () => {
    for (const r of replicas) await r.kill();
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function token(replica: SpawnedRegistry, scope: string): Promise<string> {
    const res = await fetch(`${replica.url}/auth/token?service=pier&scope=${encodeURIComponent(scope)}`, { headers: { authorization: basic } });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { token: string }).token;
  }

  test('one schema, one admin, one signing key', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const count = async (q: string) => Number((await client.query<{ n: string }>(q)).rows[0]!.n);
      assert.equal(await count('select count(*) as n from kysely_migration'), Object.keys(await migrationProvider('postgres').getMigrations()).length);
      assert.equal(await count(`select count(*) as n from users where name = 'admin'`), 1);
      assert.equal(await count('select count(*) as n from signing_keys'), 1);
    } finally {
      await client.end();
    }
  });

  test('skopeo pushes through one replica and pulls through the other; tokens cross replicas', async () => {
    const [a, b] = replicas as [SpawnedRegistry, SpawnedRegistry];
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'admin:admin-password-1', `oci:${layout}:v1`, `docker://${a.host}/team/app:latest`]);
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'admin:admin-password-1', `oci:${layout}:v2`, `docker://${b.host}/team/app:latest`]);
    const back = path.join(work, 'back');
    await skopeo(['copy', '--src-tls-verify=false', '--src-creds', 'admin:admin-password-1', `docker://${a.host}/team/app:latest`, `oci:${back}:latest`]);
    const index = JSON.parse(await readFile(path.join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, images[1]!.digest, 'the tag moved by b is what a serves');

    // A token from a, used at b (and the other way round).
    for (const [issuer, server] of [
      [a, b],
      [b, a],
    ] as const) {
      const bearer = await token(issuer, 'repository:team/app:pull');
      const res = await fetch(`${server.url}/v2/team/app/manifests/latest`, { method: 'HEAD', headers: { authorization: `Bearer ${bearer}`, accept: images[1]!.mediaType } });
      assert.equal(res.status, 200, `a token from ${issuer.host} is accepted by ${server.host}`);
      assert.equal(res.headers.get('docker-content-digest'), images[1]!.digest);
    }
    const bad = await fetch(`${b.url}/v2/team/app/manifests/latest`, { method: 'HEAD', headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(bad.status, 401);
  });
});
