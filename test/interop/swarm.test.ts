/**
 * A one-node Docker Swarm (dockerd 20.10) running a service from a private
 * Pier: `docker service create --with-registry-auth` hands the manager the
 * CLI's credentials and the task pulls and runs; without the flag the task
 * is rejected (no credentials, no image). The image is a static busybox,
 * pushed with `docker push`.
 *
 * Swarm's gossip port is fixed (7946, here on 127.0.0.1): keep every Swarm
 * test in this one file so no two run at once. The overlay data path binds
 * UDP on all addresses (a port chosen here; no service publishes ports, so
 * no traffic uses it). `docker_gwbridge` is removed by the helper's stop.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeBusyboxArchive } from '../helpers/busybox-image.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startPrivatePier, type PrivatePier } from '../helpers/private-pier.js';

let dockerd: Dockerd | undefined;
let pier: PrivatePier | undefined;
let dir: string;
const LOCAL = 'local/busybox:swarm';

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A free UDP port in the range Swarm accepts for its data path (1024-49151), not an ephemeral one. */
async function freeDataPathPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 29_000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free UDP port for the Swarm data path');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pier-swarm-test-'));
  // Both are waited for and kept, so `after` stops the one that started when the other fails.
  const started = await Promise.allSettled([startDockerd().then((x) => (dockerd = x)), startPrivatePier().then((x) => (pier = x))]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const archive = await writeBusyboxArchive(dir, LOCAL);
  await d().docker(['load', '-i', archive.path]);
});

after(async () => {
  await dockerd?.stop();
  await pier?.stop();
  await rm(dir, { recursive: true, force: true });
});

function d(): Dockerd {
  assert.ok(dockerd);
  return dockerd;
}

/** Polls `docker service ps` until the first task reaches `state`; returns "STATE|ERROR" lines seen last. */
async function waitForTask(service: string, state: RegExp, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await d().dockerResult(['service', 'ps', '--no-trunc', '--format', '{{.CurrentState}}|{{.Error}}|{{.Image}}', service]);
    last = r.stdout.trim();
    if (last.split('\n').some((l) => state.test(l))) return last;
    await new Promise((res) => setTimeout(res, 500));
  }
  assert.fail(`service ${service}: no task ${String(state)} within ${timeoutMs} ms; last: ${last}\n${d().log().slice(-1500)}`);
}

describe('docker swarm (one node) with a service image in a private Pier', { timeout: 240_000 }, () => {
  test('the busybox image runs as a container', async () => {
    const r = await d().docker(['run', '--rm', '--network', 'none', LOCAL, 'echo', 'hi from busybox']);
    assert.equal(r.stdout.trim(), 'hi from busybox');
  });

  test('service create: rejected without --with-registry-auth, Running with it (pull-only user)', async () => {
    assert.ok(pier);
    const host = pier.host;
    const noAuth = `${host}/app/swarm-noauth:1.0`;
    const withAuth = `${host}/app/swarm:1.0`;
    await d().docker(['login', host, '-u', pier.admin.user, '--password-stdin'], { input: `${pier.admin.password}\n` });
    for (const ref of [noAuth, withAuth]) {
      await d().docker(['tag', LOCAL, ref]);
      await d().docker(['push', ref]);
    }
    // The tasks must pull: nothing of the image stays in the daemon.
    await d().docker(['rmi', noAuth, withAuth, LOCAL]);
    await d().docker(['logout', host]);
    await d().docker(['login', host, '-u', pier.puller.user, '--password-stdin'], { input: `${pier.puller.password}\n` });

    const [sport, dport] = await Promise.all([freeTcpPort(), freeDataPathPort()]);
    await d().docker(['swarm', 'init', '--listen-addr', `127.0.0.1:${sport}`, '--advertise-addr', `127.0.0.1:${sport}`, '--data-path-port', String(dport)], { timeoutMs: 60_000 });

    const rejected = await d().docker(['service', 'create', '--detach', '--name', 'noauth', noAuth, 'sleep', '300'], { timeoutMs: 60_000 });
    assert.match(rejected.stderr, /could not be accessed on a registry to record\s+its digest/);
    const noAuthTasks = await waitForTask('noauth', /^Rejected/);
    assert.match(noAuthTasks, /No such image: 127\.0\.0\.1:\d+\/app\/swarm-noauth:1\.0/);
    await d().docker(['service', 'rm', 'noauth']);

    await d().docker(['service', 'create', '--detach', '--with-registry-auth', '--name', 'withauth', withAuth, 'sleep', '300'], { timeoutMs: 60_000 });
    const tasks = await waitForTask('withauth', /^Running/);
    assert.match(tasks, new RegExp(`\\|${withAuth.replace(/[.]/g, '\\.')}@sha256:[a-f0-9]{64}`), 'the manager pinned the digest it resolved with the credentials');
    const ps = await d().docker(['ps', '--filter', 'label=com.docker.swarm.service.name=withauth', '--format', '{{.Image}} {{.Status}}']);
    assert.match(ps.stdout, /^127\.0\.0\.1:\d+\/app\/swarm:1\.0(@sha256:[a-f0-9]{64})? Up /, "the task container is up");
  });
});
