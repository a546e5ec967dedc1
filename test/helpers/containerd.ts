/**
 * Starts containerd 1.6 with a private config under a temp dir (no CRI
 * plugin, its own socket) and pulls with `ctr`, for interop tests:
 *
 *     const ctrd = await startContainerd();
 *     const pulled = await ctrd.pull('127.0.0.1:5000/app:v1', { plainHttp: true, user: 'u:p' });
 *     // pulled.digest: the manifest digest; pulled.blobs: every digest in the content store
 *     await ctrd.stop();
 *
 * `ctr images pull` verifies every blob against its digest while fetching;
 * `pull` also returns what the content store holds, so a test can check the
 * exact set of digests.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PullOptions {
  plainHttp?: boolean;
  /** `user:password` */
  user?: string;
  /** Fetch only (no unpack into a snapshot). Default false. */
  skipUnpack?: boolean;
  platform?: string;
  timeoutMs?: number;
}

export interface PullResult {
  /** Digest of the manifest (or index) the reference resolved to. */
  digest: string;
  /** Every blob digest in the content store after the pull. */
  blobs: string[];
}

export interface Containerd {
  dir: string;
  address: string;
  ctr(args: string[], timeoutMs?: number): Promise<string>;
  pull(ref: string, options?: PullOptions): Promise<PullResult>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

export async function startContainerd(): Promise<Containerd> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-containerd-'));
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '',
    ].join('\n'),
  );
  const log = join(dir, 'containerd.log');
  const fd = openSync(log, 'a');
  const child = spawn('containerd', ['--config', config], { stdio: ['ignore', fd, fd], detached: true });
  const ctr = (args: string[], timeoutMs = 120_000) => run('ctr', ['--address', address, ...args], timeoutMs);
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    // Snapshots may leave overlay mounts behind; unmount before removing.
    try {
      const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
      for (const m of mounts.reverse()) await run('umount', ['-l', m], 10_000).catch(() => undefined);
    } catch {
      // no /proc
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      const text = readFileSync(log, 'utf8').slice(-2000);
      await stop();
      throw new Error(`containerd exited: ${text}`);
    }
    if (existsSync(address)) {
      try {
        await ctr(['version'], 5000);
        break;
      } catch {
        // not ready
      }
    }
    if (Date.now() > deadline) {
      const text = readFileSync(log, 'utf8').slice(-2000);
      await stop();
      throw new Error(`containerd did not start: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dir,
    address,
    ctr,
    async pull(ref, options = {}) {
      const args = ['images', 'pull'];
      if (options.plainHttp) args.push('--plain-http');
      if (options.user) args.push('--user', options.user);
      if (options.platform) args.push('--platform', options.platform);
      else args.push('--all-platforms');
      if (options.skipUnpack || !options.platform) {
        // --all-platforms cannot unpack; `fetch` semantics
      }
      args.push(ref);
      await ctr(args, options.timeoutMs ?? 180_000);
      const list = await ctr(['images', 'ls']);
      const line = list.split('\n').find((l) => l.split(/\s+/)[0] === ref);
      const digest = line?.split(/\s+/).find((f) => f.startsWith('sha256:')) ?? '';
      const blobs = (await ctr(['content', 'ls', '-q'])).split('\n').filter(Boolean);
      return { digest, blobs };
    },
    stop,
  };
}
