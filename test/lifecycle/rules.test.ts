/**
 * Lifecycle rules a user notices: immutable tags (push over, delete and
 * rollback refused with DENIED and the reason; an admin may override),
 * retention (`pier retention --dry-run` lists, `--apply` deletes and
 * records it), and quotas (a push that would pass one is refused before a
 * byte is stored; shared blobs count once per namespace; the SBOM the
 * registry writes for each image is outside quotas). Also: a bad rule in the config is one line naming it.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/registry/config.js';
import type { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { blob, makeImage, writeOciLayout, type TestImage } from '../helpers/images.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { waitForSbom } from '../helpers/scans.js';
import { skopeo } from '../helpers/tools.js';
import { as, cliIo, PASSWORD, userGate } from './helpers.js';

let reg: TestRegistry;
let work: string;
const alice = as('alice');
const admin = as('admin');

before(async () => {
  work = await tempDir('pier-rules-');
  reg = await startTestRegistry(
    {
      tags: { immutable: [{ repository: 'rules/**', tags: ['v*'], except: ['v*-rc'] }] },
      retention: { schedule: 0, rules: [{ repository: 'rules/ret', keepLast: 2, keepDays: 7, keep: ['release-*'] }] },
      quotas: [
        { namespace: 'small', limit: '16KiB' },
        { namespace: 'tight', limit: '8KiB' },
      ],
    },
    { gate: userGate },
  );
});

after(async () => {
  await reg.close();
  await rm(work, { recursive: true, force: true });
});

/** Pushes as alice over HTTP (monolithic uploads); returns the manifest response. */
async function push(repo: string, reference: string, image: TestImage, user = alice): Promise<Response> {
  for (const b of [image.config, ...image.layers]) {
    const res = await user(`${reg.url}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data });
    if (res.status !== 201) return res;
  }
  return user(`${reg.url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  return body.errors[0]!;
}

async function digestOf(repo: string, tag: string): Promise<string | null> {
  const res = await alice(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD' });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

describe('immutable tags', () => {
  test('pushing over, deleting and rolling back an immutable tag is DENIED with the reason', async () => {
    const a = await makeImage();
    const b = await makeImage();
    assert.equal((await push('rules/app', 'v1.0', a)).status, 201);
    assert.equal((await push('rules/app', 'v1.0', a)).status, 201, 're-pushing the same digest is fine');
    const over = await push('rules/app', 'v1.0', b);
    assert.equal(over.status, 403);
    const e = await errorOf(over);
    assert.equal(e.code, 'DENIED');
    assert.match(e.message, /tag v1\.0 in rules\/app is immutable \(rule: repository rules\/\*\*, tags v\*\); cannot move it/);
    assert.equal(await digestOf('rules/app', 'v1.0'), a.digest);

    // Mutable: `latest`, and the excepted release candidates.
    assert.equal((await push('rules/app', 'latest', a)).status, 201);
    assert.equal((await push('rules/app', 'latest', b)).status, 201);
    assert.equal((await push('rules/app', 'v2.0-rc', a)).status, 201);
    assert.equal((await push('rules/app', 'v2.0-rc', b)).status, 201);

    for (const ref of ['v1.0', a.digest]) {
      const del = await alice(`${reg.url}/v2/rules/app/manifests/${ref}`, { method: 'DELETE' });
      assert.equal(del.status, 403, `DELETE ${ref}`);
      assert.match((await errorOf(del)).message, /immutable.*cannot be deleted/);
    }
    const rb = await alice(`${reg.url}/pier/v1/repositories/rules/app/tags/v1.0/rollback`, { method: 'POST' });
    assert.equal(rb.status, 403);
    assert.equal(await digestOf('rules/app', 'v1.0'), a.digest);
  });

  test('only an admin can override, through the Pier API; the delete is recorded', async () => {
    const notAdmin = await alice(`${reg.url}/pier/v1/repositories/rules/app/tags/v1.0?override=immutable`, { method: 'DELETE' });
    assert.equal(notAdmin.status, 403);
    assert.match((await errorOf(notAdmin)).message, /needs an admin; alice is not one/);
    const ok = await admin(`${reg.url}/pier/v1/repositories/rules/app/tags/v1.0?override=immutable`, { method: 'DELETE' });
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(await digestOf('rules/app', 'v1.0'), null);
    const h = (await (await alice(`${reg.url}/pier/v1/repositories/rules/app/tags/v1.0/history`)).json()) as { changes: { action: string; actor: string }[] };
    assert.deepEqual(h.changes[0], { ...h.changes[0], action: 'delete', actor: 'admin' });
  });
});

describe('retention', () => {
  test('--dry-run lists, --apply deletes what no criterion keeps, recorded as retention', async () => {
    const repo = 'rules/ret';
    const tags = ['t1', 't2', 't3', 't4', 't5', 't6', 'release-1', 'v9'];
    for (const t of tags) assert.equal((await push(repo, t, await makeImage({ layers: [100] }))).status, 201);
    // Age every tag to a month old (oldest first), then pull t1 today.
    const db = (reg.meta as SqlMetaStore).db;
    const monthAgo = Date.now() - 30 * 86_400_000;
    const { id } = await db.selectFrom('repositories').select('id').where('name', '=', repo).executeTakeFirstOrThrow();
    for (const [i, t] of tags.entries()) await db.updateTable('tags').set({ updated_at: monthAgo + i * 1000 }).where('repository_id', '=', id).where('name', '=', t).execute();
    assert.equal((await alice(`${reg.url}/v2/${repo}/manifests/t1`)).status, 200);
    await reg.lifecycle.pulls.flush();

    // Kept: v9 and release-1 (the two last pushed; also immutable / matching release-*), t1 (pulled within 7 days).
    const dry = await cliIo(work, reg.host, 'admin');
    assert.equal(await dry.run(['retention', reg.host, '--dry-run', '--format', 'json']), 0, dry.errors());
    const planned = (JSON.parse(dry.output()) as { deleted: { tag: string }[] }).deleted.map((d) => d.tag).sort();
    assert.deepEqual(planned, ['t2', 't3', 't4', 't5', 't6']);
    // Checked in the tag list: a HEAD of t2 would count as a pull, which keeps it (once the pull log is flushed).
    const listed = (await (await alice(`${reg.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(listed.tags.sort(), [...tags].sort(), 'a dry run deletes nothing');

    const nonAdmin = await cliIo(work, reg.host, 'alice');
    assert.equal(await nonAdmin.run(['retention', reg.host, '--apply']), 1);
    assert.match(nonAdmin.errors(), /needs an admin/);

    const apply = await cliIo(work, reg.host, 'admin');
    assert.equal(await apply.run(['retention', reg.host, '--apply']), 0, apply.errors());
    assert.match(apply.output(), /5 tag\(s\) deleted, 3 kept/);
    const list = (await (await alice(`${reg.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(list.tags.sort(), ['release-1', 't1', 'v9']);
    const h = (await (await alice(`${reg.url}/pier/v1/repositories/${repo}/tags/t4/history`)).json()) as { changes: { action: string; actor: string }[] };
    assert.deepEqual(
      h.changes.map((c) => [c.action, c.actor]),
      [
        ['delete', 'retention'],
        ['create', 'alice'],
      ],
    );
  });
});

describe('quotas', () => {
  async function usage() {
    return (await (await admin(`${reg.url}/pier/v1/usage`)).json()) as {
      repositories: { repository: string; bytes: number }[];
      namespaces: { namespace: string; bytes: number; limit?: number }[];
    };
  }
  const files = async () => {
    let n = 0;
    for await (const _ of reg.blobs.list()) n++;
    return n;
  };

  test('a blob shared by two repositories counts once for the namespace and for each repository', async () => {
    const image = await makeImage({ layers: [2000] });
    assert.equal((await push('small/a', 'v1', image)).status, 201);
    assert.equal((await push('small/c', 'v1', image)).status, 201);
    // Each repository gets its SBOM (on by default); it is not counted (decision 0120).
    for (const r of ['small/a', 'small/c']) assert.ok(await waitForSbom(reg.url, r, image.digest, admin), `an SBOM in ${r}`);
    const blobBytes = image.config.size + image.layers[0]!.size;
    const u = await usage();
    for (const r of ['small/a', 'small/c']) assert.equal(u.repositories.find((x) => x.repository === r)?.bytes, blobBytes + image.manifest.length);
    const ns = u.namespaces.find((n) => n.namespace === 'small')!;
    assert.equal(ns.bytes, blobBytes + 2 * image.manifest.length);
    assert.equal(ns.limit, 16 * 1024);
  });

  test('a push that would pass the quota is refused before anything is stored', async () => {
    const before = await usage();
    const filesBefore = await files();
    const big = await makeImage({ layers: [20_000], gzip: false });
    const layer = big.layers[0]!;

    // Monolithic: the declared size is checked before a byte is read.
    const res = await alice(`${reg.url}/v2/small/big/blobs/uploads/?digest=${layer.digest}`, { method: 'POST', body: layer.data });
    assert.equal(res.status, 403);
    const e = await errorOf(res);
    assert.equal(e.code, 'DENIED');
    assert.match(e.message, /quota exceeded: namespace small uses .* of its 16\.0 KiB quota \(rule small\); this push needs \d+\.\d KiB more/);

    // Chunked with a declared length: refused at the PATCH.
    const start = await alice(`${reg.url}/v2/small/big/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const patch = await alice(`${reg.url}${start.headers.get('location')!}`, { method: 'PATCH', body: layer.data, headers: { 'content-range': `0-${layer.size - 1}` } });
    assert.equal(patch.status, 403);

    // A real client: skopeo's push fails with the quota message.
    await writeOciLayout(path.join(work, 'big'), [{ tag: 'v1', image: big }]);
    await assert.rejects(
      skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${PASSWORD}`, `oci:${path.join(work, 'big')}:v1`, `docker://${reg.host}/small/big:v1`]),
      /quota exceeded/,
    );

    assert.equal(await files(), filesBefore, 'no blob was stored');
    assert.equal((await alice(`${reg.url}/v2/small/big/blobs/${layer.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal((await alice(`${reg.url}/v2/small/big/manifests/v1`, { method: 'HEAD' })).status, 404);
    assert.deepEqual((await usage()).namespaces.find((n) => n.namespace === 'small'), before.namespaces.find((n) => n.namespace === 'small'));
    // Another namespace has no quota.
    assert.equal((await push('large/big', 'v1', big)).status, 201);
  });

  test('the SBOM the registry writes is outside the quota', async () => {
    const image = await makeImage({ layers: [5000], gzip: false });
    assert.equal((await push('tight/app', 'v1', image)).status, 201);
    const imageBytes = image.config.size + image.layers[0]!.size + image.manifest.length;
    const sbom = await waitForSbom(reg.url, 'tight/app', image.digest, admin);
    assert.ok(sbom, 'an SBOM was written though the namespace is nearly full');
    let sbomBytes = Number((await admin(`${reg.url}/v2/tight/app/manifests/${sbom.digest}`, { method: 'HEAD' })).headers.get('content-length'));
    for (const d of sbom.blobs) sbomBytes += Number((await admin(`${reg.url}/v2/tight/app/blobs/${d}`, { method: 'HEAD' })).headers.get('content-length'));

    const u = await usage();
    assert.equal(u.namespaces.find((n) => n.namespace === 'tight')?.bytes, imageBytes, 'the namespace is charged for the image only');
    assert.equal(u.repositories.find((r) => r.repository === 'tight/app')?.bytes, imageBytes);

    // What is left of the quota is the user's: a blob of exactly that size fits, though the SBOM is larger than it.
    const left = 8 * 1024 - imageBytes;
    assert.ok(left > 0 && left < sbomBytes, `the test needs 0 < ${left} < ${sbomBytes}`);
    const filler = blob(Buffer.alloc(left, 7));
    assert.equal((await alice(`${reg.url}/v2/tight/app/blobs/uploads/?digest=${filler.digest}`, { method: 'POST', body: filler.data })).status, 201);
    const one = blob(Buffer.from('x'));
    assert.equal((await alice(`${reg.url}/v2/tight/app/blobs/uploads/?digest=${one.digest}`, { method: 'POST', body: one.data })).status, 403, 'and the quota is then full');

  });
});

describe('configuration', () => {
  test('a bad rule is one line naming it', async () => {
    const dir = await tempDir('pier-rules-config-');
    try {
      const cases: [string, RegExp][] = [
        ['tags:\n  immutable:\n    - repository: "app/*"\n', /^invalid configuration: tags\.immutable\[0\]\.tags: is required/],
        ['retention:\n  rules:\n    - keepLast: -1\n', /^invalid configuration: retention\.rules\[0\]\.keepLast: must be a non-negative integer/],
        ['quotas:\n  - namespace: team\n    limit: lots\n', /^invalid configuration: quotas\[0\]\.limit: must be a size/],
        ['webhooks:\n  endpoints:\n    - name: ci\n      url: ftp://x\n', /^invalid configuration: webhooks\.endpoints\[0\]\.url: must be an http\(s\) URL/],
        ['webhooks:\n  endpoints:\n    - name: ci\n      url: http://x\n      events: [pushed]\n', /^invalid configuration: webhooks\.endpoints\[0\]\.events\[0\]: must be one of push, tag_move, delete, rollback/],
        ['gc:\n  gracePeriod: soon\n', /^invalid configuration: gc\.gracePeriod: must be a duration/],
        ['history:\n  kept: 3\n', /^invalid configuration: history\.kept: unknown key/],
      ];
      for (const [yaml, expected] of cases) {
        const file = path.join(dir, 'pier.yaml');
        await writeFile(file, yaml);
        await assert.rejects(loadConfig({ file }), (err: Error) => {
          assert.match(err.message, expected);
          assert.equal(err.message.includes('\n'), false);
          return true;
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
