/**
 * A real `pier serve` for the client tests: a child process on an ephemeral
 * port, its data folder fresh from mkdtemp, users written to its database
 * before it starts (as `pier user add` does), HTTPS when `tls` is given.
 * `prefix` runs it under another command (`ip netns exec NAME`).
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { addUser } from '../../src/auth/accounts.js';
import { openSqliteAccountStore as openAuthStore } from '../../src/store/meta/sql/sqlite.js';
import type { AuthStore } from '../../src/auth/store.js';
import { PIER_BIN, tempDir } from '../helpers/registry.js';

export interface ServedPier {
  /** `http://…` or `https://…` as the registry logged it. */
  url: string;
  /** `host:port`. */
  host: string;
  port: string;
  stop(): Promise<void>;
}

export interface ServeOptions {
  listen?: string;
  users?: { name: string; password: string; admin?: boolean }[];
  /** More accounts, rules or tokens, written before the registry starts. */
  setup?: (store: AuthStore) => Promise<void>;
  tls?: { cert: string; key: string };
  /** Extra environment (configuration keys as PIER_* variables). */
  env?: NodeJS.ProcessEnv;
  prefix?: string[];
}

export async function servePier(options: ServeOptions = {}): Promise<ServedPier> {
  const data = await tempDir('pier-served-');
  try {
    if (options.users?.length || options.setup) {
      const db = await openAuthStore(path.join(data, 'pier.db'));
      try {
        for (const u of options.users ?? []) await addUser(db.store, u.name, u.password, u.admin ? { admin: true } : {});
        await options.setup?.(db.store);
      } finally {
        await db.close();
      }
    }
  } catch (err) {
    await rm(data, { recursive: true, force: true });
    throw err;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.tls) {
    env.PIER_TLS_CERT = options.tls.cert;
    env.PIER_TLS_KEY = options.tls.key;
  }
  const argv = [...(options.prefix ?? []), process.execPath, PIER_BIN, 'serve', '--listen', options.listen ?? '127.0.0.1:0', '--data', data];
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(data, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pier serve did not start in 20 s: ${stderr}`)), 20_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
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
    const host = new URL(url).host;
    return { url, host, port: new URL(url).port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
