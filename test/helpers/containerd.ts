/**
 * Starts containerd 1.6 with a private config under a temp dir (no CRI
 * plugin, its own socket) and pulls with `ctr`, for interop tests:
 *
 *     const ctrd = await startContainerd();
 *     await ctrd.pull('127.0.0.1:5000/app:v1', { user: 'u:p' });
 *     await ctrd.imageDigest('127.0.0.1:5000/app:v1'); // the manifest digest
 *     await ctrd.contentDigests();                     // every blob in the content store
 *     await ctrd.stop();
 *
 * `ctr images pull` verifies every blob against its digest while fetching
 * and unpacks the layers (one platform); `contentDigests` lets a test check
 * the exact set of digests fetched.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PullOptions {
  /** Plain HTTP; default true for loopback hosts (127.x, localhost). */
  plainHttp?: boolean;
  /** `user:password` */
  user?: string;
  /** Fetch every platform of an index (no unpack, as ctr does with --all-platforms). */
  allPlatforms?: boolean;
  platform?: string;
  timeoutMs?: number;
}

export interface Containerd {
  dir: string;
  address: string;
  ctr(args: string[], timeoutMs?: number): Promise<string>;
  /** `ctr images pull`: fetches (verifying every digest) and, for one platform, unpacks. Returns ctr's output. */
  pull(ref: string, options?: PullOptions): Promise<string>;
  /** The manifest (or index) digest a pulled reference resolved to. */
  imageDigest(ref: string): Promise<string>;
  /** Every blob digest in the content store. */
  contentDigests(): Promise<string[]>;
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
      const host = ref.split('/')[0] ?? '';
      if (options.plainHttp ?? /^(127\.\d+\.\d+\.\d+|localhost)(:\d+)?$/.test(host)) args.push('--plain-http');
      if (options.user) args.push('--user', options.user);
      if (options.platform) args.push('--platform', options.platform);
      if (options.allPlatforms) args.push('--all-platforms');
      args.push(ref);
      return ctr(args, options.timeoutMs ?? 180_000);
    },
    async imageDigest(ref) {
      const list = await ctr(['images', 'ls']);
      const line = list.split('\n').find((l) => l.split(/\s+/)[0] === ref);
      return line?.split(/\s+/).find((f) => f.startsWith('sha256:')) ?? '';
    },
    async contentDigests() {
      return (await ctr(['content', 'ls', '-q'])).split('\n').filter(Boolean);
    },
    stop,
  };
}
