/**
 * Request rate with access control: GET manifest by tag, 50 keep-alive
 * connections, through
 *   - CNCF distribution 2.8 with htpasswd (Basic; bcrypt checked on every request),
 *   - Pier with a bearer token from its /auth/token,
 *   - Pier with Basic credentials (scrypt once, then the credential cache),
 * in the same run, alternating the three in each round, on loopback with
 * `ab`. Prints medians and the ratios against distribution; targets: bearer
 * ≥ 5x, Basic ≥ 2x. Writes bench/results/auth-<time>.json.
 *
 *     bench/auth/run [--quick] [--rounds N] [--seconds S]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addPolicyRule, addUser } from '../../src/auth/accounts.js';
import { openSqliteAccountStore as openAuthStore } from '../../src/store/meta/sql/sqlite.js';
import { runLoad, type LoadResult } from '../lib/ab.js';
import { imageConfig, imageManifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST, randomBuffer, sha256 } from '../lib/image.js';
import { stopAll, stopDaemon } from '../lib/proc.js';
import { repoRoot, startDistribution, startPier } from '../lib/registries.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean' }, rounds: { type: 'string' }, seconds: { type: 'string' }, connections: { type: 'string' } },
});
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
const seconds = Number(values.seconds ?? (values.quick ? 3 : 10));
const connections = Number(values.connections ?? 50);
const USER = 'bench';
const PASSWORD = 'bench-password';
const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

async function pushImage(url: string, authorization: string): Promise<void> {
  const layer = randomBuffer(4096);
  const layerDesc = { mediaType: OCI_LAYER_TAR, digest: sha256(layer), size: layer.length };
  const config = imageConfig([layerDesc], 'auth-bench');
  const configDesc = { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length };
  for (const [data, desc] of [[layer, layerDesc], [config, configDesc]] as const) {
    // POST then PUT: distribution 2.8 does not take a monolithic POST.
    const start = await fetch(`${url}/v2/bench/app/blobs/uploads/`, { method: 'POST', headers: { authorization } });
    await start.arrayBuffer();
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw new Error(`upload start at ${url}: ${start.status}`);
    const target = new URL(location, url);
    target.searchParams.set('digest', desc.digest);
    const res = await fetch(target, { method: 'PUT', body: data, headers: { authorization, 'content-type': 'application/octet-stream' } });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`blob push to ${url}: ${res.status}`);
  }
  const res = await fetch(`${url}/v2/bench/app/manifests/v1`, { method: 'PUT', body: imageManifest(configDesc, [layerDesc]), headers: { authorization, 'content-type': OCI_MANIFEST } });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`manifest push to ${url}: ${res.status}`);
}

async function startDistributionHtpasswd(dir: string) {
  mkdirSync(dir, { recursive: true });
  const htpasswd = join(dir, 'htpasswd');
  // htpasswd -B uses cost 5 by default; distribution's docs and most setups use the same.
  execFileSync('htpasswd', ['-Bbc', htpasswd, USER, PASSWORD], { stdio: 'ignore' });
  return startDistribution(dir, 'distribution+htpasswd', { htpasswd });
}

async function bearerToken(url: string): Promise<string> {
  const res = await fetch(`${url}/auth/token?service=pier&scope=repository:bench/app:pull`, { headers: { authorization: basic } });
  const body = (await res.json()) as { token: string };
  if (res.status !== 200) throw new Error(`token endpoint: ${res.status}`);
  return body.token;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'pier-bench-auth-'));
  process.once('SIGINT', () => {
    void stopAll().finally(() => process.exit(130));
  });
  try {
    // Pier: one user with pull and push on bench/*, created before start as `pier user add` would.
    mkdirSync(join(work, 'pier', 'data'), { recursive: true });
    const accounts = await openAuthStore(join(work, 'pier', 'data', 'pier.db'));
    await addUser(accounts.store, USER, PASSWORD);
    await addPolicyRule(accounts.store, `user:${USER}`, 'bench/*', ['pull', 'push']);
    await accounts.close();
    const pier = await startPier(join(work, 'pier'));
    const dist = await startDistributionHtpasswd(join(work, 'distribution'));
    await pushImage(pier.url, basic);
    await pushImage(dist.url, basic);

    const samples: Record<'distribution-basic' | 'pier-bearer' | 'pier-basic', LoadResult[]> = { 'distribution-basic': [], 'pier-bearer': [], 'pier-basic': [] };
    const manifestPath = '/v2/bench/app/manifests/v1';
    const accept = OCI_MANIFEST;
    for (let round = 1; round <= rounds; round++) {
      const token = await bearerToken(pier.url);
      const runs: [keyof typeof samples, string, string][] = [
        ['distribution-basic', dist.url, basic],
        ['pier-bearer', pier.url, `Bearer ${token}`],
        ['pier-basic', pier.url, basic],
      ];
      for (const [name, url, authorization] of runs) {
        const r = await runLoad({ url: `${url}${manifestPath}`, method: 'GET', connections, seconds, headers: { authorization, accept } });
        if (r.non2xx > 0 || r.failed > 0) throw new Error(`${name}: ${r.non2xx} non-2xx and ${r.failed} failed responses`);
        samples[name].push(r);
        process.stderr.write(`round ${round} ${name}: ${r.requestsPerSecond.toFixed(0)} req/s (p99 ${r.p99Ms} ms)\n`);
      }
    }
    const rps = (name: keyof typeof samples) => median(samples[name].map((s) => s.requestsPerSecond));
    const p99 = (name: keyof typeof samples) => median(samples[name].map((s) => s.p99Ms));
    const d = rps('distribution-basic');
    const rows = [
      { name: 'distribution 2.8 + htpasswd (Basic)', rps: d, p99: p99('distribution-basic'), ratio: 1, target: '' },
      { name: 'Pier, bearer token', rps: rps('pier-bearer'), p99: p99('pier-bearer'), ratio: rps('pier-bearer') / d, target: '>= 5x' },
      { name: 'Pier, Basic credentials', rps: rps('pier-basic'), p99: p99('pier-basic'), ratio: rps('pier-basic') / d, target: '>= 2x' },
    ];
    const met = rows[1]!.ratio >= 5 && rows[2]!.ratio >= 2;
    const lines = [
      `GET manifest with auth: ${connections} connections, ${seconds} s per run, ${rounds} round(s), medians (${cpus().length} CPUs, loopback, ab -k)`,
      ...rows.map((r) => `  ${r.name.padEnd(38)} ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${String(r.p99).padStart(4)} ms  ${r.ratio.toFixed(2)}x ${r.target ? `(target ${r.target})` : ''}`),
      `targets ${met ? 'met' : 'NOT met'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const outDir = join(repoRoot(), 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `auth-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ started: new Date().toISOString(), rounds, seconds, connections, cpus: cpus().length, samples, rows, met }, null, 1)}\n`);
    process.stderr.write(`results: ${file}\n`);
    await stopDaemon(pier.daemon);
    await stopDaemon(dist.daemon);
    process.exitCode = met ? 0 : 1;
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
