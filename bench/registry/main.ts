/**
 * `bench/run [--quick] [--rounds N] [--only SCENARIO[,SCENARIO]]`
 *
 * Starts Pier and CNCF distribution side by side on loopback, runs every
 * scenario against both (alternating, several rounds), prints one table and
 * writes the results as JSON to bench/results/. Nothing here passes or fails:
 * the exit code is 0 unless the harness itself broke.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RegistryClient } from '../lib/oci-client.js';
import { cpuModel, killAllNow, rssBytes, stopAll, versionOf } from '../lib/proc.js';
import { repoRoot, startRegistry } from '../lib/registries.js';
import type { Registry, RegistryKind } from '../lib/registries.js';
import { Results, evaluate, problemsText, renderTable } from '../lib/results.js';
import { concurrentPush } from './concurrent-push.js';
import type { Context, Options, Scenario } from './context.js';
import { FULL, QUICK, errorText } from './context.js';
import { ctrPullScenario } from './ctr-pull.js';
import { growth } from './growth.js';
import { serveLoad } from './serve-load.js';
import { upload } from './upload.js';

const SCENARIOS: readonly Scenario[] = [serveLoad, upload, concurrentPush, ctrPullScenario, growth];

const USAGE = `Usage: bench/run [--quick] [--rounds N] [--only SCENARIO[,SCENARIO...]]

Measures Pier against CNCF distribution 2.8 on this machine.
  --quick       small sizes and 1 s loads: proves the harness runs (< 2 min)
  --rounds N    rounds per scenario (default 3; medians and min–max are reported)
  --only LIST   run only these scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}

Environment: PIER_BENCH_STANDIN=1 runs a second distribution in Pier's place;
PIER_BENCH_NODE_ARGS adds node flags to Pier (e.g. "--cpu-prof --cpu-prof-dir=DIR").`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const rounds = values.rounds === undefined ? 3 : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) throw new Error(`--rounds must be an integer from 1 to 50, got ${values.rounds}`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [];
  for (const o of only) {
    if (!SCENARIOS.some((s) => s.name === o)) throw new Error(`unknown scenario ${o}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  return { quick, rounds, only, sizes: quick ? QUICK : FULL };
}

/**
 * Deleting tens of GiB is slow where the filesystem is mounted with
 * `discard` (every freed extent is trimmed synchronously: minutes here), so
 * scratch data is removed by a detached `rm` after the results are out.
 */
function removeInBackground(dir: string): void {
  const child = spawn('rm', ['-rf', dir], { detached: true, stdio: 'ignore' });
  child.unref();
  process.stdout.write(`Removing scratch data ${dir} in the background (pid ${child.pid ?? '?'}).\n`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const started = new Date();
  const tmp = process.env.PIER_BENCH_TMP ?? mkdtempSync(join(tmpdir(), 'pier-bench-'));
  mkdirSync(tmp, { recursive: true });
  const log = (m: string): void => {
    process.stderr.write(`[${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
  };

  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping every process this run started`);
    void stopAll().finally(() => {
      if (!process.env.PIER_BENCH_TMP && !process.env.PIER_BENCH_KEEP) removeInBackground(tmp);
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllNow);

  // Other work on the machine skews everything; record how busy it was.
  const load = { start: loadavg()[0]!, max: loadavg()[0]! };
  const loadTimer = setInterval(() => (load.max = Math.max(load.max, loadavg()[0]!)), 5000);
  loadTimer.unref();
  const results = new Results();
  const ncpu = cpus().length;
  const standin = process.env.PIER_BENCH_STANDIN === '1';
  const scenarios = SCENARIOS.filter((s) => options.only.length === 0 || options.only.includes(s.name));
  const needMain = scenarios.some((s) => s.name !== 'growth');
  const registries: Partial<Record<RegistryKind, Registry>> = {};
  const clients: Partial<Record<RegistryKind, RegistryClient>> = {};
  const failures: string[] = [];
  try {
    if (needMain) {
      for (const kind of ['pier', 'distribution'] as const) {
        log(`starting ${kind}`);
        registries[kind] = await startRegistry(kind, join(tmp, kind));
        clients[kind] = new RegistryClient(registries[kind].url, 8);
      }
      results.metric('idle.rss', 'registry RSS at rest after start (baseline)', 'MB', { on: 'pier', op: '<=', bound: 80, text: '≤ 80 MB' });
      for (const kind of ['pier', 'distribution'] as const) results.add('idle.rss', kind, rssBytes(registries[kind]!.pid) / 1e6);
    }
    const ctx: Context = {
      options,
      sizes: options.sizes,
      results,
      tmp,
      registries: registries as Record<RegistryKind, Registry>,
      clients: clients as Record<RegistryKind, RegistryClient>,
      log,
    };
    for (const s of scenarios) {
      log(`scenario ${s.name}: ${s.summary}`);
      const t0 = Date.now();
      try {
        await s.run(ctx);
      } catch (err) {
        failures.push(`${s.name}: ${errorText(err)}`);
        log(`scenario ${s.name} failed: ${errorText(err)}`);
      }
      log(`scenario ${s.name} took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    for (const kind of ['pier', 'distribution'] as const) {
      await clients[kind]?.close();
      await registries[kind]?.stop();
    }
    await stopAll();
  }

  clearInterval(loadTimer);
  const seconds = (Date.now() - started.getTime()) / 1000;
  const header = [
    `Pier vs CNCF distribution — ${started.toISOString()}${options.quick ? ' — QUICK (small sizes; a smoke run, not a measurement)' : ''}`,
    `${options.rounds} round(s) per scenario, registries alternating; each cell is the median, (min–max) across rounds.`,
    `Client and server share the same ${ncpu} core(s) (${cpuModel()}): the load generator / pusher and the registry compete for CPU. Compare ratios, not absolute figures.`,
    standin ? 'PIER_BENCH_STANDIN=1: the "Pier" column is a second distribution, not Pier.' : '',
    `Load average (1 min) at start ${load.start.toFixed(1)}, highest seen ${load.max.toFixed(1)}` +
      (load.max > ncpu * 0.75 ? ` — WARNING: other processes were busy on these ${ncpu} cores; spreads will be wide.` : '.'),
  ].filter(Boolean);
  const lines = [...header, '', renderTable(results), ''];
  const problems = problemsText(results);
  if (problems.length) lines.push('Problems seen:', ...problems.map((p) => `  - ${p}`), '');
  if (results.notes.length) lines.push('Notes:', ...results.notes.map((n) => `  - ${n}`), '');
  if (failures.length) lines.push('Scenarios that broke:', ...failures.map((f) => `  - ${f}`), '');
  lines.push(`Total ${seconds.toFixed(0)} s.`);
  process.stdout.write(lines.join('\n') + '\n');

  const resultsDir = join(repoRoot(), 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  const record = {
    started: started.toISOString(),
    seconds,
    options,
    standin,
    loadAverage: load,
    host: {
      cpus: ncpu,
      cpuModel: cpuModel(),
      memoryBytes: totalmem(),
      kernel: release(),
      node: process.version,
      distribution: await versionOf('docker-registry', ['--version']),
      ctr: await versionOf('ctr', ['--version']),
      ab: await versionOf('ab', ['-V']),
    },
    metrics: results.metrics.map((m) => ({ ...m, ...evaluate(m) })),
    notes: results.notes,
    failures,
  };
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  process.stdout.write(`Results written to ${file}\n`);
  // bench/run removes its own scratch folder; run directly, remove ours.
  if (!process.env.PIER_BENCH_TMP && !process.env.PIER_BENCH_KEEP) removeInBackground(tmp);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(2);
  },
);
