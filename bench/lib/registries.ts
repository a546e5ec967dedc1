/**
 * The two registries under test, started on loopback with filesystem storage
 * in fresh folders: Pier (`node bin/pier.js serve`) and CNCF distribution 2.8
 * (Debian's `docker-registry`).
 */
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Daemon } from './proc.js';
import { startDaemon, stopDaemon, waitFor } from './proc.js';

export type RegistryKind = 'pier' | 'distribution';

/** A running registry the scenarios talk to. */
export interface Registry {
  readonly kind: RegistryKind;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, as image references spell it. */
  readonly host: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly daemon: Daemon;
  stop(): Promise<void>;
}

/** The repository root (bench/lib/ → ../..; dist/bench/lib/ → ../../..). */
export function repoRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const up = here.includes('/dist/bench/') ? '../../..' : '../..';
  return resolve(here, up);
}

/** An unused loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

async function answers(url: string): Promise<boolean> {
  const res = await request(`${url}/v2/`, { method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 });
  await res.body.dump();
  return res.statusCode === 200 || res.statusCode === 401;
}

/** Waits until `url/v2/` answers (200 or 401); stops the daemon and throws with its log tail if it does not. */
export async function waitUp(daemon: Daemon, url: string): Promise<void> {
  try {
    await waitFor(`${daemon.name} at ${url}/v2/`, async () => {
      if (daemon.hasExited()) throw new Error('exited');
      return answers(url);
    }, 30_000);
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(daemon.logFile, 'utf8').slice(-2000);
    } catch {
      /* no log */
    }
    await stopDaemon(daemon);
    throw new Error(`${daemon.name} did not start: ${(err as Error).message}\n--- ${daemon.logFile} ---\n${log}`, { cause: err });
  }
}

/** Starts CNCF distribution with a minimal config (delete enabled; no auth unless an htpasswd file is given). */
export async function startDistribution(dir: string, label = 'distribution', options: { htpasswd?: string } = {}): Promise<Registry> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: {level: warn, accesslog: {disabled: true}}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, delete: {enabled: true}}`,
      `http: {addr: ${host}}`,
      ...(options.htpasswd ? [`auth: {htpasswd: {realm: bench, path: ${options.htpasswd}}}`] : []),
      '',
    ].join('\n'),
  );
  const daemon = startDaemon(label, 'docker-registry', ['serve', config], join(dir, 'registry.log'));
  const url = `http://${host}`;
  await waitUp(daemon, url);
  return { kind: 'distribution', url, host, pid: daemon.pid, dataDir: join(dir, 'data'), daemon, stop: () => stopDaemon(daemon) };
}

/**
 * Starts Pier from this checkout (`dist/` must be built). `PIER_BENCH_NODE_ARGS`
 * adds node flags, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
export async function startPier(dir: string, label = 'pier', env: NodeJS.ProcessEnv = {}): Promise<Registry> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const nodeArgs = (process.env.PIER_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const daemon = startDaemon(
    label,
    process.execPath,
    [...nodeArgs, join(repoRoot(), 'bin/pier.js'), 'serve', '--listen', host, '--data', join(dir, 'data')],
    join(dir, 'registry.log'),
    // Request logging off, as distribution's access log is off in its config.
    { ...process.env, PIER_LOG_LEVEL: process.env.PIER_LOG_LEVEL ?? 'warn', ...env },
  );
  const url = `http://${host}`;
  await waitUp(daemon, url);
  return { kind: 'pier', url, host, pid: daemon.pid, dataDir: join(dir, 'data'), daemon, stop: () => stopDaemon(daemon) };
}

/**
 * Starts a registry of `kind`. `PIER_BENCH_STANDIN=1` starts a second
 * distribution in Pier's place (to test the harness while Pier is not ready).
 */
export function startRegistry(kind: RegistryKind, dir: string): Promise<Registry> {
  if (kind === 'distribution') return startDistribution(dir);
  if (process.env.PIER_BENCH_STANDIN === '1') {
    return startDistribution(dir, 'pier (stand-in: distribution)').then((r) => ({ ...r, kind: 'pier' as const }));
  }
  return startPier(dir);
}
