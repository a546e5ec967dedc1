/**
 * `pier push NAME` (the image in a Docker Engine) vs `docker push` of the
 * same image, in the same run: a private dockerd (test/helpers/dockerd.ts)
 * holding one image, pushed by each tool to its own fresh CNCF distribution
 * 2.8. Phases: fresh push, re-push (the tag already names the image; run
 * `--repeat` times, median), push to a second repository of the same
 * registry. pier starts with an empty cache (XDG_CACHE_HOME) and keeps it
 * across phases, as a user's would; dockerd keeps its own state.
 *
 * A re-push by pier reads no layer: the daemon's image inspect names the
 * config and diff_ids, the client cache knows their compressed forms, and
 * the registry has them (see src/client/sources/docker-daemon.ts); the
 * export (`GET /images/NAME/get`) that used to take 1.5-2.3 s is skipped.
 *
 * Usage (through bench/push/run): `bench/push/run --daemon [--quick] [--runs N] [--repeat N]`.
 * Results: printed, and written to bench/results/push-daemon-<timestamp>.json.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateLayers, imageConfig, writeDockerArchive } from '../../test/client/image-files.js';
import { startDistribution } from '../../test/helpers/distribution.js';
import { DOCKER_CLI, startDockerd, type Dockerd } from '../../test/helpers/dockerd.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PIER = join(ROOT, 'bin', 'pier.js');
const MiB = 1 << 20;

interface Args {
  quick: boolean;
  runs: number;
  repeat: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, runs: 1, repeat: 5 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--daemon') continue;
    if (v === '--quick') a.quick = true;
    else if (v === '--runs') a.runs = Math.max(1, Number(argv[++i]));
    else if (v === '--repeat') a.repeat = Math.max(1, Number(argv[++i]));
    else throw new Error(`unknown argument ${v}`);
  }
  return a;
}

/** Wall seconds of one command by this process's clock; rejects on a non-zero exit. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`));
      else resolve(seconds);
    });
  });
}

function sync(): Promise<void> {
  return new Promise((resolve) => spawn('sync', [], { stdio: 'ignore' }).on('close', () => resolve()));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Phase = 'fresh' | 're-push' | 'second-repo';
/** `pier push (export)`: pier with its record of daemon images deleted before each push, i.e. exporting every time as before decision 0050. */
type Tool = 'docker push' | 'pier push' | 'pier push (export)';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const work = process.env.PIER_BENCH_TMP ?? join(tmpdir(), `pier-push-daemon-bench-${process.pid}`);
  await mkdir(work, { recursive: true });
  const t0 = Date.now();
  let dockerd: Dockerd | undefined;
  let registry: { stop(): Promise<void> } | undefined;
  const stop = async () => {
    await registry?.stop();
    registry = undefined;
    await dockerd?.stop();
    dockerd = undefined;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void stop().finally(() => process.exit(130));
    });
  }
  const shape = args.quick ? { n: 4, size: 16 * MiB } : { n: 4, size: 64 * MiB };
  const results: Record<Tool, Record<Phase, number[]>> = {
    'docker push': { fresh: [], 're-push': [], 'second-repo': [] },
    'pier push': { fresh: [], 're-push': [], 'second-repo': [] },
    'pier push (export)': { fresh: [], 're-push': [], 'second-repo': [] },
  };
  try {
    process.stderr.write(`bench/push --daemon: ${shape.n} × ${shape.size / MiB} MiB random layers in a private dockerd\n`);
    dockerd = await startDockerd();
    const layers = await generateLayers(join(work, 'layers'), Array.from({ length: shape.n }, () => ({ size: shape.size, kind: 'random' as const })));
    const archive = join(work, 'image.tar');
    await writeDockerArchive(archive, layers, { repoTag: 'bench/daemon:v1', config: imageConfig(layers) });
    for (const l of layers) await rm(l.path, { force: true });
    await dockerd.docker(['load', '-i', archive], { timeoutMs: 600_000 });
    await rm(archive, { force: true });
    for (let run = 0; run < args.runs; run++) {
      for (const tool of ['docker push', 'pier push', 'pier push (export)'] as const) {
        const reg = await startDistribution();
        registry = reg;
        const cache = join(work, `cache-${run}`);
        try {
          for (const phase of ['fresh', 're-push', 'second-repo'] as const) {
            const repo = phase === 'second-repo' ? 'bench/second' : 'bench/first';
            const dest = `${reg.host}/${repo}:v1`;
            const times = phase === 're-push' ? args.repeat : 1;
            for (let i = 0; i < times; i++) {
              await sync();
              let s: number;
              if (tool === 'docker push') {
                await dockerd.docker(['tag', 'bench/daemon:v1', dest]);
                s = await timed(DOCKER_CLI, ['push', '--quiet', dest], dockerd.env);
              } else {
                if (tool === 'pier push (export)') await rm(join(cache, 'pier', 'images'), { recursive: true, force: true });
                s = await timed(process.execPath, [PIER, 'push', '--quiet', 'bench/daemon:v1', dest], { ...dockerd.env, XDG_CACHE_HOME: cache });
              }
              results[tool][phase].push(s);
              process.stderr.write(`  ${tool} ${phase}: ${s.toFixed(3)} s\n`);
            }
          }
        } finally {
          await reg.stop();
          registry = undefined;
          await rm(cache, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await stop();
    await rm(work, { recursive: true, force: true });
  }
  const floors: number[] = [];
  for (let i = 0; i < 5; i++) floors.push(await timed(process.execPath, ['-e', '0'], {}));
  const floor = median(floors);
  const rows = (['fresh', 're-push', 'second-repo'] as const).map((phase) => {
    const docker = median(results['docker push'][phase]);
    const pier = median(results['pier push'][phase]);
    const pierExport = median(results['pier push (export)'][phase]);
    return { phase, pier, docker, ratio: pier / Math.max(docker, 0.005), pierExport };
  });
  process.stdout.write('phase        pier push NAME s  docker push s  ratio  pier, exporting every time s\n');
  for (const r of rows) process.stdout.write(`${r.phase.padEnd(12)} ${r.pier.toFixed(3).padStart(16)}  ${r.docker.toFixed(3).padStart(13)}  ${r.ratio.toFixed(1).padStart(5)}  ${r.pierExport.toFixed(3).padStart(28)}\n`);
  process.stdout.write(`(${shape.n} × ${shape.size / MiB} MiB random layers; medians of ${args.runs} run(s), re-push ${args.repeat}× per run; to CNCF distribution 2.8 on loopback)\nFloor: \`node -e 0\` takes ${floor.toFixed(3)} s here: no Node program re-pushes in less.\n`);
  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `push-daemon-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ benchmark: 'push-daemon', quick: args.quick, runs: args.runs, repeat: args.repeat, seconds: (Date.now() - t0) / 1000, shape, nodeFloor: floor, rows, samples: results }, null, 2));
  process.stderr.write(`bench/push --daemon: results in ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/push --daemon: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
