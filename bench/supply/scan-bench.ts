/**
 * Scanning costs: `node dist/bench/supply/scan-bench.js [--images 100] [--gib 1] [--rounds 2]`
 *
 * 1. Inventories: a real `pier serve` with the fixture OSV database; N
 *    distinct Debian-like images (two layers each, dpkg/npm/pip contents,
 *    the first layer unique per image) are pushed, and the time until
 *    every scan is done is measured (2N layer reads), then a newer database
 *    is imported and the time until every image is matched again (no layer
 *    read) is measured.
 * 2. Push wall: a GiB-sized image is pushed right after another one (so the
 *    scanner reads the first while the second uploads), with scanning on
 *    (and its SBOM referrer, the default) and off, alternated round by
 *    round in the same run, on a fresh registry each time; the second push
 *    is timed and the ratio on/off of the medians printed (1.0: scanning
 *    does not slow a push). `--images 0` skips the first part, `--gib 0`
 *    the second. Run with bench/supply/run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { spawnTestRegistry, type SpawnedRegistry } from '../../test/helpers/registry.js';
import { pushImage } from '../../test/helpers/images.js';
import { imageOf, OSV_V1, OSV_V2, writeOsvDb } from '../../test/supply/fixtures.js';
import { runPier } from '../../test/client/harness.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '100' }, gib: { type: 'string', default: '1' }, rounds: { type: 'string', default: '2' } } });
const IMAGES = Number(values.images);
const GIB = Number(values.gib);
const ROUNDS = Number(values.rounds);

async function until(reg: SpawnedRegistry, repos: string[], done: (s: { status: string; database: { generation: number } }) => boolean): Promise<void> {
  let left = [...repos];
  while (left.length) {
    const next: string[] = [];
    for (const r of left) {
      const s = (await (await fetch(`${reg.url}/pier/v1/repositories/${r}/scans/v1`)).json()) as { status: string; database: { generation: number } };
      if (!done(s)) next.push(r);
    }
    left = next;
    if (left.length) await new Promise((r) => setTimeout(r, 50));
  }
}

async function layerReads(url: string): Promise<number> {
  return Number(/^pier_scanner_layer_reads_total (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
}

async function inventories(work: string): Promise<void> {
  const reg = await spawnTestRegistry({ dataDir: path.join(work, 'inv') });
  try {
    const db1 = path.join(work, 'osv1');
    const db2 = path.join(work, 'osv2');
    await writeOsvDb(db1, OSV_V1);
    await writeOsvDb(db2, OSV_V2);
    await runPier(['vulndb', 'import', db1, '--registry', reg.host]);
    const dpkg = Array.from({ length: 150 }, (_, i) => `Package: pkg${i}\nStatus: install ok installed\nSource: src${i % 40}\nVersion: 1.${i}-1\n`).join('\n');
    const images = [];
    for (let i = 0; i < IMAGES; i++) {
      images.push(
        await imageOf([
          [
            { name: 'etc/os-release', data: 'ID=debian\nVERSION_ID="12"\n' },
            { name: 'var/lib/dpkg/status', data: `${dpkg}\nPackage: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n` },
            { name: `srv/unique-${i}`, data: randomBytes(64 * 1024).toString('base64') },
            ...Array.from({ length: 30 }, (_, j) => ({ name: `usr/lib/node_modules/m${j}/package.json`, data: JSON.stringify({ name: j === 0 ? 'lodash' : `m${j}`, version: '4.17.20' }) })),
          ],
          [{ name: 'usr/lib/python3/dist-packages/requests-2.25.1.dist-info/METADATA', data: `Name: requests\nVersion: 2.25.1\n\n${i}` }],
        ]),
      );
    }
    const repos = images.map((_, i) => `bench/img${i}`);
    const t0 = performance.now();
    for (const [i, image] of images.entries()) await pushImage(reg.url, repos[i]!, 'v1', image);
    const pushed = performance.now();
    await until(reg, repos, (s) => s.status === 'done');
    const scanned = performance.now();
    const reads = await layerReads(reg.url);
    const t1 = performance.now();
    await runPier(['vulndb', 'import', db2, '--registry', reg.host]);
    await until(reg, repos, (s) => s.database.generation === 2 && s.status === 'done');
    const rematched = performance.now();
    console.log(
      JSON.stringify({
        scenario: 'scan-inventories',
        images: IMAGES,
        pushSeconds: +((pushed - t0) / 1000).toFixed(2),
        scanDoneSecondsFromFirstPush: +((scanned - t0) / 1000).toFixed(2),
        scanTailAfterLastPushSeconds: +((scanned - pushed) / 1000).toFixed(2),
        layerReads: reads,
        rematchSeconds: +((rematched - t1) / 1000).toFixed(2),
        layerReadsAfterRematch: await layerReads(reg.url),
      }),
    );
  } finally {
    await reg.kill();
  }
}

interface BigImage {
  layerFile: string;
  layer: { digest: string; size: number };
  config: Buffer;
  manifest: Buffer;
}

async function bigImage(dir: string, bytes: number): Promise<BigImage> {
  const layerFile = path.join(dir, 'layer.tar');
  const p = pack();
  const out = pipeline(p, createWriteStream(layerFile));
  const body = p.entry({ name: 'data.bin', size: bytes, mode: 0o644 });
  for (let left = bytes; left > 0; left -= 4 << 20) await new Promise<void>((r) => (body.write(randomBytes(Math.min(left, 4 << 20))) ? r() : body.once('drain', () => r())));
  body.end(() => undefined);
  p.finalize();
  await out;
  const h = createHash('sha256');
  for await (const c of createReadStream(layerFile)) h.update(c as Buffer);
  const digest = `sha256:${h.digest('hex')}`;
  const size = (await stat(layerFile)).size;
  const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [digest] }, nonce: randomBytes(8).toString('hex') }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${createHash('sha256').update(config).digest('hex')}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size }],
    }),
  );
  return { layerFile, layer: { digest, size }, config, manifest };
}

async function pushBig(url: string, repo: string, img: BigImage): Promise<number> {
  const t0 = performance.now();
  const cfgDigest = `sha256:${createHash('sha256').update(img.config).digest('hex')}`;
  let res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${cfgDigest}`, { method: 'POST', body: img.config });
  if (res.status !== 201) throw new Error(`config: ${res.status}`);
  res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${img.layer.digest}`, {
    method: 'POST',
    body: Readable.toWeb(createReadStream(img.layerFile)) as ReadableStream,
    headers: { 'content-length': String(img.layer.size) },
    duplex: 'half',
  });
  if (res.status !== 201) throw new Error(`layer: ${res.status} ${await res.text()}`);
  res = await fetch(`${url}/v2/${repo}/manifests/v1`, { method: 'PUT', body: img.manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  if (res.status !== 201) throw new Error(`manifest: ${res.status}`);
  return (performance.now() - t0) / 1000;
}

async function pushWall(work: string): Promise<void> {
  const bytes = Math.round(GIB * 1024 ** 3);
  const a = await bigImage(await mkdtemp(path.join(work, 'a-')), bytes);
  const b = await bigImage(await mkdtemp(path.join(work, 'b-')), bytes);
  const results: Record<string, number[]> = { on: [], off: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['on', 'off'] as const) {
      const data = path.join(work, `reg-${mode}-${round}`);
      const cfg = path.join(work, `cfg-${mode}.yaml`);
      await writeFile(cfg, `scanning:\n  enabled: ${mode === 'on'}\n  sbom: ${mode === 'on'}\n`);
      const reg = await spawnTestRegistry({ dataDir: data, args: ['--config', cfg] });
      try {
        await pushBig(reg.url, 'big/first', a);
        // The scanner (when on) now reads the first image's GiB layer while the second uploads.
        results[mode]!.push(await pushBig(reg.url, 'big/second', b));
        if (mode === 'on') await until(reg, ['big/first', 'big/second'], (s) => s.status === 'done');
      } finally {
        await reg.kill();
        await rm(data, { recursive: true, force: true });
      }
    }
  }
  // The lower median of an even count, the middle one of an odd count.
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
  const on = median(results.on!);
  const off = median(results.off!);
  console.log(
    JSON.stringify({
      scenario: 'push-wall-scanning',
      gib: GIB,
      rounds: ROUNDS,
      secondsOn: results.on!.map((x) => +x.toFixed(2)),
      secondsOff: results.off!.map((x) => +x.toFixed(2)),
      medianOn: +on.toFixed(2),
      medianOff: +off.toFixed(2),
      ratioOnOverOff: +(on / off).toFixed(3),
    }),
  );
}

const work = await mkdtemp(path.join(tmpdir(), 'pier-scan-bench-'));
try {
  if (IMAGES > 0) await inventories(work);
  if (GIB > 0) await pushWall(work);
} finally {
  await rm(work, { recursive: true, force: true });
}
