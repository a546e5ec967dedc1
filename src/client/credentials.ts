/**
 * Registry credentials where docker and podman keep them:
 *
 * - `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): `auths`
 *   entries (base64 `user:password`, `identitytoken`, `registrytoken`),
 *   `credHelpers` per registry and a default `credsStore`, both run as
 *   `docker-credential-NAME get|store|erase` with JSON on stdin/stdout;
 * - podman's `auth.json` (`REGISTRY_AUTH_FILE`,
 *   `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`).
 *
 * Lookup order is docker's: credHelpers, credsStore, auths; then podman's.
 * Secrets are never logged or put in error messages.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Credential } from './auth.js';
import { ClientError } from './errors.js';

export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
  username?: string;
  password?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** The key docker uses in config.json for a registry. */
export function authKey(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? DOCKER_HUB_AUTH_KEY : registry;
}

/** Normalises `https://host/v1/`, `http://host`, `host/` to `host`. */
export function hostOfKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '');
  k = k.replace(/\/v[12]\/?$/, '').replace(/\/$/, '');
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') return 'docker.io';
  return k;
}

export interface CredentialStoreOptions {
  env?: NodeJS.ProcessEnv;
}

export class CredentialStore {
  private readonly env: NodeJS.ProcessEnv;
  constructor(options: CredentialStoreOptions = {}) {
    this.env = options.env ?? process.env;
  }

  get dockerConfigPath(): string {
    return join(this.env.DOCKER_CONFIG ?? join(this.env.HOME ?? homedir(), '.docker'), 'config.json');
  }

  private podmanAuthPaths(): string[] {
    const paths: string[] = [];
    if (this.env.REGISTRY_AUTH_FILE) paths.push(this.env.REGISTRY_AUTH_FILE);
    if (this.env.XDG_RUNTIME_DIR) paths.push(join(this.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    paths.push(join(this.env.XDG_CONFIG_HOME ?? join(this.env.HOME ?? homedir(), '.config'), 'containers', 'auth.json'));
    return paths;
  }

  private async readJson(path: string): Promise<DockerConfig | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ClientError('ERR_CREDENTIALS', `reading ${path}`, { cause: err });
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return typeof parsed === 'object' && parsed !== null ? (parsed as DockerConfig) : {};
    } catch (cause) {
      throw new ClientError('ERR_CREDENTIALS', `${path} is not valid JSON`, { cause });
    }
  }

  /** Credentials for `registry` (a host as in an image reference), or undefined. */
  async get(registry: string, repository?: string): Promise<Credential | undefined> {
    const config = await this.readJson(this.dockerConfigPath);
    if (config) {
      const helper = helperFor(config, registry);
      if (helper) {
        const fromHelper = await this.helperGet(helper, registry);
        if (fromHelper) return fromHelper;
      }
      const entry = findEntry(config.auths, registry);
      if (entry) return decodeEntry(entry, this.dockerConfigPath);
    }
    for (const path of this.podmanAuthPaths()) {
      const auth = await this.readJson(path);
      if (!auth?.auths) continue;
      if (repository) {
        // podman allows per-namespace entries: host/ns/repo, most specific first.
        const parts = repository.split('/');
        for (let i = parts.length; i > 0; i--) {
          const e = auth.auths[`${registry}/${parts.slice(0, i).join('/')}`];
          if (e) return decodeEntry(e, path);
        }
      }
      const entry = findEntry(auth.auths, registry);
      if (entry) return decodeEntry(entry, path);
    }
    return undefined;
  }

  /**
   * Stores credentials for `registry` in the credential helper docker would
   * use, else base64 in config.json. Returns where they went; `unencrypted`
   * is true when the password is now in a plain file.
   */
  async store(registry: string, cred: { username: string; password: string }): Promise<{ where: string; unencrypted: boolean }> {
    const path = this.dockerConfigPath;
    const config = (await this.readJson(path)) ?? {};
    const helper = helperFor(config, registry);
    if (helper) {
      await this.runHelper(helper, 'store', JSON.stringify({ ServerURL: authKey(registry), Username: cred.username, Secret: cred.password }));
      // docker keeps an empty entry so `docker logout` and listings see it.
      config.auths = { ...config.auths, [authKey(registry)]: {} };
      await writeConfig(path, config);
      return { where: `docker-credential-${helper}`, unencrypted: false };
    }
    config.auths = { ...config.auths };
    for (const key of Object.keys(config.auths)) if (hostOfKey(key) === hostOfKey(authKey(registry))) delete config.auths[key];
    config.auths[authKey(registry)] = { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
    await writeConfig(path, config);
    return { where: path, unencrypted: true };
  }

  /** Removes stored credentials; returns false when there were none. */
  async erase(registry: string): Promise<boolean> {
    const path = this.dockerConfigPath;
    const config = await this.readJson(path);
    if (!config) return false;
    let found = false;
    const helper = helperFor(config, registry);
    if (helper) {
      try {
        await this.runHelper(helper, 'erase', authKey(registry));
        found = true;
      } catch {
        // not stored there
      }
    }
    if (config.auths) {
      for (const key of Object.keys(config.auths)) {
        if (hostOfKey(key) === hostOfKey(authKey(registry))) {
          delete config.auths[key];
          found = true;
        }
      }
    }
    if (found) await writeConfig(path, config);
    return found;
  }

  private async helperGet(helper: string, registry: string): Promise<Credential | undefined> {
    let out: string;
    try {
      out = await this.runHelper(helper, 'get', authKey(registry));
    } catch (err) {
      if (err instanceof ClientError && /credentials not found/i.test(err.message)) return undefined;
      throw err;
    }
    let parsed: { Username?: string; Secret?: string };
    try {
      parsed = JSON.parse(out) as typeof parsed;
    } catch (cause) {
      throw new ClientError('ERR_CREDENTIALS', `docker-credential-${helper} answered invalid JSON`, { cause });
    }
    if (!parsed.Secret) return undefined;
    if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
    return { username: parsed.Username ?? '', password: parsed.Secret };
  }

  private async runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
    const program = `docker-credential-${helper}`;
    // node:child_process loads only when a helper runs (decision 0132: a push without one does not pay for it).
    const { spawn } = await import('node:child_process');
    return new Promise((resolve, reject) => {
      const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'], env: this.env });
      const out: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => out.push(c));
      child.on('error', (err) => reject(new ClientError('ERR_CREDENTIALS', `running ${program}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })));
      child.on('close', (code) => {
        const text = Buffer.concat(out).toString('utf8').trim();
        if (code === 0) resolve(text);
        // The helper's output may echo what it was given; keep only its first line, which is its message.
        else reject(new ClientError('ERR_CREDENTIALS', `${program} ${action} failed: ${text.split('\n')[0]?.slice(0, 200) ?? ''}`));
      });
      child.stdin.end(input);
    });
  }
}

function helperFor(config: DockerConfig, registry: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  for (const [key, helper] of Object.entries(helpers)) if (hostOfKey(key) === hostOfKey(authKey(registry))) return helper;
  return config.credsStore || undefined;
}

function findEntry(auths: Record<string, AuthEntry> | undefined, registry: string): AuthEntry | undefined {
  if (!auths) return undefined;
  const direct = auths[authKey(registry)] ?? auths[registry];
  if (direct && Object.keys(direct).length > 0) return direct;
  for (const [key, entry] of Object.entries(auths)) {
    if (hostOfKey(key) === hostOfKey(authKey(registry)) && Object.keys(entry).length > 0) return entry;
  }
  return undefined;
}

function decodeEntry(entry: AuthEntry, where: string): Credential | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.registrytoken) return { registryToken: entry.registrytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) throw new ClientError('ERR_CREDENTIALS', `an auth entry in ${where} is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username) return { username: entry.username, password: entry.password ?? '' };
  return undefined;
}

async function writeConfig(path: string, config: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
