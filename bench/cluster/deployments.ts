/**
 * The three registry deployments the cluster benchmark compares, all on the
 * same S3 endpoint (one bucket each) and, for Pier, the same PostgreSQL
 * server (one database each), on loopback with ephemeral ports:
 *
 *   pier-1        one `pier serve` on PostgreSQL + S3, clients talk to it directly
 *   pier-3        three `pier serve` replicas on one database and one bucket behind
 *                 haproxy round-robin (`option http-server-close`: every request a
 *                 new choice of replica, no stickiness), as scripts/cluster.sh lays it out
 *   distribution  CNCF distribution 2.8 with its S3 driver, one process
 *
 * Each can be started with S3 redirects on (blob GETs answer 307 to a
 * presigned URL) or off (the registry streams the bytes), and stopped, as
 * many times as a run needs; the stored data stays between starts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import type { Daemon } from '../lib/proc.js';
import { startDaemon, stopDaemon, waitFor } from '../lib/proc.js';
import { freePort, repoRoot, waitUp } from '../lib/registries.js';
import type { Stores } from './stores.js';

export type DeploymentId = 'pier-1' | 'pier-3' | 'distribution';
export const DEPLOYMENTS: readonly DeploymentId[] = ['pier-1', 'pier-3', 'distribution'];
export const DEPLOYMENT_LABEL: Record<DeploymentId, string> = {
  'pier-1': 'Pier ×1',
  'pier-3': 'Pier ×3 + haproxy',
  distribution: 'distribution 2.8',
};

/** A deployment while it runs. */
export interface Running {
  readonly id: DeploymentId;
  readonly redirect: boolean;
  /** What clients talk to: `http://127.0.0.1:PORT` (haproxy for pier-3). */
  readonly url: string;
  /** The registry processes (replicas), whose CPU the benchmark sums. */
  readonly registryPids: readonly number[];
  /** haproxy, when there is one. */
  readonly balancerPid?: number;
  stop(): Promise<void>;
}

/** A deployment's stores, made once; started and stopped per phase. */
export interface Deployment {
  readonly id: DeploymentId;
  start(redirect: boolean): Promise<Running>;
}

const yamlString = (s: string): string => JSON.stringify(s);

async function startPierReplica(dir: string, name: string, configFile: string): Promise<{ daemon: Daemon; host: string }> {
  const dataDir = join(dir, name);
  mkdirSync(dataDir, { recursive: true });
  const host = `127.0.0.1:${await freePort()}`;
  const daemon = startDaemon(
    name,
    process.execPath,
    [...(process.env.PIER_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), join(repoRoot(), 'bin/pier.js'), 'serve', '--config', configFile, '--listen', host, '--data', dataDir],
    join(dir, `${name}.log`),
    // Request logging off, as distribution's access log is off.
    { ...process.env, PIER_LOG_LEVEL: process.env.PIER_LOG_LEVEL ?? 'warn', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  );
  await waitUp(daemon, `http://${host}`);
  return { daemon, host };
}

async function startHaproxy(dir: string, backends: readonly string[]): Promise<{ daemon: Daemon; url: string }> {
  const host = `127.0.0.1:${await freePort()}`;
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '    maxconn 4096',
      'defaults',
      '    mode http',
      '    option http-server-close',
      '    timeout connect 5s',
      '    timeout client 300s',
      '    timeout server 300s',
      '    retries 2',
      '    option redispatch',
      'frontend registry',
      `    bind ${host}`,
      '    default_backend replicas',
      'backend replicas',
      '    balance roundrobin',
      '    option httpchk GET /healthz',
      ...backends.map((b, i) => `    server replica-${i + 1} ${b} check inter 1s fall 2 rise 1`),
      '',
    ].join('\n'),
  );
  const daemon = startDaemon('haproxy', 'haproxy', ['-db', '-f', cfg], join(dir, 'haproxy.log'));
  const url = `http://${host}`;
  await waitFor(
    `haproxy at ${url}/healthz`,
    async () => {
      if (daemon.hasExited()) throw new Error('haproxy exited');
      const res = await request(`${url}/healthz`, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      return res.statusCode === 200;
    },
    30_000,
  );
  return { daemon, url };
}

/** Pier with `replicas` processes on a fresh database and bucket; behind haproxy when more than one. */
export async function pierDeployment(id: 'pier-1' | 'pier-3', replicas: number, stores: Stores, dir: string): Promise<Deployment> {
  const databaseUrl = await stores.database(id);
  const bucket = await stores.bucket(id);
  const s3 = stores.s3;
  let phase = 0;
  return {
    id,
    async start(redirect) {
      const phaseDir = join(dir, `${id}-${++phase}`);
      mkdirSync(phaseDir, { recursive: true });
      const configFile = join(phaseDir, 'pier.yaml');
      writeFileSync(
        configFile,
        [
          'database:',
          '  type: postgres',
          `  url: ${yamlString(databaseUrl)}`,
          'storage:',
          '  type: s3',
          '  s3:',
          `    endpoint: ${yamlString(s3.endpoint)}`,
          `    region: ${yamlString(s3.region)}`,
          `    bucket: ${yamlString(bucket)}`,
          `    accessKeyId: ${yamlString(s3.accessKeyId)}`,
          `    secretAccessKey: ${yamlString(s3.secretAccessKey)}`,
          '    forcePathStyle: true',
          `    redirect: ${redirect}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      const daemons: Daemon[] = [];
      const stop = async (): Promise<void> => {
        await Promise.all(daemons.map((d) => stopDaemon(d)));
      };
      try {
        // The first runs the migrations (once, under a lock) and creates the signing keys; the others start together.
        const first = await startPierReplica(phaseDir, 'replica-1', configFile);
        daemons.push(first.daemon);
        const rest = await Promise.allSettled(Array.from({ length: replicas - 1 }, (_, i) => startPierReplica(phaseDir, `replica-${i + 2}`, configFile)));
        for (const r of rest) if (r.status === 'fulfilled') daemons.push(r.value.daemon);
        for (const r of rest) if (r.status === 'rejected') throw r.reason;
        const hosts = [first, ...rest.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))].map((r) => r.host);
        const replicaPids = daemons.map((d) => d.pid);
        if (replicas === 1) return { id, redirect, url: `http://${hosts[0]!}`, registryPids: replicaPids, stop };
        const lb = await startHaproxy(phaseDir, hosts);
        daemons.push(lb.daemon);
        return { id, redirect, url: lb.url, registryPids: replicaPids, balancerPid: lb.daemon.pid, stop };
      } catch (err) {
        await stop();
        throw err;
      }
    },
  };
}

/**
 * CNCF distribution 2.8 on a fresh bucket with its S3 driver (`s3-aws`).
 * 2.8 has no `forcepathstyle` parameter: setting `regionendpoint` makes it
 * use path-style URLs, which is what Ceph RGW on an IP address needs.
 * `cache: blobdescriptor: inmemory` as the `registry:2` image's own config
 * ships it; `redirect: disable` is the switch for blob GET redirects (on by
 * default with S3).
 */
export async function distributionDeployment(stores: Stores, dir: string): Promise<Deployment> {
  const bucket = await stores.bucket('distribution');
  const s3 = stores.s3;
  let phase = 0;
  return {
    id: 'distribution',
    async start(redirect) {
      const phaseDir = join(dir, `distribution-${++phase}`);
      mkdirSync(phaseDir, { recursive: true });
      const host = `127.0.0.1:${await freePort()}`;
      const config = join(phaseDir, 'config.yml');
      writeFileSync(
        config,
        [
          'version: 0.1',
          'log: {level: warn, accesslog: {disabled: true}}',
          'storage:',
          '  s3:',
          `    accesskey: ${yamlString(s3.accessKeyId)}`,
          `    secretkey: ${yamlString(s3.secretAccessKey)}`,
          `    region: ${yamlString(s3.region)}`,
          `    regionendpoint: ${yamlString(s3.endpoint)}`,
          `    bucket: ${yamlString(bucket)}`,
          `    secure: ${s3.endpoint.startsWith('https:')}`,
          '    v4auth: true',
          '  delete: {enabled: true}',
          '  cache: {blobdescriptor: inmemory}',
          `  redirect: {disable: ${!redirect}}`,
          `http: {addr: ${host}}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      // aws-sdk-go panics at start when AWS_CA_BUNDLE names a bundle it cannot load (this
      // machine's has certificates Go rejects); the endpoint is plain HTTP on loopback anyway.
      const env = { ...process.env };
      delete env.AWS_CA_BUNDLE;
      const daemon = startDaemon('distribution', 'docker-registry', ['serve', config], join(phaseDir, 'registry.log'), env);
      await waitUp(daemon, `http://${host}`);
      return { id: 'distribution', redirect, url: `http://${host}`, registryPids: [daemon.pid], stop: () => stopDaemon(daemon) };
    },
  };
}
