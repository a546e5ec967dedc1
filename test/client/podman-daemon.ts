/**
 * A Docker Engine API for tests: podman's Docker-compatible service
 * (`podman system service`) on a unix socket, with podman's state in a
 * folder of the test's own. `load` puts a `docker save` tarball into its
 * storage (with skopeo). `stop` ends the service and unmounts what podman
 * mounted under the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../helpers/tools.js';

export interface PodmanDaemon {
  /** `unix://…`, for DOCKER_HOST. */
  dockerHost: string;
  load(archive: string, name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPodmanDaemon(dir: string): Promise<PodmanDaemon> {
  const root = join(dir, 'root');
  const runroot = join(dir, 'runroot');
  const tmp = join(dir, 'tmp');
  await Promise.all([root, runroot, tmp].map((d) => mkdir(d, { recursive: true })));
  const sock = join(dir, 'podman.sock');
  const service: ChildProcess = spawn('podman', ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay', 'system', 'service', '--time', '0', `unix://${sock}`], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: 'ignore',
    detached: true,
  });
  const stop = async () => {
    if (service.pid && service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((r) => service.once('exit', r));
      process.kill(-service.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (service.exitCode === null && service.signalCode === null) process.kill(-service.pid, 'SIGKILL');
    }
    // podman leaves overlay mounts under its root: unmount them before the folder is removed.
    await run('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
  };
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
  if (!existsSync(sock)) {
    await stop();
    throw new Error('podman system service did not start');
  }
  return {
    dockerHost: `unix://${sock}`,
    async load(archive, name) {
      await run('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `containers-storage:[overlay@${root}+${runroot}]${name}`], { env: { TMPDIR: tmp } });
    },
    stop,
  };
}
