/**
 * Starts a private Docker Engine (Debian's dockerd 20.10) for interop tests:
 * its own data-root, exec-root, socket and pidfile under a fresh temp folder,
 * no iptables, no IP forwarding or masquerading and no default bridge, so it
 * touches nothing of the machine's but `/etc/docker/key.json` (which dockerd
 * always writes) and, only when a test makes it a Swarm manager, the host
 * bridge `docker_gwbridge` (removed again by `stop`).
 *
 *     const d = await startDockerd();
 *     await d.docker(['load', '-i', tarball]);
 *     await d.docker(['login', host, '-u', 'alice', '--password-stdin'], { input: 'pw\n' });
 *     const r = await d.dockerResult(['pull', ref]);   // { code, stdout, stderr }, never rejects
 *     spawn('node', [PIER_BIN, 'push', 'app:v1', ref], { env: { ...process.env, ...d.env } });
 *     await d.stop();
 *
 * dockerd starts its own containerd under the exec-root (and uses a machine
 * containerd only if one listens on /run/containerd/containerd.sock).
 * dockerd treats 127.0.0.0/8 as an insecure registry range, so plain-HTTP
 * registries on loopback work without configuration. `/usr/bin/docker` is
 * the CLI (an older client may come first on PATH).
 *
 * `stop` is safe to call more than once and after a failed start: it leaves
 * a Swarm, kills running containers, stops dockerd (SIGTERM, then SIGKILL of
 * its process group after 20 s) and its containerd, unmounts whatever is
 * still mounted under the folder, deletes `docker_gwbridge` if this daemon
 * made it, and removes the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The Debian Docker CLI (20.10), matching the daemon. */
export const DOCKER_CLI = '/usr/bin/docker';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DockerRunOptions {
  /** Written to the command's stdin (then closed). */
  input?: string;
  /** Default 120 s; the command is killed (SIGKILL) after it. */
  timeoutMs?: number;
  /** Extra environment on top of `process.env` and the daemon's `env`. */
  env?: NodeJS.ProcessEnv;
}

export interface DockerdOptions {
  /** `overlay2` (default) or `vfs`. */
  storageDriver?: 'overlay2' | 'vfs';
  /** Extra keys for daemon.json (e.g. `{ "insecure-registries": [...] }`). */
  daemonConfig?: Record<string, unknown>;
  /** How long to wait for the daemon to answer; default 30 s. */
  startTimeoutMs?: number;
}

export interface Dockerd {
  /** The temp folder holding everything of this daemon. */
  dir: string;
  /** Path of the daemon's unix socket. */
  socket: string;
  /** `DOCKER_HOST=unix://…` and `DOCKER_CONFIG=…` (the CLI's credentials folder), for child processes. */
  env: { DOCKER_HOST: string; DOCKER_CONFIG: string };
  /** Runs `/usr/bin/docker ARGS` against this daemon; rejects (with stderr) on a non-zero exit. */
  docker(args: string[], options?: DockerRunOptions): Promise<DockerResult>;
  /** Runs `/usr/bin/docker ARGS` against this daemon and resolves with its exit code and output, whatever it is. */
  dockerResult(args: string[], options?: DockerRunOptions): Promise<DockerResult>;
  /** The daemon's log so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Runs a command with a timeout; resolves with its exit code (-1 when killed) and output. */
export function runCommand(cmd: string, args: string[], options: DockerRunOptions = {}): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${options.timeoutMs ?? 120_000} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + err.message });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Starts a private dockerd and waits until it answers `docker version`. */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const execRoot = join(dir, 'exec');
  const configDir = join(dir, 'cfg');
  mkdirSync(configDir);
  const daemonJson = join(dir, 'daemon.json');
  writeFileSync(daemonJson, JSON.stringify(options.daemonConfig ?? {}));
  const logFile = join(dir, 'dockerd.log');
  const logFd = openSync(logFile, 'a');
  const child = spawn(
    'dockerd',
    [
      '--config-file', daemonJson,
      '--data-root', join(dir, 'root'),
      '--exec-root', execRoot,
      '-H', `unix://${socket}`,
      '--pidfile', join(dir, 'docker.pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--bridge=none',
      `--storage-driver=${options.storageDriver ?? 'overlay2'}`,
    ],
    { stdio: ['ignore', logFd, logFd], detached: true },
  );
  closeSync(logFd);
  child.on('error', () => undefined);
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: configDir };
  const dockerResult = (args: string[], o: DockerRunOptions = {}) => runCommand(DOCKER_CLI, args, { ...o, env: { ...env, ...o.env } });
  const docker = async (args: string[], o: DockerRunOptions = {}) => {
    const r = await dockerResult(args, o);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  };
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const containerdPid = readPid(join(execRoot, 'containerd', 'containerd.pid'));
    let madeGwBridge = false;
    if (child.exitCode === null && child.signalCode === null) {
      const state = await dockerResult(['info', '--format', '{{.Swarm.LocalNodeState}}'], { timeoutMs: 15_000 });
      if (state.code === 0 && state.stdout.trim() !== 'inactive') {
        madeGwBridge = true;
        await dockerResult(['swarm', 'leave', '--force'], { timeoutMs: 60_000 });
      }
      const running = await dockerResult(['ps', '-aq'], { timeoutMs: 15_000 });
      const ids = running.stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await dockerResult(['rm', '-f', ...ids], { timeoutMs: 60_000 });
      child.kill('SIGTERM');
      if (!(await waitExit(child, 20_000))) {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
        await waitExit(child, 5000);
      }
    }
    if (containerdPid !== undefined && processAlive(containerdPid)) {
      process.kill(containerdPid, 'SIGTERM');
      if (!(await waitGone(containerdPid, 10_000))) {
        process.kill(containerdPid, 'SIGKILL');
        await waitGone(containerdPid, 5000);
      }
    }
    // Container rootfs, shm and network namespaces may still be mounted under the folder.
    try {
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(dir));
      for (const m of mounts.reverse()) await runCommand('umount', ['-l', m], { timeoutMs: 10_000 });
    } catch {
      // no /proc
    }
    if (madeGwBridge || log().includes('docker_gwbridge')) {
      const link = await runCommand('ip', ['link', 'show', 'docker_gwbridge'], { timeoutMs: 10_000 });
      if (link.code === 0) await runCommand('ip', ['link', 'del', 'docker_gwbridge'], { timeoutMs: 10_000 });
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = log().slice(-2000);
      await stop();
      throw new Error(`dockerd exited at start: ${text}`);
    }
    if (existsSync(socket)) {
      const v = await dockerResult(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
      if (v.code === 0) break;
    }
    if (Date.now() > deadline) {
      const text = log().slice(-2000);
      await stop();
      throw new Error(`dockerd did not answer within ${options.startTimeoutMs ?? 30_000} ms: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { dir, socket, env, docker, dockerResult, log, stop };
}
