/**
 * A private containerd (its own root, state and socket under one folder, no
 * CRI plugin), started fresh for each pull so that nothing is cached, and
 * `ctr images pull --plain-http` timed against it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, startDaemon, stopDaemon, waitFor } from './proc.js';

export interface PullResult {
  readonly seconds: number;
  readonly ok: boolean;
  readonly output: string;
}

/** Starts containerd in `dir`, pulls `ref` (plain HTTP, unpacked), stops it and removes `dir`. */
export async function ctrPull(dir: string, ref: string, timeoutMs: number): Promise<PullResult> {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '',
    ].join('\n'),
  );
  const daemon = startDaemon('containerd', 'containerd', ['--config', config], join(dir, 'containerd.log'));
  try {
    await waitFor('containerd', async () => {
      if (daemon.hasExited()) throw new Error('containerd exited; see ' + daemon.logFile);
      return (await run('ctr', ['--address', sock, 'version'], 5000)).code === 0;
    }, 30_000, 200);
    const r = await run('ctr', ['--address', sock, 'images', 'pull', '--plain-http', ref], timeoutMs);
    return { seconds: r.ms / 1000, ok: r.code === 0, output: (r.stderr + r.stdout).slice(-600) };
  } finally {
    await stopDaemon(daemon);
    // Unpacking leaves no mounts behind; if one did, rm would fail and say so.
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      process.stderr.write(`could not remove ${dir}: ${(err as Error).message}\n`);
    }
  }
}
