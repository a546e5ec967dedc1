/**
 * `pier push` vs `skopeo copy` to the same kind of registry (CNCF
 * distribution 2.8, a fresh one per tool and scenario), in the same run.
 *
 * Shapes: big (4 incompressible 256 MiB layers = 1 GiB), many (100 × 1 MiB),
 * text (~200 MiB compressible, 4 layers). Sources: an OCI layout (gzipped
 * layers, sent byte for byte by both) and a docker-archive (uncompressed
 * layers, gzipped on the fly by both). Phases: fresh push, re-push of the
 * same image, push to a second repository of the same registry.
 *
 * Each tool starts with empty caches per scenario: pier a fresh
 * XDG_CACHE_HOME; skopeo a fresh folder bound over /var/lib/containers in a
 * private mount namespace (its blob-info cache lives there). Within a
 * scenario both keep their caches across phases, as a user's would.
 * Wall time is taken by this process's clock around the command (for
 * skopeo that includes `unshare` and the bind mount, a few milliseconds);
 * peak RSS comes from GNU time (`%M`). Ratios are pier/skopeo. The run also
 * measures `node -e 0`, the floor under any Node program's re-push.
 * Before every measured command the harness runs `sync`, so that writeback
 * of earlier data does not land inside a measurement.
 *
 * Results: printed, and written to bench/results/push-<timestamp>.json.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { startDistribution } from '../../test/helpers/distribution.js';
import { generateLayers, imageConfig, writeDockerArchive, type GeneratedLayer } from '../../test/client/image-files.js';
import { createParallelGzip } from '../../src/client/gzip.js';
import { Digester } from '../../src/oci/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PIER = join(ROOT, 'bin', 'pier.js');
const MiB = 1 << 20;

interface Args {
  quick: boolean;
  runs: number;
  shapes: string[];
  sources: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, runs: 1, shapes: ['big', 'many', 'text'], sources: ['oci', 'docker-archive'] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--quick') a.quick = true;
    else if (v === '--runs') a.runs = Math.max(1, Number(argv[++i]));
    else if (v === '--shapes') a.shapes = (argv[++i] ?? '').split(',');
    else if (v === '--sources') a.sources = (argv[++i] ?? '').split(',');
    else throw new Error(`unknown argument ${v}`);
  }
  return a;
}

const SHAPES: Record<string, { full: { n: number; size: number; kind: 'random' | 'text' }; quick: { n: number; size: number; kind: 'random' | 'text' } }> = {
  big: { full: { n: 4, size: 256 * MiB, kind: 'random' }, quick: { n: 4, size: 16 * MiB, kind: 'random' } },
  many: { full: { n: 100, size: 1 * MiB, kind: 'random' }, quick: { n: 20, size: 1 * MiB, kind: 'random' } },
  text: { full: { n: 4, size: 50 * MiB, kind: 'text' }, quick: { n: 4, size: 4 * MiB, kind: 'text' } },
};

interface Measure {
  seconds: number;
  peakRssMiB: number;
}

/** Wall time by this process's clock (GNU time's %e has 10 ms steps; re-pushes take a few of them); peak RSS from GNU time. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeFile: string): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%e %M', '-o', timeFile, cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`));
      readFile(timeFile, 'utf8').then((t) => {
        const kb = t.trim().split('\n').pop()!.split(' ')[1];
        resolve({ seconds, peakRssMiB: Math.round(Number(kb) / 1024) });
      }, reject);
    });
  });
}

/** OCI layout with gzipped layers (compressed once, in parallel, outside the timings). */
async function writeGzipLayout(dir: string, layers: GeneratedLayer[], config: Buffer): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const descs = [];
  for (const l of layers) {
    const d = new Digester();
    const tmp = join(dir, 'tmp.gz');
    await pipeline(createReadStream(l.path), createParallelGzip({ level: 6, chunkSize: MiB }), async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        d.update(c);
        yield c;
      }
    }, createWriteStream(tmp));
    const digest = d.digest();
    const { rename } = await import('node:fs/promises');
    await rename(tmp, join(blobs, digest.encoded));
    descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest.toString(), size: d.size });
  }
  const { createHash } = await import('node:crypto');
  const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  await writeFile(join(blobs, hex(config)), config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${hex(config)}`, size: config.length }, layers: descs }));
  await writeFile(join(blobs, hex(manifest)), manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${hex(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
}

type Phase = 'fresh' | 're-push' | 'second-repo';
const PHASES: Phase[] = ['fresh', 're-push', 'second-repo'];

interface Row {
  shape: string;
  source: string;
  phase: Phase;
  /** `pier push` (bin/pier.js), the command the targets are about. */
  pier: Measure;
  skopeo: Measure;
  ratio: number;
  target: number;
  /** The same `pier push` without NODE_EXTRA_CA_CERTS in its environment (Node parses that bundle at start-up). */
  pierNoExtraCa: Measure;
  noExtraCaRatio: number;
}

/** Wall seconds of one run of a command, by the clock of this process. */
function wallSeconds(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(Number(process.hrtime.bigint() - started) / 1e9));
  });
}

/**
 * The floor under any `pier` command on this machine: `node -e 0`, median
 * of 7, with the environment as given and without NODE_EXTRA_CA_CERTS
 * (Node reads and parses that bundle at every start when it is set).
 */
async function nodeFloor(work: string): Promise<{ asGiven: number; withoutExtraCa: number; extraCaSet: boolean; skopeoWrapper: number }> {
  const med = async (cmd: string, args: string[], env: NodeJS.ProcessEnv) => {
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) runs.push(await wallSeconds(cmd, args, env));
    return runs.sort((a, b) => a - b)[3]!;
  };
  const withoutCa = { ...process.env };
  delete withoutCa.NODE_EXTRA_CA_CERTS;
  const empty = join(work, 'wrapper-check');
  await mkdir(empty, { recursive: true });
  return {
    asGiven: await med(process.execPath, ['-e', '0'], process.env),
    withoutExtraCa: await med(process.execPath, ['-e', '0'], withoutCa),
    extraCaSet: Boolean(process.env.NODE_EXTRA_CA_CERTS),
    // What the private mount namespace adds to every skopeo time (in skopeo's favour when subtracted).
    skopeoWrapper: await med('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /var/lib/containers && exec "$@"', empty, 'true'], process.env),
  };
}

function median(values: Measure[]): Measure {
  const sorted = [...values].sort((a, b) => a.seconds - b.seconds);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const work = process.env.PIER_BENCH_TMP ?? join(tmpdir(), `pier-push-bench-${process.pid}`);
  const pidsFile = process.env.PIER_BENCH_PIDS;
  await mkdir(work, { recursive: true });
  const rows: Row[] = [];
  const t0 = Date.now();
  const floor = await nodeFloor(work);
  for (const shape of args.shapes) {
    const spec = SHAPES[shape]?.[args.quick ? 'quick' : 'full'];
    if (!spec) throw new Error(`unknown shape ${shape}`);
    const dir = join(work, shape);
    process.stderr.write(`bench/push: generating ${shape} (${spec.n} × ${spec.size / MiB} MiB ${spec.kind})\n`);
    const layers = await generateLayers(join(dir, 'layers'), Array.from({ length: spec.n }, () => ({ size: spec.size, kind: spec.kind })));
    const config = imageConfig(layers);
    const sources: Record<string, { pier: string; skopeo: string }> = {};
    if (args.sources.includes('oci')) {
      await writeGzipLayout(join(dir, 'oci'), layers, config);
      sources.oci = { pier: `oci:${join(dir, 'oci')}:v1`, skopeo: `oci:${join(dir, 'oci')}:v1` };
    }
    if (args.sources.includes('docker-archive')) {
      await writeDockerArchive(join(dir, 'image.tar'), layers, { repoTag: `bench/${shape}:v1`, config });
      sources['docker-archive'] = { pier: `docker-archive:${join(dir, 'image.tar')}`, skopeo: `docker-archive:${join(dir, 'image.tar')}` };
    }
    for (const l of layers) await rm(l.path, { force: true });
    for (const [source, src] of Object.entries(sources)) {
      const results: Record<'pier' | 'pier-no-extra-ca' | 'skopeo', Record<Phase, Measure[]>> = {
        pier: { fresh: [], 're-push': [], 'second-repo': [] },
        'pier-no-extra-ca': { fresh: [], 're-push': [], 'second-repo': [] },
        skopeo: { fresh: [], 're-push': [], 'second-repo': [] },
      };
      for (let run = 0; run < args.runs; run++) {
        for (const tool of ['skopeo', 'pier', 'pier-no-extra-ca'] as const) {
          const reg = await startDistribution();
          if (pidsFile) await appendFile(pidsFile, `${await registryPid(reg.dataDir)}\n`).catch(() => undefined);
          const state = join(dir, `state-${tool}-${source}-${run}`);
          await mkdir(join(state, 'containers'), { recursive: true });
          try {
            for (const phase of PHASES) {
              // Dirty pages from generating the image or from the previous push are written back now,
              // not during this measurement (the VM's disk is slow enough to show in either tool's time).
              await new Promise<void>((resolve) => spawn('sync', [], { stdio: 'ignore' }).on('close', () => resolve()));
              const repo = phase === 'second-repo' ? 'bench/second' : 'bench/first';
              const dest = `${reg.host}/${repo}:v1`;
              let m: Measure;
              if (tool === 'pier') {
                m = await measure(process.execPath, [PIER, 'push', '--quiet', src.pier, dest], { XDG_CACHE_HOME: join(state, 'cache') }, join(state, 'time'));
              } else if (tool === 'pier-no-extra-ca') {
                m = await measure(process.execPath, [PIER, 'push', '--quiet', src.pier, dest], { XDG_CACHE_HOME: join(state, 'cache'), NODE_EXTRA_CA_CERTS: undefined }, join(state, 'time'));
              } else {
                m = await measure(
                  'unshare',
                  ['-m', 'sh', '-c', 'mount --bind "$0" /var/lib/containers && exec "$@"', join(state, 'containers'), 'skopeo', 'copy', '--quiet', '--dest-tls-verify=false', src.skopeo, `docker://${dest}`],
                  { TMPDIR: state },
                  join(state, 'time'),
                );
              }
              results[tool][phase].push(m);
              process.stderr.write(`  ${shape} ${source} ${phase} ${tool}: ${m.seconds.toFixed(2)} s, ${m.peakRssMiB} MiB\n`);
            }
          } finally {
            await reg.stop();
            await rm(state, { recursive: true, force: true });
          }
        }
      }
      for (const phase of PHASES) {
        const pier = median(results.pier[phase]);
        const skopeo = median(results.skopeo[phase]);
        const pierNoExtraCa = median(results['pier-no-extra-ca'][phase]);
        const base = Math.max(skopeo.seconds, 0.005);
        rows.push({ shape, source, phase, pier, skopeo, ratio: pier.seconds / base, target: phase === 'fresh' ? 0.8 : 0.5, pierNoExtraCa, noExtraCaRatio: pierNoExtraCa.seconds / base });
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
  const header = 'shape  source          phase        pier s  skopeo s  ratio  target  pier MiB  skopeo MiB  no-CA s  no-CA ratio';
  const lines = rows.map(
    (r) =>
      `${r.shape.padEnd(6)} ${r.source.padEnd(15)} ${r.phase.padEnd(12)} ${r.pier.seconds.toFixed(2).padStart(6)}  ${r.skopeo.seconds.toFixed(2).padStart(8)}  ${r.ratio.toFixed(2).padStart(5)}${r.ratio <= r.target ? ' ' : '!'} ${r.target.toFixed(1).padStart(6)}  ${String(r.pier.peakRssMiB).padStart(8)}  ${String(r.skopeo.peakRssMiB).padStart(10)}  ${r.pierNoExtraCa.seconds.toFixed(2).padStart(7)}  ${r.noExtraCaRatio.toFixed(2).padStart(11)}`,
  );
  process.stdout.write(`${header}\n${lines.join('\n')}\n('!' marks a ratio over its target; ratio = pier time / skopeo time; no-CA = the same pier push with NODE_EXTRA_CA_CERTS unset; the targets are judged on the first pier column)\n`);
  process.stdout.write(
    `Floor: \`node -e 0\` takes ${floor.asGiven.toFixed(3)} s here${floor.extraCaSet ? ` (NODE_EXTRA_CA_CERTS is set; ${floor.withoutExtraCa.toFixed(3)} s without it)` : ''}: no Node program can re-push in less. Each skopeo time includes ${floor.skopeoWrapper.toFixed(3)} s of \`unshare\` + bind mount (its private cache).\n`,
  );
  // Issue 16: a re-push (one request) within skopeo's time plus Node's bare start-up, both from this run.
  const repush = rows
    .filter((r) => r.phase === 're-push')
    .map((r) => {
      const bound = r.skopeo.seconds + floor.asGiven;
      return { id: `repush-floor.${r.shape}.${r.source}`, pier: r.pier.seconds, skopeo: r.skopeo.seconds, nodeFloor: floor.asGiven, bound, met: r.pier.seconds <= bound };
    });
  process.stdout.write(
    repush
      .map((m) => `${m.id}: pier ${m.pier.toFixed(3)} s; skopeo ${m.skopeo.toFixed(3)} s + node -e 0 ${m.nodeFloor.toFixed(3)} s = ${m.bound.toFixed(3)} s; ${m.met ? 'met' : 'NOT met'}\n`)
      .join(''),
  );
  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `push-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ benchmark: 'push', quick: args.quick, runs: args.runs, seconds: (Date.now() - t0) / 1000, nodeFloor: floor, rows, repush }, null, 2));
  process.stderr.write(`bench/push: results in ${file}\n`);
}

/** The registry's PID, for the run script's cleanup (found by its unique data dir). */
async function registryPid(dataDir: string): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('docker-registry') && cmd.includes(join(dataDir, '..'))) return pid;
    } catch {
      // gone
    }
  }
  return '';
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/push: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
