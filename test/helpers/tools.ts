/** Runs the real peer tools (skopeo, podman, umoci, ...) for interop tests. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its stderr when it exits non-zero. */
export function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024, cwd: options.cwd },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`, { cause: err }));
        else resolve({ stdout, stderr });
      },
    );
  });
}

export async function hasCommand(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * skopeo with a private, empty /var/lib/containers (its blob-info cache
 * lives there and would otherwise make runs depend on each other).
 */
export async function skopeo(args: string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'pier-skopeo-'));
  try {
    return await run('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /var/lib/containers && exec skopeo "$@"', cache, ...args], options);
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}

/** podman with its own storage under `dir`, kept away from the machine's. */
export function podman(dir: string, args: string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run('podman', ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'runroot'), '--storage-driver', 'overlay', ...args], {
    env: { TMPDIR: dir },
    ...options,
  });
}
