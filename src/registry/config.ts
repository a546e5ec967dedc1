/**
 * Registry configuration: one typed schema, read from (lowest to highest
 * precedence) defaults, a YAML file, `PIER_*` environment variables and
 * command-line flags, and checked once at start. A bad value is a
 * {@link ConfigError} naming the key.
 *
 * Every leaf key has an environment variable: the key path in upper snake
 * case behind `PIER_` (`uploads.maxAge` → `PIER_UPLOADS_MAX_AGE`).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AuthConfig } from '../auth/config.js';
import type { Rule } from '../auth/policy.js';
import type { LifecycleConfig } from '../lifecycle/config.js';
import { PolicyConfigError, parsePolicyRules } from '../auth/rules-config.js';
import {
  RuleError,
  parseImmutableTagRules,
  parseNameList,
  parseQuotaRules,
  parseRetentionRules,
  parseWebhookEndpoints,
} from '../lifecycle/rules.js';
import { PierError } from '../oci/pier-error.js';
import { BYTES_HINT, parseBytes } from '../shared/bytes.js';
import { DURATION_HINT, parseDuration } from '../shared/duration.js';
import type { MinFree } from '../store/disk-space.js';
import { parseVulnerabilityRules } from '../supply/policy.js';
import type { ScanningConfig } from '../supply/supply.js';
import { Pattern } from '../lifecycle/rules.js';

/** The whole configuration: the registry's own keys, composed with the auth and lifecycle sections. */
export interface RegistryConfig extends LifecycleConfig {
  /** `host:port` to listen on. */
  listen: string;
  /** Root folder for the default fs blob store and SQLite database. */
  data: string;
  storage: StorageConfig;
  database: DatabaseConfig;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  uploads: {
    /** Mount a blob already in the registry when `mount` is given without `from`. */
    automaticMount: boolean;
    /** Upload sessions idle for longer than this many seconds are expired. */
    maxAge: number;
    /** Largest accepted PATCH chunk in bytes (0 = no limit); advertised as OCI-Chunk-Max-Length. */
    maxChunkSize: number;
  };
  manifests: {
    /** Largest accepted manifest in bytes; larger is 413. */
    maxSize: number;
    /**
     * Allow deleting a manifest an index in the same repository lists
     * (breaking the index). When false, such a DELETE is refused unless an
     * admin adds `?override=index`.
     */
    deleteIndexChildren: boolean;
  };
  /** Allow DELETE of manifests, tags and blobs. */
  deletes: boolean;
  /** Client connections (src/registry/connections.ts); defaults in nginx's range. */
  connections: {
    /** Most open connections; beyond it the oldest idle or header-incomplete one is closed for the new one. */
    max: number;
    /** Seconds a connection may take to send a request's headers (nginx client_header_timeout). */
    headerTimeout: number;
    /** Seconds a keep-alive connection may sit between requests (nginx keepalive_timeout). */
    idleTimeout: number;
    /** A request body must move at least `minBodyRate` bytes/s over each window of this many seconds (nginx client_body_timeout). */
    bodyTimeout: number;
    /** Bytes per second, averaged over `bodyTimeout`, below which an upload is cut off. */
    minBodyRate: number;
  };
  /** Seconds to wait for in-flight requests on SIGTERM before closing connections. */
  shutdownTimeout: number;
  auth: AuthConfig;
  /** HTTPS when both are set: PEM files. */
  tls: { cert: string; key: string } | undefined;
  /** Access rules (a YAML list, or JSON in PIER_POLICY); `pier policy` adds more in the database. */
  policy: Rule[];
  /** Inventories, SBOMs, vulnerability matching and the vulnerability policy (src/supply). */
  scanning: ScanningConfig;
}

/** The blob store: one variant per adapter; a key exists only in its variant. */
export type StorageConfig =
  | {
      type: 'fs';
      path: string;
      /**
       * New uploads are refused (507) while free space on the storage or the
       * database's volume is below this: bytes, or a percentage of the volume.
       */
      minFree: MinFree;
    }
  /** Declared for the scale-out issue: accepted by the schema, refused at start ({@link embeddedAdapters}). */
  | { type: 's3'; bucket: string; region: string | undefined; endpoint: string | undefined };

/** The metadata store: one variant per adapter. */
export type DatabaseConfig =
  | {
      type: 'sqlite';
      path: string;
      /** `normal`: a commit survives a process crash; `full`: also a power loss (fsync per commit). */
      synchronous: 'normal' | 'full';
    }
  /** Declared for the scale-out issue: accepted by the schema, refused at start ({@link embeddedAdapters}). */
  | { type: 'postgres'; url: string };

/**
 * Keys that belong to one variant of a union: setting one while the
 * section's `type` is another is an error naming the key.
 */
const VARIANT_OF: Record<string, [typeKey: string, type: string]> = {
  'storage.path': ['storage.type', 'fs'],
  'storage.minFree': ['storage.type', 'fs'],
  'storage.s3.bucket': ['storage.type', 's3'],
  'storage.s3.region': ['storage.type', 's3'],
  'storage.s3.endpoint': ['storage.type', 's3'],
  'database.path': ['database.type', 'sqlite'],
  'database.synchronous': ['database.type', 'sqlite'],
  'database.url': ['database.type', 'postgres'],
};

/**
 * The adapters this build has (files on disk, SQLite), narrowed from the
 * config; a declared but unbuilt variant (s3, postgres) is a ConfigError:
 * one line, "not available yet". Called by the composition roots.
 */
export function embeddedAdapters(config: Pick<RegistryConfig, 'storage' | 'database'>): {
  storage: Extract<StorageConfig, { type: 'fs' }>;
  database: Extract<DatabaseConfig, { type: 'sqlite' }>;
} {
  if (config.storage.type !== 'fs') throw new ConfigError('storage.type', `${config.storage.type} is not available yet (only fs)`);
  if (config.database.type !== 'sqlite') throw new ConfigError('database.type', `${config.database.type} is not available yet (only sqlite)`);
  return { storage: config.storage, database: config.database };
}

export class ConfigError extends PierError {
  readonly code = 'ERR_CONFIG';
  constructor(key: string, message: string) {
    super(`invalid configuration: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** `{ list }`: a list given in YAML (or JSON text in the environment), parsed by src/lifecycle/rules.ts. */
type ListLeaf = { list: (raw: unknown, env: NodeJS.ProcessEnv) => unknown };
type Leaf = 'string' | 'boolean' | 'integer' | 'duration' | 'size' | 'sizeOrPercent' | { enum: readonly string[] } | ListLeaf;

/** Every settable key with its type. Storage and database grow adapters later. */
const SCHEMA: Record<string, Leaf> = {
  listen: 'string',
  data: 'string',
  'storage.type': { enum: ['fs', 's3'] },
  'storage.path': 'string',
  'storage.s3.bucket': 'string',
  'storage.s3.region': 'string',
  'storage.s3.endpoint': 'string',
  'storage.minFree': 'sizeOrPercent',
  'database.type': { enum: ['sqlite', 'postgres'] },
  'database.path': 'string',
  'database.synchronous': { enum: ['normal', 'full'] },
  'database.url': 'string',
  'log.level': { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  'uploads.automaticMount': 'boolean',
  'uploads.maxAge': 'duration',
  'uploads.maxChunkSize': 'size',
  'manifests.maxSize': 'size',
  'manifests.deleteIndexChildren': 'boolean',
  deletes: 'boolean',
  'connections.max': 'integer',
  'connections.headerTimeout': 'duration',
  'connections.idleTimeout': 'duration',
  'connections.bodyTimeout': 'duration',
  'connections.minBodyRate': 'size',
  shutdownTimeout: 'duration',
  'history.keep': 'integer',
  'history.maxAge': 'duration',
  'gc.gracePeriod': 'duration',
  'gc.schedule': 'duration',
  'retention.schedule': 'duration',
  'retention.rules': { list: (raw) => parseRetentionRules(raw) },
  'tags.immutable': { list: (raw) => parseImmutableTagRules(raw) },
  quotas: { list: (raw) => parseQuotaRules(raw, (at, v) => coerce(`quotas${at}`, 'size', v) as number) },
  'webhooks.endpoints': { list: (raw, env) => parseWebhookEndpoints(raw, env) },
  'webhooks.maxAttempts': 'integer',
  'webhooks.backoffMax': 'duration',
  'webhooks.timeout': 'duration',
  'lifecycle.admins': { list: (raw) => parseNameList(raw) },
  'auth.service': 'string',
  'auth.issuer': 'string',
  'auth.realm': 'string',
  'auth.keys': 'string',
  'auth.tokenTtl': 'duration',
  'auth.refreshTtl': 'duration',
  'auth.cacheTtl': 'duration',
  'auth.insecureOpen': 'boolean',
  'auth.throttle.failures': 'integer',
  'auth.throttle.window': 'duration',
  'auth.initialAdmin.name': 'string',
  'auth.initialAdmin.password': 'string',
  'auth.initialAdmin.passwordFile': 'string',
  'tls.cert': 'string',
  'tls.key': 'string',
  policy: { list: (raw) => parsePolicyRules(raw) },
  // The supply-chain section (src/supply/supply.ts ScanningConfig).
  'scanning.enabled': 'boolean',
  'scanning.sbom': 'boolean',
  'scanning.maxDatabaseAge': 'duration',
  'scanning.policies': { list: (raw) => parseVulnerabilityRules(raw, (v, at) => Pattern.parse(v, at), (at, message) => new RuleError(at, message)) },
};

const DEFAULTS: Record<string, unknown> = {
  listen: '127.0.0.1:5000',
  data: './.pier-data',
  'storage.type': 'fs',
  'storage.minFree': '1%',
  'database.type': 'sqlite',
  'database.synchronous': 'normal',
  'log.level': 'info',
  'uploads.automaticMount': true,
  'uploads.maxAge': 24 * 3600,
  'uploads.maxChunkSize': 0,
  'manifests.maxSize': 4 * 1024 * 1024,
  'manifests.deleteIndexChildren': false,
  deletes: true,
  'connections.max': 1024,
  'connections.headerTimeout': 60,
  'connections.idleTimeout': 75,
  'connections.bodyTimeout': 60,
  'connections.minBodyRate': 1024,
  shutdownTimeout: 30,
  'history.keep': 10,
  'history.maxAge': 0,
  'gc.gracePeriod': 3600,
  'gc.schedule': 24 * 3600,
  'retention.schedule': 24 * 3600,
  'retention.rules': [],
  'tags.immutable': [],
  quotas: [],
  'webhooks.endpoints': [],
  'webhooks.maxAttempts': 20,
  'webhooks.backoffMax': 300,
  'webhooks.timeout': 10,
  'lifecycle.admins': [],
  'auth.service': 'pier',
  'auth.issuer': 'pier',
  'auth.tokenTtl': 300,
  'auth.refreshTtl': 30 * 86400,
  'auth.cacheTtl': 60,
  'auth.insecureOpen': false,
  'auth.throttle.failures': 5,
  'auth.throttle.window': 60,
  'auth.initialAdmin.name': 'admin',
  policy: [],
  'scanning.enabled': true,
  // Off by default: a referrer the client did not push would change what the referrers API lists (OCI conformance).
  'scanning.sbom': false,
  'scanning.maxDatabaseAge': 7 * 86400,
  'scanning.policies': [],
};

export function envName(key: string): string {
  return `PIER_${key.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

function coerce(key: string, type: Leaf, raw: unknown, env: NodeJS.ProcessEnv = {}): unknown {
  if (typeof type === 'object' && 'list' in type) {
    try {
      return type.list(raw, env);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      if (err instanceof RuleError) throw new ConfigError(`${key}${err.at}`, err.message);
      if (err instanceof PolicyConfigError) throw new ConfigError(`${key}${err.at}`, err.message);
      throw err;
    }
  }
  if (typeof type === 'object') {
    if (typeof raw !== 'string' || !type.enum.includes(raw)) throw new ConfigError(key, `must be one of ${type.enum.join(', ')} (got ${JSON.stringify(raw)})`);
    return raw;
  }
  switch (type) {
    case 'string':
      if (typeof raw !== 'string' || raw === '') throw new ConfigError(key, `must be a non-empty string`);
      return raw;
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === 'false' || raw === '0' || raw === 'no') return false;
      throw new ConfigError(key, `must be true or false (got ${JSON.stringify(raw)})`);
    case 'integer': {
      const n = typeof raw === 'string' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new ConfigError(key, `must be a non-negative integer (got ${JSON.stringify(raw)})`);
      return n;
    }
    case 'duration': {
      const seconds = parseDuration(raw);
      if (seconds === undefined) throw new ConfigError(key, `must be ${DURATION_HINT} (got ${JSON.stringify(raw)})`);
      return seconds;
    }
    case 'sizeOrPercent': {
      const m = typeof raw === 'string' ? /^(\d+(?:\.\d+)?)\s*%$/.exec(raw.trim()) : null;
      if (m) {
        const percent = Number(m[1]);
        if (percent >= 100) throw new ConfigError(key, `must be below 100% (got ${JSON.stringify(raw)})`);
        return { percent };
      }
      try {
        return { bytes: coerce(key, 'size', raw) as number };
      } catch {
        throw new ConfigError(key, `must be a size like 512MiB or a percentage like 5% (got ${JSON.stringify(raw)})`);
      }
    }
    case 'size': {
      const bytes = parseBytes(raw);
      if (bytes === undefined) throw new ConfigError(key, `must be ${BYTES_HINT} (got ${JSON.stringify(raw)})`);
      return bytes;
    }
  }
}

/** Flattens a nested object into dotted keys, rejecting unknown ones. */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>, source: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(prefix || '(root)', `${source} must be a mapping`);
  }
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (SCHEMA[key] !== undefined) out.set(key, v);
    else if (Object.keys(SCHEMA).some((s) => s.startsWith(`${key}.`)) && typeof v === 'object' && v !== null) flatten(v, key, out, source);
    else throw new ConfigError(key, `unknown key in ${source}`);
  }
}

/** A partial configuration, as nested objects: what a file or a test supplies. */
export type ConfigInput = { [key: string]: unknown };

export interface LoadOptions {
  /** YAML file; missing file is an error. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Command-line flags (undefined values are ignored). */
  flags?: { listen?: string | undefined; data?: string | undefined };
  /** Highest precedence; used by tests. */
  overrides?: ConfigInput;
}

export async function loadConfig(options: LoadOptions = {}): Promise<RegistryConfig> {
  const values = new Map<string, unknown>(Object.entries(DEFAULTS));
  if (options.file) {
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${options.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new ConfigError(options.file, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (doc !== null && doc !== undefined) flatten(doc, '', values, options.file);
  }
  const env = options.env ?? {};
  for (const key of Object.keys(SCHEMA)) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') values.set(key, v);
  }
  if (options.flags?.listen !== undefined) values.set('listen', options.flags.listen);
  if (options.flags?.data !== undefined) values.set('data', options.flags.data);
  if (options.overrides) flatten(options.overrides, '', values, 'overrides');

  const typed = new Map<string, unknown>();
  for (const [key, type] of Object.entries(SCHEMA)) {
    const raw = values.get(key);
    if (raw !== undefined) typed.set(key, coerce(key, type, raw, env));
  }
  const get = <T>(key: string): T => typed.get(key) as T;
  for (const [key, [typeKey, type]] of Object.entries(VARIANT_OF)) {
    // A default (database.synchronous) is not a choice; a value someone set is.
    const set = typed.has(key) && !(key in DEFAULTS && values.get(key) === DEFAULTS[key]);
    if (set && get(typeKey) !== type) throw new ConfigError(key, `only for ${typeKey} ${type} (${typeKey} is ${String(get(typeKey))})`);
  }
  const data = path.resolve(get<string>('data'));
  const listen = get<string>('listen');
  if (!/^(?:\[[0-9a-fA-F:]+\]|[^:]+):\d{1,5}$/.test(listen) || Number(listen.slice(listen.lastIndexOf(':') + 1)) > 65535) {
    throw new ConfigError('listen', `must be HOST:PORT (got ${JSON.stringify(listen)})`);
  }
  return {
    listen,
    data,
    storage: storageConfig(get, data),
    database: databaseConfig(get, data),
    log: { level: get('log.level') },
    uploads: {
      automaticMount: get('uploads.automaticMount'),
      maxAge: get('uploads.maxAge'),
      maxChunkSize: get('uploads.maxChunkSize'),
    },
    manifests: { maxSize: get('manifests.maxSize'), deleteIndexChildren: get('manifests.deleteIndexChildren') },
    deletes: get('deletes'),
    connections: {
      max: Math.max(1, get<number>('connections.max')),
      headerTimeout: get('connections.headerTimeout'),
      idleTimeout: get('connections.idleTimeout'),
      bodyTimeout: get('connections.bodyTimeout'),
      minBodyRate: get('connections.minBodyRate'),
    },
    shutdownTimeout: get('shutdownTimeout'),
    history: { keep: get('history.keep'), maxAge: get('history.maxAge') },
    gc: { gracePeriod: get('gc.gracePeriod'), schedule: get('gc.schedule') },
    retention: { schedule: get('retention.schedule'), rules: get('retention.rules') },
    tags: { immutable: get('tags.immutable') },
    quotas: get('quotas'),
    webhooks: {
      endpoints: get('webhooks.endpoints'),
      maxAttempts: Math.max(1, get<number>('webhooks.maxAttempts')),
      backoffMax: get('webhooks.backoffMax'),
      timeout: get('webhooks.timeout'),
    },
    lifecycle: { admins: get('lifecycle.admins') },
    auth: {
      service: get('auth.service'),
      issuer: get('auth.issuer'),
      realm: get('auth.realm'),
      keys: path.resolve(data, get<string | undefined>('auth.keys') ?? 'keys'),
      tokenTtl: get('auth.tokenTtl'),
      refreshTtl: get('auth.refreshTtl'),
      cacheTtl: get('auth.cacheTtl'),
      insecureOpen: get('auth.insecureOpen'),
      throttle: { failures: get('auth.throttle.failures'), window: get('auth.throttle.window') },
      initialAdmin: initialAdminConfig(get('auth.initialAdmin.name'), get('auth.initialAdmin.password'), get('auth.initialAdmin.passwordFile')),
    },
    tls: tlsConfig(get('tls.cert'), get('tls.key')),
    policy: get('policy'),
    scanning: { enabled: get('scanning.enabled'), sbom: get('scanning.sbom'), maxDatabaseAge: get('scanning.maxDatabaseAge'), policies: get('scanning.policies') },
  };
}

function initialAdminConfig(name: string, password: string | undefined, passwordFile: string | undefined): AuthConfig['initialAdmin'] {
  if (password !== undefined && passwordFile !== undefined) {
    throw new ConfigError('auth.initialAdmin', 'set password or passwordFile, not both');
  }
  if (password !== undefined) return { name, password };
  if (passwordFile !== undefined) return { name, passwordFile: path.resolve(passwordFile) };
  return undefined;
}

type Get = <T>(key: string) => T;

function required(get: Get, key: string, typeKey: string, type: string): string {
  const v = get<string | undefined>(key);
  if (v === undefined) throw new ConfigError(key, `required when ${typeKey} is ${type}`);
  return v;
}

function storageConfig(get: Get, data: string): StorageConfig {
  const type = get<StorageConfig['type']>('storage.type');
  if (type === 's3') {
    return { type, bucket: required(get, 'storage.s3.bucket', 'storage.type', 's3'), region: get('storage.s3.region'), endpoint: get('storage.s3.endpoint') };
  }
  return { type, path: path.resolve(data, get<string | undefined>('storage.path') ?? 'blobs'), minFree: get('storage.minFree') };
}

function databaseConfig(get: Get, data: string): DatabaseConfig {
  const type = get<DatabaseConfig['type']>('database.type');
  if (type === 'postgres') return { type, url: required(get, 'database.url', 'database.type', 'postgres') };
  return { type, path: path.resolve(data, get<string | undefined>('database.path') ?? 'pier.db'), synchronous: get('database.synchronous') };
}

function tlsConfig(cert: string | undefined, key: string | undefined): RegistryConfig['tls'] {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined) throw new ConfigError('tls.cert', 'must be set when tls.key is');
  if (key === undefined) throw new ConfigError('tls.key', 'must be set when tls.cert is');
  return { cert: path.resolve(cert), key: path.resolve(key) };
}

/** Every key with its environment variable and default, for docs and `--help`. */
export function describeConfig(): { key: string; env: string; default: unknown }[] {
  return Object.keys(SCHEMA).map((key) => ({ key, env: envName(key), default: DEFAULTS[key] }));
}
