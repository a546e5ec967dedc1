/** Shared by the account commands: the data folder's store, and reading a password. */
import { loadConfig, type RegistryConfig } from '../../registry/config.js';
import type { AuthStore } from '../../auth/store.js';
import { openSqliteAccountStore } from '../../store/meta/sql/sqlite.js';
import { UsageError, type Io } from '../command.js';

export const DATA_FLAGS = {
  data: { type: 'string' },
  config: { type: 'string' },
} as const;

export const DATA_USAGE = `  --data DIR          the registry's data folder (default ./.pier-data; env PIER_DATA)
  --config FILE       its YAML configuration file (env PIER_CONFIG)`;

/**
 * Runs `fn` with the auth store of the registry's database. A composition
 * root (test/architecture.test.ts names it): it chooses the SQLite adapter.
 */
export async function withAuthStore<T>(values: { data?: string | undefined; config?: string | undefined }, io: Io, fn: (opened: { store: AuthStore }, config: RegistryConfig) => Promise<T>): Promise<T> {
  const config = await loadConfig({ file: values.config ?? io.env.PIER_CONFIG, env: io.env, flags: { data: values.data } });
  const opened = await openSqliteAccountStore(config.database.path);
  try {
    return await fn(opened, config);
  } finally {
    await opened.close();
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Prompts without echo on a terminal. */
async function prompt(io: Io, question: string): Promise<string> {
  const stdin = io.stdin as NodeJS.ReadStream;
  io.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            io.stderr.write('\n');
            resolve(text);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new UsageError('cancelled', 130));
            return;
          }
          if (ch === '\u007f') text = text.slice(0, -1);
          else text += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/** A new password: the first line of stdin when it is not a terminal, else prompted twice. */
export async function readNewPassword(io: Io): Promise<string> {
  if (!io.stdin.isTTY) {
    const line = (await readAll(io.stdin)).split(/\r?\n/)[0] ?? '';
    if (line === '') throw new UsageError('no password on stdin (echo PASSWORD | pier user ...)');
    return line;
  }
  const first = await prompt(io, 'Password: ');
  const second = await prompt(io, 'Again: ');
  if (first !== second) throw new UsageError('the passwords differ');
  return first;
}
