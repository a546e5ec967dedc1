/**
 * `pier migrate` as users run it: a registry of 100 generated images (some
 * tags moved, so they have history; an admin, a pull-only user and a policy
 * added with the CLI) is stopped, migrated with `pier migrate --to CONFIG`,
 * SIGKILLed midway through the blobs, and run again: the re-run finishes
 * without sending again what the first run verified, a third run copies
 * nothing. Then a registry started on the target serves every tag at its
 * digest, every blob matching its digest, every tag's history, and the
 * accounts and policy (the admin's password and the puller's rights work).
 *
 * Targets: SQLite + files always; PostgreSQL + S3 when the test runner
 * provides them (PIER_TEST_PG_URL, PIER_TEST_S3_*) — see {@link targets}.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { TagHistoryResponse } from '../../src/api/pier-v1.js';
import { runCommand } from '../helpers/dockerd.js';
import { makeImage, pushImage, sha256, type TestImage } from '../helpers/images.js';
import { PIER_BIN, spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { clusterTargets, type PreparedStores } from './services.js';

const IMAGES = 100;
const REPOSITORIES = 10;
/** Every MOVED-th image is pushed again under its tag with new content: two versions, a history of create + move. */
const MOVED = 5;

interface Pushed {
  repository: string;
  tag: string;
  /** Oldest first; the last is current. */
  versions: TestImage[];
}

async function pier(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(process.execPath, [PIER_BIN, ...args], { input, timeoutMs: 120_000 });
}

/** Runs `pier migrate` and SIGKILLs it once it has verified `killAt` blobs in the target. */
async function migrateKilledAt(args: string[], killAt: number): Promise<{ signal: NodeJS.Signals | null; code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, [PIER_BIN, 'migrate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    const m = /^blobs: (\d+)\/\d+ verified/.exec(line);
    if (m && Number(m[1]) >= killAt) child.kill('SIGKILL');
  });
  child.stderr.resume();
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { signal, code, lines };
}

async function expectOk(res: Response, what: string): Promise<Response> {
  if (!res.ok) assert.fail(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

for (const target of clusterTargets()) {
  test(`pier migrate: 100 images into ${target.name}, SIGKILLed midway, re-run, verified through the target registry`, { skip: target.skip, timeout: 300_000 }, async () => {
    const dir = await tempDir('pier-migrate-');
    const source = path.join(dir, 'source');
    let reg: SpawnedRegistry | undefined;
    let ended: PreparedStores['end'] | undefined;
    try {
      // The source: pushed while open, then stopped; accounts added locally as an operator would.
      // SBOMs off: the test counts the blobs it pushed exactly (a config and a layer per version).
      reg = await spawnTestRegistry({ dataDir: source, env: { PIER_SCANNING_SBOM: 'false' } });
      const pushed: Pushed[] = [];
      for (let i = 0; i < IMAGES; i++) {
        const repository = `${i % 2 === 0 ? 'app' : 'lib'}/r${i % REPOSITORIES}`;
        const tag = `v${i}`;
        const versions = [await makeImage({ layers: [48 * 1024] })];
        if (i % MOVED === 0) versions.push(await makeImage({ layers: [48 * 1024] }));
        for (const image of versions) await pushImage(reg.url, repository, tag, image);
        pushed.push({ repository, tag, versions });
      }
      await reg.kill();
      reg = undefined;
      for (const [args, input] of [
        [['user', 'add', 'alice', '--admin', '--data', source], 'alice-password\n'],
        [['user', 'add', 'kube', '--data', source], 'kube-password\n'],
        [['policy', 'add', '--subject', 'user:kube', '--repositories', 'app/*', '--actions', 'pull', '--data', source], undefined],
      ] as const) {
        const r = await pier([...args], input);
        assert.equal(r.code, 0, r.stderr);
      }

      const t = await target.prepare(dir);
      ended = t.end;
      const targetConfig = path.join(dir, 'target.yaml');
      await writeFile(targetConfig, t.yaml);
      const args = ['--data', source, '--to', targetConfig, '--jobs', '1'];
      // A config and a layer per version, every one distinct.
      const blobTotal = pushed.reduce((n, p) => n + p.versions.length, 0) * 2;

      const first = await migrateKilledAt(args, Math.floor(blobTotal / 3));
      assert.equal(first.signal, 'SIGKILL', `the first run should be killed midway, it ended with ${first.code}: ${first.lines.join('\n')}`);
      const verifiedBeforeKill = Math.max(...first.lines.map((l) => Number(/^blobs: (\d+)\//.exec(l)?.[1] ?? 0)));
      assert.ok(verifiedBeforeKill >= blobTotal / 3 && verifiedBeforeKill < blobTotal, `killed after ${verifiedBeforeKill} of ${blobTotal} blobs`);

      const second = await pier(['migrate', ...args]);
      assert.equal(second.code, 0, second.stderr);
      const planned = /^blobs: (\d+) linked, (\d+) already in the target/m.exec(second.stdout);
      assert.ok(planned, second.stdout);
      assert.equal(Number(planned[1]), blobTotal);
      assert.ok(Number(planned[2]) >= verifiedBeforeKill, `the re-run found ${planned[2]} blobs already there, the killed run had verified ${verifiedBeforeKill}: ${second.stdout}`);
      assert.match(second.stdout, /^done: /m);

      const third = await pier(['migrate', ...args]);
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stdout, new RegExp(`^done: ${blobTotal} blobs \\(0 copied, 0B; ${blobTotal} already there\\)`, 'm'));
      // Only the two key/value tables (auth_state, lifecycle_state) are written again; every other was done.
      const recopied = third.stdout.split('\n').filter((l) => l.startsWith('rows: ') && !l.endsWith('(already copied)'));
      assert.deepEqual(recopied.map((l) => l.split(':')[1]!.trim()), ['auth_state', 'lifecycle_state'], third.stdout);

      reg = await spawnTestRegistry({ dataDir: path.join(dir, 'target-data'), args: ['--config', targetConfig] });
      const admin = { authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}` };
      const puller = { authorization: `Basic ${Buffer.from('kube:kube-password').toString('base64')}` };
      for (const p of pushed) {
        const current = p.versions[p.versions.length - 1]!;
        const res = await expectOk(await fetch(`${reg.url}/v2/${p.repository}/manifests/${p.tag}`, { headers: { ...admin, accept: current.mediaType } }), `${p.repository}:${p.tag}`);
        const body = Buffer.from(await res.arrayBuffer());
        assert.equal(sha256(body), current.digest, `${p.repository}:${p.tag}`);
        for (const version of p.versions) {
          for (const b of [version.config, ...version.layers]) {
            const blob: Buffer = Buffer.from(await (await expectOk(await fetch(`${reg.url}/v2/${p.repository}/blobs/${b.digest}`, { headers: admin }), b.digest)).arrayBuffer());
            assert.equal(sha256(blob), b.digest);
          }
        }
        const history = (await (await expectOk(await fetch(`${reg.url}/pier/v1/repositories/${p.repository}/tags/${p.tag}/history`, { headers: admin }), 'history')).json()) as TagHistoryResponse;
        assert.deepEqual(
          history.changes.map((c) => [c.action, c.newDigest]).reverse(),
          p.versions.map((v, i) => [i === 0 ? 'create' : 'move', v.digest]),
          `${p.repository}:${p.tag} history`,
        );
      }
      const app = pushed.find((p) => p.repository.startsWith('app/'))!;
      const lib = pushed.find((p) => p.repository.startsWith('lib/'))!;
      assert.equal((await fetch(`${reg.url}/v2/${app.repository}/manifests/${app.tag}`, { headers: { ...puller, accept: app.versions[0]!.mediaType } })).status, 200, 'the policy lets kube pull app/*');
      assert.equal((await fetch(`${reg.url}/v2/${lib.repository}/manifests/${lib.tag}`, { headers: puller })).status, 403, 'and nothing else');
      assert.equal((await fetch(`${reg.url}/v2/${app.repository}/manifests/${app.tag}`, { headers: { authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` } })).status, 401);
    } finally {
      await reg?.kill();
      await ended?.();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
