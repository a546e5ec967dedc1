/**
 * Shared by the account commands (user, group, token, policy, audit): where
 * the accounts are — a running registry over its /pier/v1 admin API, or the
 * database in a registry's data folder — behind one {@link AccountAdmin}
 * interface, and reading a password.
 */
import { stat } from 'node:fs/promises';
import { embeddedAdapters, loadConfig, type RegistryConfig } from '../../registry/config.js';
import type { AuthStore } from '../../auth/store.js';
import { storedRules } from '../../auth/store.js';
import { openLocalAccountStore } from '../../store/meta/sql/open.js';
import { addPolicyRule, addUser, changePassword, createAccessToken, describeToken, importHtpasswd } from '../../auth/accounts.js';
import type { GroupInfo, ImportResponse, NewToken, RuleInfo, TokenInfo, UserInfo } from '../../client/pier-api.js';
import { UsageError, type Io } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient } from './client-flags.js';
import { adminRegistry, pierApi } from './lifecycle-flags.js';

export const DATA_FLAGS = {
  data: { type: 'string' },
  config: { type: 'string' },
} as const;

export const DATA_USAGE = `  --data DIR          the data folder of a registry, holding its database
                      (default ./.pier-data; env PIER_DATA); never created here
  --config FILE       its YAML configuration file (env PIER_CONFIG)`;

/** Flags of the commands that administer either a running registry or a data folder. */
export const ADMIN_FLAGS = {
  ...DATA_FLAGS,
  ...connectionFlags,
  registry: { type: 'string' },
} as const;

export const ADMIN_USAGE = `  --registry HOST     administer this running registry over its API, as the
                      account 'pier login HOST' stored (an admin; env PIER_REGISTRY)
${DATA_USAGE}
${CONNECTION_USAGE}`;

/**
 * Runs `fn` with the auth store of the registry's database. The database
 * must exist: only `pier serve` creates one, so a wrong folder is one line
 * naming it rather than a new database no registry reads (PostgreSQL:
 * the configured `database.url`). A composition root
 * (test/architecture.test.ts names it): it chooses the database adapter.
 */
export async function withAuthStore<T>(values: { data?: string | undefined; config?: string | undefined }, io: Io, fn: (opened: { store: AuthStore }, config: RegistryConfig) => Promise<T>): Promise<T> {
  const config = await loadConfig({ file: values.config ?? io.env.PIER_CONFIG, env: io.env, flags: { data: values.data } });
  const database = embeddedAdapters(config).database;
  const exists =
    database.type === 'postgres' ||
    (await stat(database.path).then(
      (s) => s.isFile(),
      () => false,
    ));
  if (!exists && database.type === 'sqlite') {
    throw new UsageError(
      `no Pier database in ${config.data} (${database.path} does not exist); name a registry's data folder with --data DIR (or PIER_DATA), or a running registry with --registry HOST`,
      1,
    );
  }
  const opened = await openLocalAccountStore(database);
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

/** Users, groups, tokens and rules, wherever they are: what the account commands call. */
export interface AccountAdmin {
  /** Where the changes go, for messages: the registry host or the data folder. */
  readonly where: string;
  listUsers(): Promise<UserInfo[]>;
  addUser(name: string, password: string, admin: boolean): Promise<void>;
  changePassword(name: string, password: string): Promise<void>;
  removeUser(name: string): Promise<void>;
  setAdmin(name: string, admin: boolean): Promise<void>;
  importHtpasswd(text: string, update: boolean): Promise<ImportResponse>;
  listGroups(): Promise<GroupInfo[]>;
  addGroup(name: string): Promise<void>;
  removeGroup(name: string): Promise<void>;
  addMember(group: string, user: string): Promise<void>;
  removeMember(group: string, user: string): Promise<void>;
  listTokens(): Promise<TokenInfo[]>;
  createToken(token: { name: string; scopes: string[]; expiresIn?: number | undefined; owner?: string | undefined }): Promise<NewToken>;
  revokeToken(name: string): Promise<void>;
  listRules(): Promise<RuleInfo[]>;
  addRule(subject: string, repositories: string, actions: string[]): Promise<number>;
  removeRule(id: number): Promise<void>;
}

type AdminValues = { data?: string | undefined; config?: string | undefined; registry?: string | undefined; insecure?: boolean | undefined; 'ca-file'?: string[] | undefined };

/**
 * Picks where the accounts are: `--registry HOST` (or PIER_REGISTRY when no
 * data folder is named) is a running registry over HTTP; otherwise the data
 * folder (`--data`, `--config`, PIER_DATA, PIER_CONFIG, else ./.pier-data),
 * whose database must already exist.
 */
export async function withAccounts<T>(values: AdminValues, io: Io, command: string, fn: (admin: AccountAdmin) => Promise<T>): Promise<T> {
  const local = values.data !== undefined || values.config !== undefined;
  if (values.registry !== undefined && local) throw new UsageError(`${command}: give --registry or --data/--config, not both`);
  const remote = values.registry ?? (local || io.env.PIER_DATA || io.env.PIER_CONFIG ? undefined : io.env.PIER_REGISTRY);
  if (remote !== undefined) {
    const client = makeClient(io, values);
    try {
      const ref = adminRegistry(io, remote);
      return await fn(remoteAccounts(pierApi(client, ref), ref.registry));
    } finally {
      await client.close();
    }
  }
  return withAuthStore(values, io, ({ store }, config) => fn(localAccounts(store, config)));
}

function remoteAccounts(api: ReturnType<typeof pierApi>, where: string): AccountAdmin {
  return {
    where,
    listUsers: async () => (await api.listUsers()).users,
    addUser: async (name, password, admin) => void (await api.addUser(name, password, admin)),
    changePassword: async (name, password) => void (await api.changePassword(name, password)),
    removeUser: async (name) => void (await api.removeUser(name)),
    setAdmin: async (name, admin) => void (await api.setAdmin(name, admin)),
    importHtpasswd: (text, update) => api.importHtpasswd(text, update),
    listGroups: async () => (await api.listGroups()).groups,
    addGroup: async (name) => void (await api.addGroup(name)),
    removeGroup: async (name) => void (await api.removeGroup(name)),
    addMember: async (group, user) => void (await api.addMember(group, user)),
    removeMember: async (group, user) => void (await api.removeMember(group, user)),
    listTokens: async () => (await api.listTokens()).tokens,
    createToken: (token) => api.createToken(token),
    revokeToken: async (name) => void (await api.revokeToken(name)),
    listRules: async () => (await api.listRules()).rules,
    addRule: async (subject, repositories, actions) => (await api.addRule(subject, repositories, actions)).id,
    removeRule: async (id) => void (await api.removeRule(id)),
  };
}

function localAccounts(store: AuthStore, config: RegistryConfig): AccountAdmin {
  const iso = (d: Date | undefined) => d?.toISOString() ?? null;
  return {
    where: config.data,
    listUsers: async () => (await store.listUsers()).map((u) => ({ name: u.name, admin: u.admin, groups: u.groups, createdAt: u.createdAt.toISOString() })),
    addUser: (name, password, admin) => addUser(store, name, password, { admin }),
    changePassword: (name, password) => changePassword(store, name, password),
    removeUser: (name) => store.removeUser(name),
    setAdmin: (name, admin) => store.setAdmin(name, admin),
    importHtpasswd: (text, update) => importHtpasswd(store, text, { update }),
    listGroups: () => store.listGroups(),
    addGroup: (name) => store.addGroup(name),
    removeGroup: (name) => store.removeGroup(name),
    addMember: (group, user) => store.addMember(group, user),
    removeMember: (group, user) => store.removeMember(group, user),
    listTokens: async () => (await store.listTokens()).map(describeToken),
    createToken: async (token) => {
      const { secret, expiresAt } = await createAccessToken(store, token);
      return { name: token.name, secret, expiresAt: iso(expiresAt) };
    },
    revokeToken: (name) => store.revokeToken(name),
    listRules: async () => [...config.policy, ...(await storedRules(store))].map((r) => ({ origin: r.origin, subject: r.subject, repositories: r.repositories, actions: r.actions })),
    addRule: (subject, repositories, actions) => addPolicyRule(store, subject, repositories, actions),
    removeRule: (id) => store.removeRule(id),
  };
}
