/**
 * Real clients through Pier scaled out: three `pier serve` replicas on one
 * PostgreSQL database and one S3 bucket behind haproxy round-robin with no
 * stickiness (cluster.ts), every client naming haproxy only.
 *
 * - podman pushes an image from its own containers-storage, removes it and
 *   pulls it back;
 * - a real Docker Engine (dockerd 20.10, private data-root) pushes an image
 *   to two repositories (the second by cross-repository mount), containerd
 *   (`ctr`, its own root) pulls and unpacks it, and Docker pulls it back;
 * - containerd pushes an imported image (`ctr images push`);
 * - `docker manifest create` + `push`: an index over images of two other
 *   repositories, pulled by containerd for every platform;
 * - with `storage.s3.redirect` (a second cluster): Docker, containerd and
 *   podman follow the replicas' 307s to presigned RGW URLs;
 * - with access control (a third cluster): `docker login` and push,
 *   containerd and podman pull with credentials, tokens issued by one
 *   replica accepted by the others.
 *
 * After each push, the manifest digest the client reported is what a HEAD
 * answers through the balancer and on each replica directly, and every blob
 * fetched from each replica and through the balancer hashes to its digest;
 * containerd's own copies of the blobs are re-hashed too. Each client's
 * requests (told apart by its User-Agent in the replicas' request logs)
 * landed on more than one replica, and at least one of its upload sessions
 * was continued on another replica than the one that opened it.
 *
 * One cluster for the file, its own database, bucket, ports and folders
 * (replicas.test.ts can run beside it). Needs PIER_TEST_PG_URL and
 * PIER_TEST_S3_* (scripts/test.sh provides them), podman, skopeo, dockerd,
 * containerd and ctr (scripts/install-deps.sh).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { makeImage, sha256, writeDockerArchive, writeOciLayout } from '../helpers/images.js';
import { tempDir } from '../helpers/registry.js';
import { podman, run } from '../helpers/tools.js';
import { clusterSkip, startCluster, type ClusterReplica, type TestCluster } from './cluster.js';

const skip = clusterSkip();

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

let cluster: TestCluster | undefined;
let dockerd: Dockerd | undefined;
let containerd: Containerd | undefined;
let work = '';

before(async () => {
  if (skip) return;
  work = await tempDir('pier-cluster-clients-');
  // Each is kept as soon as it runs, so `after` stops what started when another one failed.
  const started = await Promise.allSettled([
    startCluster().then((x) => (cluster = x)),
    startDockerd().then((x) => (dockerd = x)),
    startContainerd().then((x) => (containerd = x)),
  ]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
});

after(async () => {
  if (work) await podman(work, ['system', 'reset', '--force']).catch(() => undefined);
  await Promise.allSettled([cluster?.stop(), dockerd?.stop(), containerd?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

function c(): TestCluster {
  assert.ok(cluster);
  return cluster;
}

/**
 * `repo:tag` has the manifest `digest` everywhere: HEAD through the balancer
 * and on each replica, the GET body hashes to it, and every blob it names,
 * fetched from each replica and through the balancer, hashes to its digest
 * and has its size. Returns the blob digests (config first).
 */
async function verifyEverywhere(repo: string, tag: string, digest: string, on: TestCluster = c()): Promise<string[]> {
  const hosts = [on.host, ...on.replicas.map((r) => r.host)];
  for (const host of hosts) {
    const head = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_TYPES } });
    assert.equal(head.status, 200, `HEAD ${repo}:${tag} on ${host}`);
    assert.equal(head.headers.get('docker-content-digest'), digest, `HEAD ${repo}:${tag} on ${host}`);
  }
  const res = await fetch(`${on.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: MANIFEST_TYPES } });
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(sha256(body), digest, `the manifest of ${repo}:${tag} hashes to its digest`);
  const manifest = JSON.parse(body.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  const blobs = [manifest.config, ...manifest.layers];
  for (const b of blobs) {
    for (const host of hosts) {
      const got = await fetch(`http://${host}/v2/${repo}/blobs/${b.digest}`);
      assert.equal(got.status, 200, `${repo}@${b.digest} on ${host}`);
      const data = Buffer.from(await got.arrayBuffer());
      assert.equal(data.length, b.size, `${repo}@${b.digest} on ${host}: size`);
      assert.equal(sha256(data), b.digest, `${repo}@${b.digest} on ${host} does not match its digest`);
    }
  }
  return blobs.map((b) => b.digest);
}

interface Seen {
  replica: string;
  method: string;
  url: string;
  status: number;
}

/** Requests under /v2/REPO/ whose User-Agent matches `agent`, on every replica (answered at `since` or later). */
function requestsOf(agent: RegExp, repo: string, on: TestCluster = c(), since = 0): Seen[] {
  return on.replicas.flatMap((r: ClusterReplica) =>
    r
      .requests()
      .filter((q) => agent.test(q.agent) && q.url.startsWith(`/v2/${repo}/`) && q.at >= since)
      .map((q) => ({ replica: r.name, method: q.method, url: q.url, status: q.status })),
  );
}

/**
 * The client's requests reached more than one replica; with `sessionsMove`,
 * at least one upload session was continued on another replica than an
 * earlier request of it (PATCH then PUT on different replicas). The POST
 * that opens a session does not name it in the URL, so a client that opens
 * with POST and finishes with one PUT (containerd) shows one request per
 * session: for it only the spread is checked.
 */
function assertSpread(what: string, seen: Seen[], sessionsMove: boolean): void {
  const replicas = new Set(seen.map((s) => s.replica));
  assert.ok(replicas.size > 1, `${what}: ${seen.length} requests, all on ${[...replicas].join(',')}`);
  if (!sessionsMove) return;
  const sessions = new Map<string, Set<string>>();
  for (const s of seen) {
    const id = /\/blobs\/uploads\/([^/?]+)/.exec(s.url)?.[1];
    if (id) sessions.set(id, (sessions.get(id) ?? new Set()).add(s.replica));
  }
  assert.ok(sessions.size > 0, `${what}: no upload session seen: ${JSON.stringify(seen)}`);
  // One session on several replicas: its state came from the database and the bucket.
  assert.ok([...sessions.values()].some((r) => r.size > 1), `${what}: every upload session stayed on one replica: ${JSON.stringify(seen)}`);
}

test('podman push, then pull, through haproxy over three replicas: digests match everywhere, requests spread', { skip, timeout: 240_000 }, async () => {
  const image = await makeImage({ layers: [3 * 1024 * 1024 + 4321, 150_000] });
  const layout = path.join(work, 'podman-layout');
  await writeOciLayout(layout, [{ tag: 'v1', image }]);
  const storage = `containers-storage:[overlay@${path.join(work, 'root')}+${path.join(work, 'runroot')}]localhost/pier-cluster:v1`;
  await run('skopeo', ['copy', `oci:${layout}:v1`, storage], { env: { TMPDIR: work } });
  const ref = `${c().host}/clients/podman:v1`;
  const digestFile = path.join(work, 'podman-digest');
  await podman(work, ['push', '--tls-verify=false', '--digestfile', digestFile, 'localhost/pier-cluster:v1', ref]);
  const digest = (await readFile(digestFile, 'utf8')).trim();
  assert.match(digest, /^sha256:[a-f0-9]{64}$/);
  await verifyEverywhere('clients/podman', 'v1', digest);
  const pushes = requestsOf(/^containers\//, 'clients/podman');
  assertSpread('podman push', pushes, true);

  await podman(work, ['rmi', '--all', '--force']);
  const since = Date.now();
  await podman(work, ['pull', '--tls-verify=false', ref]);
  const inspect = JSON.parse((await podman(work, ['image', 'inspect', ref])).stdout) as { Digest: string; RepoDigests: string[] }[];
  assert.equal(inspect[0]?.Digest, digest);
  assert.ok(inspect[0]?.RepoDigests.includes(`${c().host}/clients/podman@${digest}`), JSON.stringify(inspect[0]?.RepoDigests));
  const pulls = requestsOf(/^containers\//, 'clients/podman', c(), since);
  assert.ok(pulls.some((q) => q.method === 'GET' && q.url.includes('/blobs/sha256:')), `podman pulled through the balancer: ${JSON.stringify(pulls)}`);
  assertSpread('podman pull', pulls, false);
});

test('Docker Engine push (and a cross-repository mount), then containerd pull, through haproxy over three replicas', { skip, timeout: 240_000 }, async () => {
  assert.ok(dockerd && containerd);
  // Past S3's 5 MiB minimum part: one PATCH leaves a part and a staged tail that the PUT, maybe on another replica, completes.
  const image = await makeImage({ layers: [7 * 1024 * 1024 + 777, 200_000], docker: true });
  const archive = path.join(work, 'docker.tar');
  await writeDockerArchive(archive, image, 'local/app:v1');
  await dockerd.docker(['load', '-i', archive]);

  // The registry on 127.0.0.1 is insecure (plain HTTP) for dockerd without configuration.
  const ref = `${c().host}/clients/docker:v1`;
  await dockerd.docker(['tag', 'local/app:v1', ref]);
  const pushed = await dockerd.docker(['push', ref], { timeoutMs: 180_000 });
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1];
  assert.ok(digest, pushed.stdout);
  const blobs = await verifyEverywhere('clients/docker', 'v1', digest);
  const docker = /^docker\//;
  assertSpread('docker push', requestsOf(docker, 'clients/docker'), true);

  // The same image to another repository: docker mounts every blob from the first, on whichever replica it lands.
  const copy = `${c().host}/clients/docker-copy:v1`;
  await dockerd.docker(['tag', 'local/app:v1', copy]);
  const again = await dockerd.docker(['push', copy], { timeoutMs: 180_000 });
  assert.match(again.stdout, /Mounted from clients\/docker/, again.stdout);
  assert.equal(/digest: (sha256:[a-f0-9]{64})/.exec(again.stdout)?.[1], digest, again.stdout);
  await verifyEverywhere('clients/docker-copy', 'v1', digest);

  // containerd pulls what Docker pushed: it verifies each blob as it fetches and unpacks the layers.
  const out = await containerd.pull(ref);
  assert.match(out, /done/);
  assert.equal(await containerd.imageDigest(ref), digest);
  const content = await containerd.contentDigests();
  for (const d of [digest, ...blobs]) {
    assert.ok(content.includes(d), `containerd has ${d}: ${content.join(' ')}`);
    // containerd's own copy of the bytes, hashed again.
    const file = path.join(containerd.dir, 'root', 'io.containerd.content.v1.content', 'blobs', 'sha256', d.slice(7));
    assert.equal(sha256(await readFile(file)), d, `containerd's copy of ${d}`);
  }
  const pulls = requestsOf(/^containerd\//, 'clients/docker');
  assert.ok(pulls.some((q) => q.method === 'GET' && q.url.includes('/manifests/')), `containerd fetched the manifest: ${JSON.stringify(pulls)}`);
  assertSpread('containerd pull', pulls, false);

  // And Docker pulls it back: the very image (its ID is the config's digest) it pushed.
  await dockerd.docker(['rmi', ref, copy, 'local/app:v1']);
  // Log times have millisecond resolution; the pull starts after this.
  const since = Date.now();
  const pulled = await dockerd.docker(['pull', ref], { timeoutMs: 180_000 });
  assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`), pulled.stdout);
  assert.equal((await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim(), image.config.digest);
  assertSpread('docker pull', requestsOf(docker, 'clients/docker', c(), since), false);
});

test('containerd push (ctr images push) of an imported image, through haproxy over three replicas', { skip, timeout: 240_000 }, async () => {
  assert.ok(containerd);
  const image = await makeImage({ layers: [6 * 1024 * 1024 + 31, 10_000], docker: true });
  const ref = `${c().host}/clients/ctr:v1`;
  const archive = path.join(work, 'ctr.tar');
  await writeDockerArchive(archive, image, ref);
  await containerd.ctr(['images', 'import', archive]);
  const since = Date.now();
  await containerd.ctr(['images', 'push', '--plain-http', ref], 180_000);
  const digest = await containerd.imageDigest(ref);
  assert.match(digest, /^sha256:[a-f0-9]{64}$/);
  const blobs = await verifyEverywhere('clients/ctr', 'v1', digest);
  assert.equal(blobs[0], image.config.digest, 'the config pushed is the one imported');
  // containerd uploads each blob with POST then one PUT: the spread is checked, not a session's move (assertSpread).
  assertSpread('containerd push', requestsOf(/^containerd\//, 'clients/ctr', c(), since), false);
});

test('docker manifest create + push: an index over images of two other repositories (blobs mounted, manifests put by digest), then containerd pulls every platform', { skip, timeout: 240_000 }, async () => {
  assert.ok(dockerd && containerd);
  // Docker's image of the test before and another one it pushes now, each in its own repository. (Not ctr's
  // image: the Docker CLI re-indents a child manifest before pushing it into the list's repository, which changes
  // the digest of any manifest not written as Docker writes them; distribution 2.8 then refuses the list alike.)
  const other = await makeImage({ layers: [80_000], docker: true });
  const archive = path.join(work, 'other.tar');
  await writeDockerArchive(archive, other, 'local/other:v1');
  await dockerd.docker(['load', '-i', archive]);
  const a = `${c().host}/clients/docker:v1`;
  const b = `${c().host}/clients/docker-arm:v1`;
  await dockerd.docker(['tag', 'local/other:v1', b]);
  await dockerd.docker(['push', b], { timeoutMs: 180_000 });
  const list = `${c().host}/clients/multi:1.0`;
  await dockerd.docker(['manifest', 'create', '--insecure', list, a, b]);
  await dockerd.docker(['manifest', 'annotate', '--arch', 'arm64', list, b]);
  const since = Date.now();
  const out = await dockerd.docker(['manifest', 'push', '--insecure', '--purge', list], { timeoutMs: 180_000 });
  const digest = out.stdout.trim().split('\n').pop() ?? '';
  assert.match(digest, /^sha256:[a-f0-9]{64}$/, out.stdout);
  // The Docker CLI itself (not the daemon) pushes the list: it names itself Docker-Client.
  assertSpread('docker manifest push', requestsOf(/^Docker-Client\//, 'clients/multi', c(), since), false);

  const hosts = [c().host, ...c().replicas.map((r) => r.host)];
  for (const host of hosts) {
    const head = await fetch(`http://${host}/v2/clients/multi/manifests/1.0`, { method: 'HEAD', headers: { accept: MANIFEST_TYPES } });
    assert.equal(head.headers.get('docker-content-digest'), digest, `HEAD on ${host}: ${head.status}`);
  }
  const res = await fetch(`${c().url}/v2/clients/multi/manifests/1.0`, { headers: { accept: MANIFEST_TYPES } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(sha256(body), digest);
  const index = JSON.parse(body.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] };
  assert.deepEqual(index.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
  // Each child, now in clients/multi too, with every blob it names.
  for (const m of index.manifests) await verifyEverywhere('clients/multi', m.digest, m.digest);

  await containerd.pull(list, { allPlatforms: true });
  assert.equal(await containerd.imageDigest(list), digest);
  assertSpread('containerd pull (index)', requestsOf(/^containerd\//, 'clients/multi', c(), since), false);
});

test('storage.s3.redirect on: Docker, containerd and podman pulls follow the replicas\' 307s to presigned S3 URLs', { skip, timeout: 240_000 }, async () => {
  assert.ok(dockerd && containerd);
  const redirecting = await startCluster({ env: { PIER_STORAGE_S3_REDIRECT: 'true' } });
  try {
    const image = await makeImage({ layers: [2 * 1024 * 1024 + 99, 50_000], docker: true });
    const archive = path.join(work, 'redirect.tar');
    await writeDockerArchive(archive, image, 'local/redirect:v1');
    await dockerd.docker(['load', '-i', archive]);
    const ref = `${redirecting.host}/clients/redirect:v1`;
    await dockerd.docker(['tag', 'local/redirect:v1', ref]);
    const pushed = await dockerd.docker(['push', ref], { timeoutMs: 180_000 });
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);
    const blobs = await verifyEverywhere('clients/redirect', 'v1', digest, redirecting);
    const redirected = await fetch(`${redirecting.url}/v2/clients/redirect/blobs/${blobs[1]!}`, { redirect: 'manual' });
    assert.equal(redirected.status, 307, 'blob GETs are redirected');

    /** The client's blob GETs: each answered with a 307 (the bytes came from S3), on more than one replica. */
    const blobGets = (agent: RegExp) => {
      const gets = requestsOf(agent, 'clients/redirect', redirecting).filter((q) => q.method === 'GET' && q.url.includes('/blobs/sha256:'));
      assert.ok(gets.length >= blobs.length, `${agent.source}: ${JSON.stringify(gets)}`);
      assert.ok(gets.every((q) => q.status === 307), `${agent.source}: ${JSON.stringify(gets)}`);
      return gets;
    };

    await dockerd.docker(['rmi', ref, 'local/redirect:v1']);
    const pulled = await dockerd.docker(['pull', ref], { timeoutMs: 180_000 });
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`), pulled.stdout);
    assert.equal((await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim(), image.config.digest);
    assertSpread('docker pull (redirect)', blobGets(/^docker\//), false);

    await containerd.pull(ref);
    assert.equal(await containerd.imageDigest(ref), digest);
    for (const d of blobs) {
      const file = path.join(containerd.dir, 'root', 'io.containerd.content.v1.content', 'blobs', 'sha256', d.slice(7));
      assert.equal(sha256(await readFile(file)), d, `containerd's copy of ${d}`);
    }
    assertSpread('containerd pull (redirect)', blobGets(/^containerd\//), false);

    await podman(work, ['pull', '--tls-verify=false', ref]);
    const inspect = JSON.parse((await podman(work, ['image', 'inspect', ref])).stdout) as { Digest: string }[];
    assert.equal(inspect[0]?.Digest, digest);
    assertSpread('podman pull (redirect)', blobGets(/^containers\//), false);
  } finally {
    await redirecting.stop();
  }
});

test('access control through the balancer: docker login and push, containerd and podman pull with credentials; tokens from one replica accepted by the others', { skip, timeout: 240_000 }, async () => {
  assert.ok(dockerd && containerd);
  const secured = await startCluster({ extraYaml: 'auth:\n  initialAdmin:\n    name: root\n    password: root-password-1\n' });
  try {
    const image = await makeImage({ layers: [1024 * 1024 + 5, 30_000], docker: true });
    const archive = path.join(work, 'secured.tar');
    await writeDockerArchive(archive, image, 'local/secured:v1');
    await dockerd.docker(['load', '-i', archive]);
    const ref = `${secured.host}/private/app:v1`;
    await dockerd.docker(['tag', 'local/secured:v1', ref]);
    const refused = await dockerd.dockerResult(['push', ref], { timeoutMs: 120_000 });
    assert.notEqual(refused.code, 0, 'a push without login is refused');

    await dockerd.docker(['login', secured.host, '-u', 'root', '--password-stdin'], { input: 'root-password-1\n' });
    try {
      const pushed = await dockerd.docker(['push', ref], { timeoutMs: 180_000 });
      const digest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1];
      assert.ok(digest, pushed.stdout);
      assert.equal((await fetch(`${secured.url}/v2/private/app/manifests/v1`, { method: 'HEAD' })).status, 401);
      const basic = `Basic ${Buffer.from('root:root-password-1').toString('base64')}`;
      for (const host of [secured.host, ...secured.replicas.map((r) => r.host)]) {
        const head = await fetch(`http://${host}/v2/private/app/manifests/v1`, { method: 'HEAD', headers: { accept: MANIFEST_TYPES, authorization: basic } });
        assert.equal(head.headers.get('docker-content-digest'), digest, `HEAD on ${host}: ${head.status}`);
      }

      // Docker's tokens came from some replicas, its authorized requests were answered by others too.
      const docker = secured.replicas.map((r) => ({ name: r.name, requests: r.requests().filter((q) => /^docker\//.test(q.agent)) }));
      const issuers = docker.filter((r) => r.requests.some((q) => q.url.startsWith('/auth/token') && q.status === 200)).map((r) => r.name);
      const servers = docker.filter((r) => r.requests.some((q) => q.url.startsWith('/v2/private/app/') && q.status < 300)).map((r) => r.name);
      assert.ok(issuers.length > 0 && servers.length > 1, `docker: tokens from ${issuers.join(',')}, authorized requests on ${servers.join(',')}`);
      assert.ok(servers.some((s) => !issuers.includes(s)) || issuers.length > 1, `docker: tokens from ${issuers.join(',')}, authorized requests on ${servers.join(',')}`);

      await assert.rejects(containerd.pull(ref), /401|unauthorized|authorization/i, 'containerd without credentials is refused');
      await containerd.pull(ref, { user: 'root:root-password-1' });
      assert.equal(await containerd.imageDigest(ref), digest);
      assertSpread('containerd pull (access control)', requestsOf(/^containerd\//, 'private/app', secured).filter((q) => q.status < 300), false);

      await podman(work, ['pull', '--tls-verify=false', '--creds', 'root:root-password-1', ref]);
      const inspect = JSON.parse((await podman(work, ['image', 'inspect', ref])).stdout) as { Digest: string }[];
      assert.equal(inspect[0]?.Digest, digest);
      assertSpread('podman pull (access control)', requestsOf(/^containers\//, 'private/app', secured).filter((q) => q.status < 300), false);
    } finally {
      await dockerd.dockerResult(['logout', secured.host]);
    }
  } finally {
    await secured.stop();
  }
});
