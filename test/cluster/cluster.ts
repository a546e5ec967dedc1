/**
 * A scale-out Pier for tests, as scripts/cluster.sh lays it out: three
 * `pier serve` processes (each its own --data folder) on one fresh
 * PostgreSQL database and one fresh S3 bucket (services.ts), behind haproxy
 * round-robin with `option http-server-close` (every request a new choice
 * of replica, no stickiness), all on 127.0.0.1 with ephemeral ports.
 *
 * Each replica's JSON request log is kept ({@link ClusterReplica.requests}),
 * so a test can tell which replica answered which request. Replicas can be
 * SIGKILLed and restarted on their port (haproxy's health check takes a dead
 * one out within about a second; `retries` and `option redispatch` send a
 * refused connection to another).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { freshBucket, freshDatabase, scaleOutSkip, scaleOutYaml } from './services.js';

export interface ClusterReplica {
  name: string;
  /** `127.0.0.1:PORT` of this replica (not through haproxy). */
  host: string;
  /** Request log lines (method, url, status, user agent) this replica has written since it (re)started last, and before. */
  requests(): { method: string; url: string; status: number; at: number; agent: string }[];
  /** Log lines at error level or above (their message and error), for failure messages. */
  errors(): string[];
  /** SIGKILL, without waiting for anything. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  restart(): Promise<void>;
  running(): boolean;
}

export interface TestCluster {
  /** `127.0.0.1:PORT` of haproxy: the registry as clients name it. */
  host: string;
  url: string;
  replicas: ClusterReplica[];
  /** The replicas' shared config file (database, storage and the test's extra keys). */
  configFile: string;
  dir: string;
  stop(): Promise<void>;
}

/** Why the cluster tests cannot run here (PostgreSQL or S3 missing, or no haproxy), or false. */
export function clusterSkip(): string | false {
  return scaleOutSkip();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the cluster. `extraYaml` is appended to the replicas' config (auth,
 * webhooks, gc keys); `env` is added to each replica's environment.
 */
export async function startCluster(options: { replicas?: number; extraYaml?: string; env?: NodeJS.ProcessEnv } = {}): Promise<TestCluster> {
  const dir = await tempDir('pier-cluster-');
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const db = await freshDatabase();
    cleanups.push(() => db.drop());
    const bucket = await freshBucket();
    cleanups.push(() => bucket.drop());
    const configFile = path.join(dir, 'pier.yaml');
    await writeFile(configFile, `${scaleOutYaml(db.url, bucket.bucket)}${options.extraYaml ?? ''}`, { mode: 0o600 });

    const replicas: ClusterReplica[] = [];
    const count = options.replicas ?? 3;
    // One first, so it runs the migrations and creates the signing keys; the others start together after it.
    for (let i = 1; i <= count; i++) {
      const name = `replica-${i}`;
      const dataDir = path.join(dir, name);
      await mkdir(dataDir, { recursive: true });
      const port = await freePort();
      let current: SpawnedRegistry | undefined;
      const past: Record<string, unknown>[][] = [];
      const start = async () => {
        current = await spawnTestRegistry({ dataDir, listen: `127.0.0.1:${port}`, args: ['--config', configFile], env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...options.env } });
      };
      await start();
      replicas.push({
        name,
        host: `127.0.0.1:${port}`,
        requests: () =>
          [...past.flat(), ...(current?.logs ?? [])]
            .filter((l) => l.msg === 'request')
            .map((l) => ({ method: String(l.method), url: String(l.url), status: Number(l.status), at: Date.parse(String(l.time)), agent: typeof l.agent === 'string' ? l.agent : '' })),
        errors: () =>
          [...past.flat(), ...(current?.logs ?? [])]
            .filter((l) => Number(l.level) >= 50)
            .map((l) => `${String(l.msg)}: ${JSON.stringify(l.err ?? '')}`),
        async kill() {
          if (!current) return;
          const was = current;
          current = undefined;
          past.push(was.logs);
          await was.kill('SIGKILL');
        },
        async restart() {
          if (current) return;
          await start();
        },
        running: () => current !== undefined,
      });
      cleanups.push(async () => {
        const c = current;
        current = undefined;
        await c?.kill('SIGKILL');
      });
    }

    const lbPort = await freePort();
    const cfg = path.join(dir, 'haproxy.cfg');
    await writeFile(
      cfg,
      [
        'global',
        '    maxconn 4096',
        'defaults',
        '    mode http',
        '    option http-server-close',
        '    timeout connect 2s',
        '    timeout client 300s',
        '    timeout server 300s',
        '    retries 3',
        '    option redispatch',
        'frontend registry',
        `    bind 127.0.0.1:${lbPort}`,
        '    default_backend replicas',
        'backend replicas',
        '    balance roundrobin',
        '    option httpchk GET /healthz',
        ...replicas.map((r) => `    server ${r.name} ${r.host} check inter 500ms fall 1 rise 1`),
        '',
      ].join('\n'),
    );
    const haproxy = await startHaproxy(cfg, lbPort);
    cleanups.push(async () => {
      haproxy.kill('SIGKILL');
      await new Promise((r) => (haproxy.exitCode !== null || haproxy.signalCode !== null ? r(undefined) : haproxy.once('exit', r)));
    });
    const host = `127.0.0.1:${lbPort}`;
    return { host, url: `http://${host}`, replicas, configFile, dir, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function startHaproxy(cfg: string, port: number): Promise<ChildProcess> {
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`haproxy did not answer on ${port}: ${stderr}`);
}
