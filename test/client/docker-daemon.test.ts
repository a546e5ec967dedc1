/**
 * The docker-daemon source against podman's Docker-compatible API service
 * (`podman system service`), with podman's state in a temp dir.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, runPier, skopeoPullAndVerify, startTarget, type Target } from './harness.js';
import { generateLayers, writeDockerArchive } from './image-files.js';

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let target: Target;
let service: ChildProcess | undefined;
let sock: string;
let configDigest: string;

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`))));
  });
}

before(async () => {
  work = await isolatedEnv();
  target = await startTarget('plain');
  const root = join(work.dir, 'podman-root');
  const runroot = join(work.dir, 'podman-runroot');
  const tmp = join(work.dir, 'podman-tmp');
  await exec('mkdir', ['-p', root, runroot, tmp]);
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 1 << 20 }, { size: 200_000, kind: 'text' }]);
  const archive = join(work.dir, 'image.tar');
  configDigest = (await writeDockerArchive(archive, layers, { repoTag: 'localhost/daemon/app:v1' })).configDigest;
  await exec('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `containers-storage:[overlay@${root}+${runroot}]localhost/daemon/app:v1`], { TMPDIR: tmp });
  sock = join(work.dir, 'podman.sock');
  service = spawn('podman', ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay', 'system', 'service', '--time', '0', `unix://${sock}`], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: 'ignore',
    detached: true,
  });
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(existsSync(sock), 'podman service started');
});

after(async () => {
  if (service?.pid && service.exitCode === null) {
    const exited = new Promise((r) => service!.once('exit', r));
    process.kill(-service.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (service.exitCode === null) process.kill(-service.pid, 'SIGKILL');
  }
  await target?.stop();
  // podman leaves overlay mounts under its root: unmount before removing.
  await exec('sh', ['-c', `grep -o ' ${work.dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
  await work?.cleanup();
});

describe('docker-daemon source (podman system service)', { timeout: 120_000 }, () => {
  test('docker-daemon:NAME and a bare NAME push the daemon image', async () => {
    const env = { ...work.env, DOCKER_HOST: `unix://${sock}` };
    const r = await runPier(['push', '--format', 'json', 'docker-daemon:localhost/daemon/app:v1', `${target.host}/daemon/app:v1`], { env });
    assert.equal(r.code, 0, r.stderr);
    const digest = String(r.events.find((e) => e.type === 'manifest')?.digest);
    assert.equal(r.events.filter((e) => e.type === 'compress').length, 2);
    const pulled = await skopeoPullAndVerify(`${target.host}/daemon/app:v1`, digest);
    assert.ok(pulled.includes(configDigest), 'the daemon config is pushed byte for byte');

    const bare = await runPier(['push', '--format', 'json', 'localhost/daemon/app:v1', `${target.host}/daemon/bare:v1`], { env });
    assert.equal(bare.code, 0, bare.stderr);
    assert.equal(bare.events.filter((e) => e.type === 'compress').length, 0, 'the diffID cache applies to daemon images too');
    assert.equal(bare.events.find((e) => e.type === 'manifest')?.digest, digest);
  });

  test('an unknown image is one clear line', async () => {
    const r = await runPier(['push', 'docker-daemon:localhost/nope:v1', `${target.host}/daemon/nope:v1`], { env: { ...work.env, DOCKER_HOST: `unix://${sock}` } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /has no image localhost\/nope:v1/);
  });
});
