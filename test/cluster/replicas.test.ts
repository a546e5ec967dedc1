/**
 * Pier scaled out, as users run it: three `pier serve` replicas on one
 * PostgreSQL database and one S3 bucket behind haproxy round-robin with no
 * stickiness (cluster.ts), every client talking to haproxy only.
 *
 * - the OCI conformance port passes through the balancer, automatic
 *   cross-mount on and off (each a fresh cluster);
 * - `pier push --chunk-size 1M`: consecutive chunks of one upload are
 *   answered by different replicas (their request logs say so), all three
 *   take part; skopeo pushes and pulls; every digest is checked;
 * - replicas SIGKILLed at random moments (at least 50 kill points, each
 *   restarted) while `pier push` processes run concurrently: every push
 *   completes after the client's retries, every tag resolves, every blob
 *   matches its digest.
 *
 * Needs PIER_TEST_PG_URL and PIER_TEST_S3_* (scripts/test.sh provides them)
 * and a `pier serve` with database.type postgres and storage.type s3.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runCommand } from '../helpers/dockerd.js';
import { makeImage, sha256, writeOciLayout, type TestImage } from '../helpers/images.js';
import { PIER_BIN, REPO_ROOT, tempDir } from '../helpers/registry.js';
import { hasCommand, skopeo } from '../helpers/tools.js';
import { clusterSkip, startCluster, type TestCluster } from './cluster.js';

const skip = clusterSkip();

async function pier(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000) {
  return runCommand(process.execPath, [PIER_BIN, ...args], { env, timeoutMs });
}

/** Every blob and the manifest of `image` in `repo`, fetched through `url`, match their digests. */
async function checkImage(url: string, repo: string, tag: string, image: TestImage, headers: Record<string, string> = {}): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { ...headers, accept: image.mediaType } });
  assert.equal(res.status, 200, `${repo}:${tag}: ${res.status}`);
  const manifest = JSON.parse(Buffer.from(await res.arrayBuffer()).toString()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
    const blob = await fetch(`${url}/v2/${repo}/blobs/${d}`, { headers });
    assert.equal(blob.status, 200, `${repo}@${d}: ${blob.status}`);
    assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), d, `${repo}@${d} does not match its digest`);
  }
}

test('conformance through haproxy over three replicas, automatic cross-mount on and off', { skip, timeout: 900_000 }, async () => {
  for (const mount of [true, false]) {
    // No automatic SBOM: the suite counts referrers exactly, and the CycloneDX referrer Pier adds to each image would change the count.
    const cluster = await startCluster({ extraYaml: `uploads:\n  automaticMount: ${mount}\nscanning:\n  sbom: false\n` });
    try {
      const r = await runCommand(process.execPath, ['--test', '--test-reporter=tap', path.join(REPO_ROOT, 'dist', 'test', 'conformance.test.js')], {
        // NODE_TEST_CONTEXT (set by the outer runner) would make the inner one report to it, not as TAP.
        env: { PIER_CONFORMANCE_URL: cluster.url, OCI_AUTOMATIC_CROSSMOUNT: mount ? '1' : '0', NODE_TEST_CONTEXT: undefined },
        timeoutMs: 400_000,
      });
      const fail = /^# fail (\d+)/m.exec(r.stdout)?.[1];
      const pass = Number(/^# pass (\d+)/m.exec(r.stdout)?.[1] ?? 0);
      assert.equal(fail, '0', `automaticMount ${mount}: ${r.stdout.split('\n').filter((l) => /^\s*not ok/.test(l)).join('\n')}`);
      assert.ok(pass >= 70, `automaticMount ${mount}: only ${pass} specs passed`);
      // Every replica answered part of the suite.
      for (const replica of cluster.replicas) assert.ok(replica.requests().length > 20, `${replica.name} answered ${replica.requests().length} requests`);
    } finally {
      await cluster.stop();
    }
  }
});

let cluster: TestCluster | undefined;
let work = '';
before(async () => {
  if (skip) return;
  work = await tempDir('pier-cluster-work-');
  cluster = await startCluster();
});
after(async () => {
  await cluster?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('pier push --chunk-size 1M: every chunk of one upload on another replica; skopeo push and pull; every digest verified', { skip, timeout: 300_000 }, async () => {
  const c = cluster!;
  const image = await makeImage({ layers: [5 * 1024 * 1024 + 12345], gzip: false });
  const layout = path.join(work, 'chunked');
  await writeOciLayout(layout, [{ tag: 'v1', image }]);
  const r = await pier(['push', `oci:${layout}:v1`, `${c.host}/cluster/chunked:v1`, '--chunk-size', '1M', '--jobs', '1', '--compression', 'none', '--format', 'plain']);
  assert.equal(r.code, 0, r.stderr);
  await checkImage(c.url, 'cluster/chunked', 'v1', image);

  // The layer's upload session: its PATCHes in the order they were answered (one client, one request at a time),
  // and which replica answered each.
  const patches = c.replicas
    .flatMap((replica) => replica.requests().filter((q) => q.method === 'PATCH' && q.url.startsWith('/v2/cluster/chunked/blobs/uploads/')).map((q) => ({ replica: replica.name, at: q.at, session: q.url.split('/').pop()!.split('?')[0]! })))
    .sort((a, b) => a.at - b.at);
  const sessions = new Map<string, string[]>();
  for (const p of patches) sessions.set(p.session, [...(sessions.get(p.session) ?? []), p.replica]);
  const layer = [...sessions.values()].find((replicas) => replicas.length >= 6);
  assert.ok(layer, `no upload of 6 chunks found: ${JSON.stringify([...sessions.values()])}`);
  assert.equal(new Set(layer).size, 3, `the chunks went to ${JSON.stringify(layer)}`);
  // Round-robin with a new connection per request and one request at a time: each chunk on another replica than the one before.
  for (let i = 1; i < layer.length; i++) assert.notEqual(layer[i], layer[i - 1], `chunks ${i} and ${i + 1} both on ${layer[i]}: ${JSON.stringify(layer)}`);

  if (await hasCommand('skopeo')) {
    const image2 = await makeImage({ layers: [300_000, 70_000] });
    const src = path.join(work, 'skopeo-src');
    await writeOciLayout(src, [{ tag: 'v1', image: image2 }]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:v1`, `docker://${c.host}/cluster/skopeo:v1`]);
    await checkImage(c.url, 'cluster/skopeo', 'v1', image2);
    const out = path.join(work, 'skopeo-out');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${c.host}/cluster/skopeo:v1`, `oci:${out}:v1`]);
    for (const b of [image2.config, ...image2.layers]) {
      assert.equal(sha256(await readFile(path.join(out, 'blobs', 'sha256', b.digest.slice(7)))), b.digest);
    }
  }
});

test('SIGKILL a random replica at 50+ moments during concurrent pushes: every push completes, every tag resolves, every blob matches', { skip, timeout: 600_000 }, async () => {
  const c = cluster!;
  const KILLS = 50;
  const PUSHERS = 4;
  const images: { repo: string; tag: string; image: TestImage; layout: string }[] = [];
  for (let i = 0; i < 24; i++) {
    const image = await makeImage({ layers: [600_000 + i * 1000, 200_000], gzip: false });
    const layout = path.join(work, `kill-${i}`);
    await mkdir(layout, { recursive: true });
    await writeOciLayout(layout, [{ tag: 'v1', image }]);
    images.push({ repo: `kill/r${i % 6}`, tag: `t${i}`, image, layout });
  }

  let pushing = true;
  let kills = 0;
  const killer = (async () => {
    // Kill one replica at a random moment, bring it back, repeat, while pushes run and until 50 kill points.
    while (pushing || kills < KILLS) {
      await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 250)));
      const up = c.replicas.filter((r) => r.running());
      const victim = up[Math.floor(Math.random() * up.length)]!;
      await victim.kill();
      kills++;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 200)));
      // A restart on a loaded machine can miss spawnTestRegistry's 20 s; try again rather than end the test.
      for (let attempt = 1; ; attempt++) {
        try {
          await victim.restart();
          break;
        } catch (err) {
          if (attempt >= 3) throw err;
        }
      }
    }
  })();

  const failures: string[] = [];
  let next = 0;
  const pusher = async () => {
    // Each image is pushed until it succeeds: pier push resumes what the registry already has.
    for (let i = next++; i < images.length; i = next++) {
      const { repo, tag, layout } = images[i]!;
      let attempts = 0;
      for (;;) {
        attempts++;
        const r = await pier(['push', `oci:${layout}:v1`, `${c.host}/${repo}:${tag}`, '--chunk-size', '256K', '--compression', 'none', '--format', 'plain']);
        if (r.code === 0) break;
        if (attempts >= 20) {
          failures.push(`${repo}:${tag}: ${r.stderr.trim()}`);
          break;
        }
      }
    }
  };
  // Keep pushing the set again (new tags) until the killer has had its 50 moments.
  let round = 0;
  while (round === 0 || kills < KILLS) {
    next = 0;
    await Promise.all(Array.from({ length: PUSHERS }, pusher));
    round++;
    if (round > 10) break;
  }
  pushing = false;
  await killer;
  for (const r of c.replicas) await r.restart();

  assert.deepEqual(failures, [], 'every push completes after retries');
  assert.ok(kills >= KILLS, `${kills} kill points`);
  for (const { repo, tag, image } of images) await checkImage(c.url, repo, tag, image);
});


test('access control through the balancer: pier login, push and pull, with token and registry requests on different replicas', { skip, timeout: 300_000 }, async () => {
  const secured = await startCluster({
    extraYaml: 'auth:\n  initialAdmin:\n    name: root\n    password: root-password-1\n  throttle:\n    failures: 0\n',
  });
  const home = await tempDir('pier-cluster-auth-');
  try {
    const env = { DOCKER_CONFIG: path.join(home, 'docker'), HOME: home };
    const ok = await runCommand(process.execPath, [PIER_BIN, 'login', secured.host, '-u', 'root', '--password-stdin'], { env, input: 'root-password-1\n', timeoutMs: 60_000 });
    assert.equal(ok.code, 0, `${ok.stderr}\n${secured.replicas.flatMap((r) => r.errors()).join('\n')}`);
    const image = await makeImage({ layers: [2 * 1024 * 1024], gzip: false });
    const layout = path.join(home, 'src');
    await writeOciLayout(layout, [{ tag: 'v1', image }]);
    const push = await pier(['push', `oci:${layout}:v1`, `${secured.host}/private/app:v1`, '--chunk-size', '512K', '--compression', 'none', '--format', 'plain'], env);
    assert.equal(push.code, 0, push.stderr);
    const out = path.join(home, 'out');
    const pull = await pier(['pull', `${secured.host}/private/app:v1`, `oci:${out}`], env);
    assert.equal(pull.code, 0, pull.stderr);
    for (const b of [image.config, ...image.layers]) assert.equal(sha256(await readFile(path.join(out, 'blobs', 'sha256', b.digest.slice(7)))), b.digest);
    // Without credentials: refused.
    assert.equal((await fetch(`${secured.url}/v2/private/app/manifests/v1`)).status, 401);

    // Tokens came from some replicas and were accepted by the others.
    const issuers = secured.replicas.filter((r) => r.requests().some((q) => q.url.startsWith('/auth/token') && q.status === 200)).map((r) => r.name);
    const servers = secured.replicas.filter((r) => r.requests().some((q) => q.url.startsWith('/v2/private/app/') && q.status < 300)).map((r) => r.name);
    assert.ok(issuers.length > 0 && servers.length === 3, `tokens from ${issuers.join(',')}, authorized requests on ${servers.join(',')}`);
    assert.ok(servers.some((s) => !issuers.includes(s)) || issuers.length > 1, 'a token issued by one replica was accepted by another');
  } finally {
    await secured.stop();
    await rm(home, { recursive: true, force: true });
  }
});
