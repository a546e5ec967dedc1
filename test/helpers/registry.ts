/**
 * Starts Pier for tests: in-process on an ephemeral port (fast, for most
 * tests), or as a child process running bin/pier.js (for crash tests and
 * real clients that need a separate process).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig, type ConfigInput } from '../../src/registry/config.js';
import { startRegistry, type RunningRegistry, type StartOptions } from '../../src/registry/server.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PIER_BIN = path.join(REPO_ROOT, 'bin', 'pier.js');

export interface TestRegistry extends RunningRegistry {
  dataDir: string;
}

export async function tempDir(prefix = 'pier-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Deep-merges `overrides` into the default config with a fresh temp data dir. */
export async function startTestRegistry(overrides: ConfigInput = {}, options: StartOptions & { dataDir?: string } = {}): Promise<TestRegistry> {
  const dataDir = options.dataDir ?? (await tempDir());
  const config = await loadConfig({ overrides: { listen: '127.0.0.1:0', data: dataDir, ...overrides } });
  const registry = await startRegistry(config, { logger: options.logger ?? pino({ level: process.env.PIER_TEST_LOG ?? 'silent' }), ...(options.gate ? { gate: options.gate } : {}) });
  return {
    ...registry,
    dataDir,
    async close() {
      await registry.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SpawnedRegistry {
  url: string;
  host: string;
  dataDir: string;
  process: ChildProcess;
  /** Log lines (parsed JSON) seen so far. */
  logs: Record<string, unknown>[];
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `pier serve` in a child process on an ephemeral port and waits until it listens. */
export async function spawnTestRegistry(options: {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  args?: string[];
  listen?: string;
  /** A command that runs the registry, such as `['prlimit', '--nofile=1024']`. */
  wrap?: [string, ...string[]];
}): Promise<SpawnedRegistry> {
  const [command, ...prefix] = options.wrap ?? [process.execPath];
  const child = spawn(command, [...prefix, ...(options.wrap ? [process.execPath] : []), PIER_BIN, 'serve', '--listen', options.listen ?? '127.0.0.1:0', '--data', options.dataDir, ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: a caller that gives up on it has no handle to stop it.
      child.kill('SIGKILL');
      reject(new Error(`pier serve did not start in 20s: ${stderr}`));
    }, 20_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'listening' && typeof entry.url === 'string') {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pier serve exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    host: url.replace(/^http:\/\//, ''),
    dataDir: options.dataDir,
    process: child,
    logs,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
