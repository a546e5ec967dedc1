/**
 * `bench/cluster/run [--quick] [--rounds N] [--mib N] [--seconds S]`
 *
 * Scale-out comparison on one S3 endpoint (issue 13): Pier with one replica
 * on PostgreSQL + S3, Pier with three replicas behind haproxy round-robin,
 * and CNCF distribution 2.8 with its S3 driver (deployments.ts). Measures a
 * 1 GiB blob push (monolithic, and in 16 MiB chunks), a 1 GiB blob pull (every
 * byte, redirects followed, digest checked) with S3 redirects off and on, and
 * GET manifest at 50 connections with `ab`; registry CPU is summed over every
 * registry process (haproxy's and the S3 store's are shown apart). Prints one
 * table with Pier/distribution ratios and writes bench/results/cluster-<time>.json.
 * Nothing passes or fails: the exit code is 0 unless the harness broke.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { runLoad } from '../lib/ab.js';
import { MutableRandomFile, OCI_MANIFEST, memoryImage, randomBuffer } from '../lib/image.js';
import { MANIFEST_ACCEPT, RegistryClient } from '../lib/oci-client.js';
import { cpuModel, cpuTimes, killAllNow, stopAll, syncDisks, versionOf } from '../lib/proc.js';
import { repoRoot } from '../lib/registries.js';
import { fmt, summarize } from '../lib/results.js';
import type { Summary } from '../lib/results.js';
import { errorText } from '../registry/context.js';
import type { Deployment, DeploymentId, Running } from './deployments.js';
import { DEPLOYMENTS, DEPLOYMENT_LABEL, distributionDeployment, pierDeployment } from './deployments.js';
import { openStores } from './stores.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
/** How long a push or pull request may wait for headers or body bytes (a 1 GiB PUT on a busy RGW nears the shared client's 2 minutes). */
const PUSH_TIMEOUT_MS = 900_000;

const USAGE = `Usage: bench/cluster/run [--quick] [--rounds N] [--mib N] [--chunk-mib N] [--seconds S] [--connections C]

Pier x1 and Pier x3 behind haproxy (PostgreSQL + S3) against CNCF distribution 2.8 (S3 driver), one S3 endpoint.
  --quick          128 MiB blobs, 2 s loads: proves the harness runs
  --rounds N       rounds (default 1; medians and min-max are reported). Each round stores about
                   12 x --mib in the S3 store, and Ceph RGW frees deleted objects only after its GC
                   (rgw_gc_obj_min_wait, 2 h): scripts/services/start-s3.sh's 20 GiB OSD holds one
                   round at 1 GiB; a full OSD blocks every write on it
  --mib N          blob size for push and pull in MiB (default 1024)
  --chunk-mib N    chunk size of the chunked push (default 16)
  --seconds S      GET manifest load duration (default 10)
  --connections C  GET manifest load connections (default 50)

Environment: PIER_TEST_PG_URL and PIER_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY/_REGION name the
stores (bench/cluster/run starts PostgreSQL and Ceph RGW when they are unset); PIER_BENCH_NAME_PREFIX
prefixes the databases and buckets made (default pier-bench); PIER_BENCH_S3_PIDS (comma-separated)
are the S3 store's processes whose CPU is reported (set by bench/cluster/run when it started RGW);
PIER_BENCH_NODE_ARGS adds node flags to every Pier replica (e.g. "--cpu-prof --cpu-prof-dir=DIR").`;

interface ClusterOptions {
  readonly quick: boolean;
  readonly rounds: number;
  readonly bytes: number;
  readonly chunk: number;
  readonly seconds: number;
  readonly connections: number;
}

function parseOptions(argv: string[]): ClusterOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      mib: { type: 'string' },
      'chunk-mib': { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const int = (name: string, v: string | undefined, dflt: number, min: number, max: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${v}`);
    return n;
  };
  return {
    quick,
    rounds: int('rounds', values.rounds, 1, 1, 20),
    bytes: int('mib', values.mib, quick ? 128 : 1024, 1, 16384) * MiB,
    chunk: int('chunk-mib', values['chunk-mib'], 16, 1, 1024) * MiB,
    seconds: int('seconds', values.seconds, quick ? 2 : 10, 1, 600),
    connections: int('connections', values.connections, 50, 1, 1000),
  };
}

/** One measured quantity, a list of samples per deployment. */
interface Metric {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly samples: Record<DeploymentId, number[]>;
  readonly problems: Record<DeploymentId, string[]>;
}

class ClusterResults {
  readonly metrics: Metric[] = [];
  readonly notes: string[] = [];

  metric(id: string, label: string, unit: string): void {
    if (this.metrics.some((m) => m.id === id)) return;
    const per = <T>(f: () => T): Record<DeploymentId, T> => ({ 'pier-1': f(), 'pier-3': f(), distribution: f() });
    this.metrics.push({ id, label, unit, samples: per(() => []), problems: per(() => []) });
  }

  private get(id: string): Metric {
    const m = this.metrics.find((x) => x.id === id);
    if (!m) throw new Error(`unknown metric ${id}`);
    return m;
  }

  add(id: string, d: DeploymentId, value: number): void {
    this.get(id).samples[d].push(value);
  }

  problem(id: string, d: DeploymentId, text: string): void {
    const p = this.get(id).problems[d];
    if (!p.includes(text) && p.length < 5) p.push(text);
  }
}

function cell(s: Summary | undefined, unit: string): string {
  if (!s) return '—';
  const main = `${fmt(s.median, unit)} ${unit}`.trim();
  return s.n < 2 || s.min === s.max ? main : `${main} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}

function ratio(a: Summary | undefined, b: Summary | undefined): number | undefined {
  return a && b && b.median !== 0 ? a.median / b.median : undefined;
}

/** metric | Pier ×1 | Pier ×3 + haproxy | distribution | ×1/d | ×3/d */
function renderTable(results: ClusterResults): string {
  const head = ['measurement', ...DEPLOYMENTS.map((d) => DEPLOYMENT_LABEL[d]), 'Pier×1/d', 'Pier×3/d'];
  const rows = results.metrics.map((m) => {
    const s = Object.fromEntries(DEPLOYMENTS.map((d) => [d, summarize(m.samples[d])])) as Record<DeploymentId, Summary | undefined>;
    const r = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '—' : `${x.toFixed(2)}x`);
    const flagged = DEPLOYMENTS.some((d) => m.problems[d].length > 0);
    return [m.label + (flagged ? ' (!)' : ''), ...DEPLOYMENTS.map((d) => cell(s[d], m.unit)), r(ratio(s['pier-1'], s.distribution)), r(ratio(s['pier-3'], s.distribution))];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: readonly string[]): string => row.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

/** CPU seconds (user + system, all threads) of `pids` together; a process already gone counts 0. */
function cpuOf(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const t = cpuTimes(pid);
      sum += t.user + t.sys;
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** CPU readings around one operation: the registry's processes, haproxy's, the S3 store's. */
class CpuMeter {
  private readonly start: { registry: number; balancer: number; s3: number };

  constructor(
    private readonly running: Running,
    private readonly s3Pids: readonly number[],
  ) {
    this.start = this.read();
  }

  private read(): { registry: number; balancer: number; s3: number } {
    return {
      registry: cpuOf(this.running.registryPids),
      balancer: this.running.balancerPid === undefined ? 0 : cpuOf([this.running.balancerPid]),
      s3: cpuOf(this.s3Pids),
    };
  }

  stop(): { registry: number; balancer: number; s3: number } {
    const end = this.read();
    return { registry: end.registry - this.start.registry, balancer: end.balancer - this.start.balancer, s3: end.s3 - this.start.s3 };
  }
}

/**
 * GETs a blob the way a pulling client does: follows redirects (to a
 * presigned S3 URL), reads every byte and checks size and digest. Returns
 * whether a redirect was followed.
 */
async function pullBlob(baseUrl: string, repo: string, digest: string, size: number): Promise<boolean> {
  let url = `${baseUrl}/v2/${repo}/blobs/${digest}`;
  let redirected = false;
  for (let hop = 0; hop < 5; hop++) {
    const res = await request(url, { method: 'GET', headersTimeout: PUSH_TIMEOUT_MS, bodyTimeout: PUSH_TIMEOUT_MS });
    if ([301, 302, 303, 307, 308].includes(res.statusCode)) {
      await res.body.dump();
      const location = res.headers.location;
      if (typeof location !== 'string') throw new Error(`GET ${url}: ${res.statusCode} without a Location`);
      url = new URL(location, url).toString();
      redirected = true;
      continue;
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      throw new Error(`GET ${url}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    }
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of res.body) {
      hash.update(c as Buffer);
      n += (c as Buffer).length;
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (n !== size || got !== digest) throw new Error(`GET ${repo}@${digest}: got ${n} bytes with digest ${got}`);
    return redirected;
  }
  throw new Error(`GET ${repo}@${digest}: more than 5 redirects`);
}

/** Deployments in the order they run in round `round` (rotating, so none always goes first). */
function order(round: number): DeploymentId[] {
  return DEPLOYMENTS.map((_, i) => DEPLOYMENTS[(i + round) % DEPLOYMENTS.length]!);
}

function sizeLabel(bytes: number): string {
  return bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`;
}

const MANIFEST_REPO = 'bench/cluster-serve';
const BLOB_REPO = 'bench/cluster-blob';

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = new Date();
  const tmp = mkdtempSync(join(process.env.PIER_BENCH_TMP ?? tmpdir(), 'pier-bench-cluster-'));
  const log = (m: string): void => {
    process.stderr.write(`[${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
  };
  const stores = openStores();
  const s3Pids = (process.env.PIER_BENCH_S3_PIDS ?? '').split(',').filter(Boolean).map(Number).filter(Number.isInteger);
  const cleanup = async (): Promise<void> => {
    await stopAll();
    await stores.removeAll().catch((err: unknown) => log(errorText(err)));
    rmSync(tmp, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping every process this run started, removing its databases and buckets`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllNow);

  const load = { start: loadavg()[0]!, max: loadavg()[0]! };
  const loadTimer = setInterval(() => (load.max = Math.max(load.max, loadavg()[0]!)), 5000);
  loadTimer.unref();
  const results = new ClusterResults();
  const failures: string[] = [];
  const size = options.bytes;
  const gib = size / GiB;
  const c = options.connections;
  const pushModes = [
    { id: 'push-mono', label: `push ${sizeLabel(size)} blob, monolithic` },
    { id: 'push-chunked', label: `push ${sizeLabel(size)} blob, ${options.chunk / MiB} MiB chunks` },
  ] as const;
  const perGiB = (id: string, label: string): void => {
    results.metric(`${id}.wall`, `${label}: wall time`, 's');
    results.metric(`${id}.cpu`, `${label}: registry CPU (all replicas)`, 's/GiB');
    results.metric(`${id}.lb`, `${label}: haproxy CPU`, 's/GiB');
    if (s3Pids.length > 0) results.metric(`${id}.s3`, `${label}: S3 store CPU (radosgw + osd)`, 's/GiB');
  };
  for (const m of pushModes) perGiB(m.id, m.label);
  perGiB('pull-off', `pull ${sizeLabel(size)} blob, S3 redirect off`);
  perGiB('pull-on', `pull ${sizeLabel(size)} blob, S3 redirect on`);
  results.metric('manifest.rps', `GET manifest, ${c} conns, ${options.seconds} s: throughput`, 'req/s');
  results.metric('manifest.p99', 'GET manifest: p99 latency', 'ms');
  results.metric('manifest.cpu', 'GET manifest: registry CPU (all replicas) per 10k requests', 's');
  results.metric('manifest.lb', 'GET manifest: haproxy CPU per 10k requests', 's');

  const record = (id: string, d: DeploymentId, seconds: number, cpu: { registry: number; balancer: number; s3: number }): void => {
    results.add(`${id}.wall`, d, seconds);
    results.add(`${id}.cpu`, d, cpu.registry / gib);
    if (d === 'pier-3') results.add(`${id}.lb`, d, cpu.balancer / gib);
    if (s3Pids.length > 0) results.add(`${id}.s3`, d, cpu.s3 / gib);
  };

  try {
    log(`creating databases and buckets (${stores.s3.endpoint}, PostgreSQL ${new URL(stores.pgAdminUrl).host})`);
    const deployments: Deployment[] = [
      await pierDeployment('pier-1', 1, stores, tmp),
      await pierDeployment('pier-3', 3, stores, tmp),
      await distributionDeployment(stores, tmp),
    ];
    log(`generating ${sizeLabel(size)} of random data`);
    const file = await MutableRandomFile.create(join(tmp, 'blob.bin'), size);
    /** The blob each deployment pushed (monolithic) in each round: what the pulls read. */
    const pushed: Record<DeploymentId, string[]> = { 'pier-1': [], 'pier-3': [], distribution: [] };

    for (const redirect of [false, true]) {
      log(`starting every deployment with S3 redirect ${redirect ? 'on' : 'off'}`);
      const running = new Map<DeploymentId, Running>();
      try {
        for (const d of deployments) running.set(d.id, await d.start(redirect));
        if (!redirect) {
          const image = memoryImage([randomBuffer(MiB), randomBuffer(2 * MiB)], 'cluster');
          for (const r of running.values()) {
            const client = new RegistryClient(r.url, 4);
            try {
              for (const l of [...image.layers, image.config]) await client.pushBlob(MANIFEST_REPO, l.desc.digest, l.data);
              await client.putManifest(MANIFEST_REPO, 'latest', image.manifest, OCI_MANIFEST);
              const got = await client.getManifest(MANIFEST_REPO, 'latest');
              if (!got.body.equals(image.manifest)) results.notes.push(`${r.id}: GET manifest returned other bytes than were pushed`);
            } finally {
              await client.close();
            }
          }
        }
        for (let round = 0; round < options.rounds; round++) {
          for (const id of order(round)) {
            const r = running.get(id)!;
            const tag = `round ${round + 1}/${options.rounds} ${DEPLOYMENT_LABEL[id]}`;
            if (!redirect) {
              const client = new RegistryClient(r.url, 4, PUSH_TIMEOUT_MS);
              try {
                for (const mode of pushModes) {
                  log(`${mode.id} ${tag}`);
                  try {
                    const digest = await file.renew();
                    await syncDisks();
                    const meter = new CpuMeter(r, s3Pids);
                    const t0 = performance.now();
                    if (mode.id === 'push-mono') {
                      await client.uploadMonolithic(BLOB_REPO, digest, size, () => createReadStream(file.path, { highWaterMark: MiB }));
                    } else {
                      await client.uploadChunkedFile(BLOB_REPO, digest, file.path, size, options.chunk);
                    }
                    const seconds = (performance.now() - t0) / 1000;
                    record(mode.id, id, seconds, meter.stop());
                    if (!(await client.blobExists(BLOB_REPO, digest))) results.problem(`${mode.id}.wall`, id, 'blob not found (HEAD) after a successful upload');
                    if (mode.id === 'push-mono') pushed[id][round] = digest;
                  } catch (err) {
                    results.problem(`${mode.id}.wall`, id, errorText(err));
                  }
                }
              } finally {
                await client.close();
              }
            }
            const pullId = redirect ? 'pull-on' : 'pull-off';
            const digest = pushed[id][round];
            log(`${pullId} ${tag}`);
            if (digest === undefined) {
              results.problem(`${pullId}.wall`, id, 'nothing to pull: the push of this round failed');
            } else {
              try {
                const meter = new CpuMeter(r, s3Pids);
                const t0 = performance.now();
                const redirected = await pullBlob(r.url, BLOB_REPO, digest, size);
                const seconds = (performance.now() - t0) / 1000;
                record(pullId, id, seconds, meter.stop());
                if (redirected !== redirect) results.problem(`${pullId}.wall`, id, redirected ? 'answered with a redirect' : 'streamed the bytes (no redirect)');
              } catch (err) {
                results.problem(`${pullId}.wall`, id, errorText(err));
              }
            }
            if (!redirect) {
              log(`GET manifest ${tag}`);
              try {
                const meter = new CpuMeter(r, s3Pids);
                const l = await runLoad({ url: `${r.url}/v2/${MANIFEST_REPO}/manifests/latest`, method: 'GET', connections: c, seconds: options.seconds, headers: { Accept: MANIFEST_ACCEPT } });
                const cpu = meter.stop();
                results.add('manifest.rps', id, l.requestsPerSecond);
                results.add('manifest.p99', id, l.p99Ms);
                if (l.completed > 0) {
                  results.add('manifest.cpu', id, (cpu.registry / l.completed) * 10_000);
                  if (id === 'pier-3') results.add('manifest.lb', id, (cpu.balancer / l.completed) * 10_000);
                }
                if (l.non2xx > 0) results.problem('manifest.rps', id, `${l.non2xx} of ${l.completed} responses not 2xx`);
                if (l.failed > 0) results.problem('manifest.rps', id, `ab counted ${l.failed} failed requests`);
              } catch (err) {
                results.problem('manifest.rps', id, errorText(err));
              }
            }
          }
        }
      } finally {
        await Promise.all([...running.values()].map((r) => r.stop()));
      }
    }
  } catch (err) {
    failures.push(errorText(err));
    log(`broke: ${errorText(err)}`);
  } finally {
    clearInterval(loadTimer);
    await stopAll();
  }

  const ncpu = cpus().length;
  const seconds = (Date.now() - started.getTime()) / 1000;
  const lines = [
    `Scale-out: Pier ×1 and ×3 (PostgreSQL + S3) vs distribution 2.8 (S3) — ${started.toISOString()}${options.quick ? ' — QUICK (a smoke run, not a measurement)' : ''}`,
    `S3 ${stores.s3.endpoint} (one bucket per deployment); ${options.rounds} round(s), deployments rotating; each cell is the median, (min–max) across rounds.`,
    `Everything shares ${ncpu} core(s) (${cpuModel()}): client, registries, haproxy, PostgreSQL and the S3 store. Three replicas cannot run in parallel on ${ncpu} cores: compare costs and ratios, not scaling.`,
    `Load average (1 min) at start ${load.start.toFixed(1)}, highest seen ${load.max.toFixed(1)}` +
      (load.max > ncpu * 0.75 ? ` — WARNING: other processes were busy on these ${ncpu} cores; spreads will be wide.` : '.'),
    s3Pids.length > 0 ? '' : 'The S3 store was not started by this run (shared), so its CPU is not reported.',
  ].filter(Boolean);
  lines.push('', renderTable(results), '');
  const problems = results.metrics.flatMap((m) => DEPLOYMENTS.flatMap((d) => m.problems[d].map((p) => `${m.label} — ${DEPLOYMENT_LABEL[d]}: ${p}`)));
  if (problems.length) lines.push('Problems seen:', ...problems.map((p) => `  - ${p}`), '');
  if (results.notes.length) lines.push('Notes:', ...results.notes.map((n) => `  - ${n}`), '');
  if (failures.length) lines.push('The run broke:', ...failures.map((f) => `  - ${f}`), '');
  lines.push(`Total ${seconds.toFixed(0)} s.`);
  process.stdout.write(lines.join('\n') + '\n');

  const resultsDir = join(repoRoot(), 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, `cluster-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    started: started.toISOString(),
    seconds,
    options,
    loadAverage: load,
    host: {
      cpus: ncpu,
      cpuModel: cpuModel(),
      memoryBytes: totalmem(),
      kernel: release(),
      node: process.version,
      distribution: await versionOf('docker-registry', ['--version']),
      haproxy: await versionOf('haproxy', ['-v']),
      ab: await versionOf('ab', ['-V']),
    },
    s3Endpoint: stores.s3.endpoint,
    s3CpuMeasured: s3Pids.length > 0,
    metrics: results.metrics.map((m) => ({
      ...m,
      summary: Object.fromEntries(DEPLOYMENTS.map((d) => [d, summarize(m.samples[d]) ?? null])),
      ratioToDistribution: {
        'pier-1': ratio(summarize(m.samples['pier-1']), summarize(m.samples.distribution)) ?? null,
        'pier-3': ratio(summarize(m.samples['pier-3']), summarize(m.samples.distribution)) ?? null,
      },
    })),
    notes: results.notes,
    failures,
  };
  writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`Results written to ${out}\n`);
  // After the results are out: emptying buckets can take long on a busy S3 store.
  log('removing the databases and buckets');
  await cleanup();
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/cluster: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(2);
  },
);
