/**
 * Blob GET from S3 without redirect, Pier against distribution on the same
 * S3 endpoint (decision 0127):
 *
 *   node dist/bench/s3/blob-read.js [--mib 256] [--gets 3] [--parallel 1] [--range-mib 0]
 *
 * Starts one Pier (PostgreSQL + S3, `storage.s3.redirect: false`) and one
 * CNCF distribution 2.8 (S3 driver, `redirect: disable`), each on a fresh
 * bucket (and database) from bench/cluster's stores, pushes one random blob
 * of --mib MiB to each once, then GETs it --gets times from each, the two
 * alternating which goes first, --parallel GETs at a time; every body is
 * counted and its digest checked by the client. With --range-mib N each GET
 * asks for `Range: bytes=0-(N MiB - 1)` instead. Prints each registry's CPU
 * (`utime + stime` from /proc, all threads) per GiB sent and the wall time,
 * median (min–max), and the Pier/distribution ratio. One bucket per
 * registry holds the blob once (about 2 × --mib while it is staged), so
 * repeating GETs costs the S3 store no space.
 *
 * Uses PIER_TEST_PG_URL and PIER_TEST_S3_* (test/helpers/s3.ts);
 * PIER_BENCH_NODE_ARGS adds node flags to Pier (`--cpu-prof --cpu-prof-dir=DIR`).
 * Nothing passes or fails: it measures.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { distributionDeployment, pierDeployment } from '../cluster/deployments.js';
import type { Running } from '../cluster/deployments.js';
import { openStores } from '../cluster/stores.js';
import { randomBuffer, sha256 } from '../lib/image.js';
import { RegistryClient } from '../lib/oci-client.js';
import { cpuTimes, killAllNow, stopAll } from '../lib/proc.js';
import { fmt, summarize } from '../lib/results.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const REPO = 'bench/s3-read';
const TIMEOUT_MS = 600_000;

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    gets: { type: 'string', default: '3' },
    parallel: { type: 'string', default: '1' },
    'range-mib': { type: 'string', default: '0' },
  },
});
const size = Number(values.mib) * MiB;
const gets = Number(values.gets);
const parallel = Number(values.parallel);
const rangeBytes = Number(values['range-mib']) * MiB;
if (!(size > 0) || !(gets > 0) || !(parallel > 0) || !(rangeBytes >= 0) || rangeBytes > size) {
  process.stderr.write('usage: blob-read.js [--mib N] [--gets N] [--parallel N] [--range-mib N ≤ --mib]\n');
  process.exit(2);
}

function cpuOf(pids: readonly number[]): { user: number; sys: number } {
  const sum = { user: 0, sys: 0 };
  for (const pid of pids) {
    const t = cpuTimes(pid);
    sum.user += t.user;
    sum.sys += t.sys;
  }
  return sum;
}

/** One GET of the blob (or its first `rangeBytes`), every byte counted and hashed; throws on anything else. */
async function getBlob(url: string, digest: string, expected: Buffer): Promise<void> {
  const headers: Record<string, string> = rangeBytes > 0 ? { range: `bytes=0-${rangeBytes - 1}` } : {};
  const res = await request(`${url}/v2/${REPO}/blobs/${digest}`, { headers, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  if (res.statusCode !== (rangeBytes > 0 ? 206 : 200)) throw new Error(`GET: HTTP ${res.statusCode} ${(await res.body.text()).slice(0, 200)}`);
  const hash = createHash('sha256');
  let n = 0;
  for await (const c of res.body) {
    hash.update(c as Buffer);
    n += (c as Buffer).length;
  }
  const want = rangeBytes > 0 ? expected.subarray(0, rangeBytes) : expected;
  if (n !== want.length || hash.digest('hex') !== sha256(want).slice(7)) throw new Error(`GET: ${n} bytes, not the ${want.length} expected (or other bytes)`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const log = (m: string): void => void process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
  const tmp = mkdtempSync(join(process.env.PIER_BENCH_TMP ?? tmpdir(), 'pier-bench-s3-read-'));
  const stores = openStores();
  const cleanup = async (): Promise<void> => {
    await stopAll();
    await stores.removeAll().catch((err: unknown) => log(String(err)));
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  process.on('exit', killAllNow);
  const running: (Running & { label: string })[] = [];
  try {
    running.push({ ...(await (await pierDeployment('pier-1', 1, stores, tmp)).start(false)), label: 'Pier' });
    running.push({ ...(await (await distributionDeployment(stores, tmp)).start(false)), label: 'distribution' });
    const blob = randomBuffer(size);
    const digest = sha256(blob);
    for (const r of running) {
      const client = new RegistryClient(r.url, 1, TIMEOUT_MS);
      try {
        await client.pushBlob(REPO, digest, blob);
      } finally {
        await client.close();
      }
      await getBlob(r.url, digest, blob); // warm-up (JIT, connections)
    }
    const sent = (rangeBytes > 0 ? rangeBytes : size) * parallel;
    const cpu = new Map<string, number[]>(running.map((r) => [r.label, []]));
    const sys = new Map<string, number[]>(running.map((r) => [r.label, []]));
    const wall = new Map<string, number[]>(running.map((r) => [r.label, []]));
    for (let i = 0; i < gets; i++) {
      for (const r of i % 2 === 0 ? running : [...running].reverse()) {
        const c0 = cpuOf(r.registryPids);
        const t0 = performance.now();
        await Promise.all(Array.from({ length: parallel }, () => getBlob(r.url, digest, blob)));
        wall.get(r.label)!.push((performance.now() - t0) / 1000);
        const c1 = cpuOf(r.registryPids);
        cpu.get(r.label)!.push((c1.user + c1.sys - c0.user - c0.sys) / (sent / GiB));
        sys.get(r.label)!.push((c1.sys - c0.sys) / (sent / GiB));
        log(`GET ${i + 1}/${gets} ${r.label}: ${cpu.get(r.label)!.at(-1)!.toFixed(2)} CPU-s/GiB`);
      }
    }
    const what = `${parallel} × GET ${rangeBytes > 0 ? `Range 0–${rangeBytes / MiB} MiB of ` : ''}a ${size / MiB} MiB blob, S3 redirect off`;
    process.stdout.write(`${what}; ${gets} samples each; load average ${loadavg()[0]!.toFixed(1)}\n`);
    for (const [label, m, unit] of [
      ['registry CPU per GiB', cpu, 's/GiB'],
      ['… of which kernel', sys, 's/GiB'],
      ['wall time', wall, 's'],
    ] as const) {
      const d = summarize(m.get('distribution')!)!;
      for (const r of running) {
        const p = summarize(m.get(r.label)!)!;
        process.stdout.write(`${label.padEnd(22)} ${r.label.padEnd(14)} ${fmt(p.median, unit)} ${unit} (${fmt(p.min, unit)}–${fmt(p.max, unit)})   ratio ${(p.median / d.median).toFixed(2)}x\n`);
      }
    }
  } finally {
    await Promise.all(running.map((r) => r.stop()));
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/s3/blob-read: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(2);
  },
);
