/**
 * Registry configuration: one typed schema, read from (lowest to highest
 * precedence) defaults, a YAML file, `PIER_*` environment variables and
 * command-line flags, and checked once at start. A bad value is a
 * {@link ConfigError} naming the key.
 *
 * Each key is declared once below (or in the auth and lifecycle sections it
 * composes) with src/shared/config-schema.ts: its type, default, doc line and
 * validation; {@link RegistryConfig} is inferred from {@link SCHEMA}, and the
 * README table comes from {@link describeConfig}. Every leaf key has an
 * environment variable: the key path in upper snake case behind `PIER_`
 * (`uploads.maxAge` → `PIER_UPLOADS_MAX_AGE`).
 */
import { readFile } from 'node:fs/promises';
import { authSection, policyKey } from '../auth/config.js';
import { lifecycleShape } from '../lifecycle/config.js';
import { signaturesSection } from '../service/trust-policy.js';
import { PierError } from '../oci/pier-error.js';
import { parseBytes } from '../shared/bytes.js';
import { Pattern } from '../lifecycle/rules.js';
import { parseVulnerabilityRules } from '../supply/policy.js';
import { bytes, count, dataPath, describeKeys, flag, key, list, localPath, oneOf, readConfig, section, seconds, text, union, type Out } from '../shared/config-schema.js';
import type { MinFree } from '../store/disk-space.js';

export { envName } from '../shared/config-schema.js';

export class ConfigError extends PierError {
  readonly code = 'ERR_CONFIG';
  constructor(key: string, message: string) {
    super(`invalid configuration: ${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

const minFree = key({
  default: '1%',
  doc: "New uploads are refused with 507 while the storage or the database's volume has less free space than this (`512MiB`, or `5%` of the volume), so the database always has room; `0` = off. With `s3`, only the database's volume is watched. Pulls and manifest pushes go on; `/healthz` says `degraded` (still 200) and `/metrics` has `pier_storage_free_bytes` and `pier_storage_refusals_total`.",
  parse: (raw, ctx): MinFree => {
    const m = typeof raw === 'string' ? /^(\d+(?:\.\d+)?)\s*%$/.exec(raw.trim()) : null;
    if (m) {
      const percent = Number(m[1]);
      return percent < 100 ? { percent } : ctx.fail(`must be below 100% (got ${JSON.stringify(raw)})`);
    }
    const n = parseBytes(raw);
    return n !== undefined ? { bytes: n } : ctx.fail(`must be a size like 512MiB or a percentage like 5% (got ${JSON.stringify(raw)})`);
  },
});

/** Every key of the registry, in the order of the README table. Adding a key: one line here (or in its module's section). */
const SCHEMA = section({
  listen: text({
    default: '127.0.0.1:5000',
    doc: 'Address to listen on (`--listen`). A non-loopback address needs access control.',
    check: (v) => (/^(?:\[[0-9a-fA-F:]+\]|[^:]+):\d{1,5}$/.test(v) && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535 ? undefined : `must be HOST:PORT (got ${JSON.stringify(v)})`),
  }),
  data: localPath({ default: './.pier-data', doc: 'Data folder (`--data`): blobs and the SQLite database, created if missing.' }),
  storage: union(
    { default: 'fs', doc: 'Blob store adapter: `fs` (files under `data`) or `s3` (an S3-compatible bucket; upload sessions live in the database, so any replica continues them).' },
    {
      fs: section({
        path: dataPath({ default: 'blobs', doc: 'Blob folder, relative to `data`. Only for `fs`.' }),
        minFree,
        accelRedirect: text({
          doc: "Behind nginx: a URL path prefix (e.g. `/_pier_blobs/`). Pier checks each blob GET and answers with `X-Accel-Redirect: <prefix>sha256/<xx>/<hex>`; nginx sends the file (sendfile) from an `internal` location aliased to the blob folder's `blobs/` (snippet in [docs/performance.md](docs/performance.md#behind-nginx-x-accel-redirect)). Only for `fs`.",
          check: (v) => (/^\/[\w./-]*\/$/.test(v) ? undefined : `must be a URL path that starts and ends with "/" (e.g. /_pier_blobs/), got ${JSON.stringify(v)}`),
        }),
      }),
      s3: section(
        {
          s3: section({
            bucket: text({ required: true, doc: 'S3 bucket (must exist; checked at start); required when `storage.type` is `s3`, refused otherwise.' }),
            region: text({ default: 'us-east-1', doc: 'S3 region. Only for `s3`.' }),
            endpoint: text({ doc: 'S3-compatible endpoint URL (Ceph RGW, MinIO); unset: AWS. Only for `s3`.' }),
            accessKeyId: text({ doc: "Access key; with `secretAccessKey`, or neither (the AWS SDK's own chain: `AWS_ACCESS_KEY_ID`, profiles, instance roles). Only for `s3`." }),
            secretAccessKey: text({ doc: 'Secret key (prefer the environment variable to the file). Only for `s3`.' }),
            forcePathStyle: flag({ doc: 'Path-style URLs (`endpoint/bucket/key`); default on when `endpoint` is set, off for AWS. Only for `s3`.' }),
            timeout: seconds({
              default: '60s',
              doc: 'A request to the S3 store that makes no progress this long (no connection, or no byte either way) fails, and the SDK retries it (3 attempts in all): a store that stops answering (a full Ceph OSD blocks every write) fails the request with `ERR_STORAGE_FAILED` and `pier serve` at start with one line, instead of hanging. A blob GET streamed through Pier whose client reads nothing for this long is cut too. Only for `s3`.',
            }),
            redirect: flag({
              default: false,
              doc: 'Blob GETs answer `307` to a presigned S3 URL (valid 20 minutes), so blob bytes bypass the registry; clients must reach the endpoint. Only for `s3`.',
            }),
          }),
          minFree,
        },
        ({ s3, minFree }, ctx) => {
          if ((s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
            return ctx.fail('set both storage.s3.accessKeyId and storage.s3.secretAccessKey, or neither (the AWS SDK then finds credentials)', '.s3.secretAccessKey');
          }
          return { ...s3, forcePathStyle: s3.forcePathStyle ?? s3.endpoint !== undefined, minFree };
        },
      ),
    },
  ),
  database: union(
    { default: 'sqlite', doc: 'Metadata store: `sqlite` (embedded), or `postgres` for replicas sharing one database (migrations run once under a lock; token signing keys, leases, claims, locks and the login throttle live in it).' },
    {
      sqlite: section({
        path: dataPath({ default: 'pier.db', doc: 'SQLite file, relative to `data`. Only for `sqlite`.' }),
        synchronous: oneOf(['normal', 'full'], {
          default: 'normal',
          doc: "`normal`: every acknowledged commit survives a crash of Pier (SIGKILL), and a power loss leaves the database consistent but may roll back the last commits; `full`: fsync every commit, so an acknowledged push also survives a power loss (slower pushes). Blobs are fsync'd either way.",
        }),
      }),
      postgres: section({
        url: text({ required: true, doc: 'PostgreSQL connection URL (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`); required when `database.type` is `postgres`, refused otherwise.' }),
      }),
    },
  ),
  log: section({
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', doc: '`fatal`, `error`, `warn`, `info` (one line per request), `debug`, `trace`, `silent`.' }),
  }),
  uploads: section({
    automaticMount: flag({
      default: true,
      doc: 'Mount a blob the registry already has when a client sends `mount` without `from` (only from repositories the caller may pull). Set `false` to run the conformance suite with `OCI_AUTOMATIC_CROSSMOUNT=0`.',
    }),
    maxAge: seconds({ default: '24h', doc: 'Upload sessions idle this long are expired and their bytes removed (`30s`, `10m`, `24h`, `7d`).' }),
    maxChunkSize: bytes({ default: 0, doc: 'Largest PATCH chunk accepted (`0` = no limit); advertised as `OCI-Chunk-Max-Length`.' }),
  }),
  manifests: section({
    maxSize: bytes({ default: '4MiB', doc: 'Largest manifest accepted; larger is 413.' }),
    deleteIndexChildren: flag({
      default: false,
      doc: 'Allow DELETE by digest of a manifest an index in the same repository lists (breaking the index). When `false` it is refused (409 `DENIED` naming the index) unless an admin adds `?override=index` (`pier delete --force`).',
    }),
  }),
  deletes: flag({
    default: true,
    doc: 'Allow DELETE of manifests, tags and blobs (405 `UNSUPPORTED` otherwise). DELETE by tag removes that tag only; by digest, the manifest and every tag on it.',
  }),
  connections: section({
    max: count({
      default: 1024,
      atLeast: 1,
      doc: 'Most open client connections (lowered to the open-file limit less 64). At the limit the oldest idle or header-incomplete connection is closed for the new one; only when all are busy is a new one refused.',
    }),
    headerTimeout: seconds({ default: '60s', doc: 'A connection that has not sent a complete request header this long after connecting is closed (nginx `client_header_timeout`).' }),
    idleTimeout: seconds({ default: '75s', doc: 'A keep-alive connection idle this long between requests is closed (nginx `keepalive_timeout`).' }),
    bodyTimeout: seconds({ default: '60s', doc: "The window over which an upload's body rate is measured (nginx `client_body_timeout`); `0` = off." }),
    minBodyRate: bytes({ default: '1KiB', doc: 'Bytes per second a request body must average over each `bodyTimeout` window; a slower (stalled) client is cut off.' }),
  }),
  shutdownTimeout: seconds({ default: '30s', doc: 'On SIGTERM, how long in-flight requests may take before connections are closed.' }),
  auth: authSection,
  tls: section(
    {
      cert: localPath({ doc: 'PEM certificate (chain): with `tls.key`, serve HTTPS.' }),
      key: localPath({ doc: 'PEM private key for `tls.cert`.' }),
    },
    ({ cert, key }, ctx) => {
      if (cert === undefined && key === undefined) return undefined;
      if (cert === undefined) return ctx.fail('must be set when tls.key is', '.cert');
      if (key === undefined) return ctx.fail('must be set when tls.cert is', '.key');
      return { cert, key };
    },
  ),
  policy: policyKey,
  ...lifecycleShape,
  // The supply-chain section (src/supply; ScanningConfig in src/supply/supply.ts).
  scanning: section({
    enabled: flag({ default: true, doc: 'Scan each pushed image (inventory, findings) in the background, and match every image again after `pier vulndb import`. `pier scan` works either way.' }),
    sbom: flag({
      default: true,
      doc: 'Write a CycloneDX 1.5 SBOM for each scanned image as an OCI 1.1 referrer (`artifactType: application/vnd.cyclonedx+json`, annotation `dev.pier.sbom.generator: pier`), as `system:scanner`, outside quotas; it goes with its image at GC. `false`: no referrer is added (the referrers API then lists only what clients pushed); see docs/decisions/0120.',
    }),
    maxDatabaseAge: seconds({ default: '7d', doc: 'An imported OSV database older than this is reported as stale (import, `pier scan`, the log at start).' }),
    policies: list({
      doc: 'Vulnerability policy: list of `{repositories, severity, allow, pending}`; a pull by tag of an image with a finding at or above `severity` (`critical`, `high`, `medium`, `low`) is refused (`DENIED`, naming the findings) unless its ID is in `allow` (`ID` or `{id, expires}`); `pending: allow` (default) serves images whose scan is pending or failed and records it in the audit log, `deny` refuses them. See docs/api.md.',
      parse: (raw, ctx) =>
        parseVulnerabilityRules(
          raw,
          (v, at) => {
            try {
              return Pattern.parse(v, at);
            } catch (err) {
              return ctx.fail((err as Error).message, at);
            }
          },
          (at, message) => ctx.fail(message, at),
        ),
    }),
  }),
  signatures: signaturesSection,
});

/** The whole configuration, inferred from {@link SCHEMA}. */
export type RegistryConfig = Out<typeof SCHEMA>;
/** The blob store: one variant per adapter; a key exists only in its variant. */
export type StorageConfig = RegistryConfig['storage'];
/** The metadata store: one variant per adapter. */
export type DatabaseConfig = RegistryConfig['database'];

/**
 * The adapters, narrowed from the config and checked beyond the schema
 * (a `database.url` that is not a postgres:// URL is a ConfigError, one
 * line). Called by the composition roots.
 */
export function embeddedAdapters(config: Pick<RegistryConfig, 'storage' | 'database'>): {
  storage: StorageConfig;
  database: DatabaseConfig;
} {
  if (config.database.type === 'postgres' && !/^postgres(ql)?:\/\//.test(config.database.url)) {
    throw new ConfigError('database.url', 'must be a postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)');
  }
  return { storage: config.storage, database: config.database };
}

const KEYS = describeKeys(SCHEMA);
const LEAVES = new Set(KEYS.map((k) => k.key));

/** Flattens a nested object into dotted keys, rejecting unknown ones. */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>, source: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(prefix || '(root)', `${source} must be a mapping`);
  }
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (LEAVES.has(key)) out.set(key, v);
    else if (KEYS.some((s) => s.key.startsWith(`${key}.`)) && typeof v === 'object' && v !== null) flatten(v, key, out, source);
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
  const values = new Map<string, unknown>();
  if (options.file) {
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${options.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    // The YAML parser is loaded only for a config file (most of a registry configured by environment never needs it).
    const { parse: parseYaml } = await import('yaml');
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new ConfigError(options.file, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (doc !== null && doc !== undefined) flatten(doc, '', values, options.file);
  }
  const env = options.env ?? {};
  for (const { key, env: name } of KEYS) {
    const v = env[name];
    if (v !== undefined && v !== '') values.set(key, v);
  }
  if (options.flags?.listen !== undefined) values.set('listen', options.flags.listen);
  if (options.flags?.data !== undefined) values.set('data', options.flags.data);
  if (options.overrides) flatten(options.overrides, '', values, 'overrides');
  return readConfig(SCHEMA, values, { env, dataKey: 'data', error: (key, message) => new ConfigError(key, message) });
}

/** Every key with its environment variable, default and meaning, for docs and `--help`. */
export function describeConfig(): { key: string; env: string; default: unknown; doc: string }[] {
  return KEYS.map(({ key, env, default: d, doc }) => ({ key, env, default: d, doc }));
}

/** The README's configuration table (test/docs.test.ts keeps README.md in step; `node scripts/config-table.mjs` rewrites it). */
export function configTable(): string {
  const cell = (v: unknown): string => (v === undefined ? '' : `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``);
  const rows = describeConfig().map((c) => `| \`${c.key}\` | \`${c.env}\` | ${cell(c.default)} | ${c.doc} |`);
  return ['| key | environment | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
