/**
 * Generated test images written to disk by streaming (layers of any size,
 * memory stays flat): uncompressed layer tars, then OCI layouts (gzipped or
 * not) and `docker save` archives (classic, or Docker 25+ OCI layout,
 * optionally gzipped) built from them. No checked-in blobs. Shared by the
 * client tests and bench/push.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';

export interface LayerSpec {
  size: number;
  /** random: incompressible; text: compresses about 3x. */
  kind?: 'random' | 'text';
}

export interface GeneratedLayer {
  /** An uncompressed tar holding one file. */
  path: string;
  diffID: string;
  size: number;
}

function sha256hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A 512-byte ustar header for one regular file. */
export function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

const WORDS = Array.from({ length: 2000 }, (_, i) => Buffer.from(`${(i * 7919).toString(36)}${i % 3 ? ' ' : '\n'}`));

function fillText(buf: Buffer): void {
  const idx = randomBytes(buf.length);
  let pos = 0;
  let i = 0;
  while (pos < buf.length) {
    const w = WORDS[((idx[i % idx.length]! << 3) ^ idx[(i + 1) % idx.length]!) % WORDS.length]!;
    pos += w.copy(buf, pos);
    i += 2;
  }
}

/** Writes one uncompressed layer tar of a single `size`-byte file; returns its diffID. */
export async function writeLayerTar(path: string, spec: LayerSpec): Promise<GeneratedLayer> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const write = (b: Buffer) =>
    new Promise<void>((resolve, reject) => {
      hash.update(b);
      out.write(b, (err) => (err ? reject(err) : resolve()));
    });
  await write(tarHeader(`data-${randomBytes(6).toString('hex')}.bin`, spec.size));
  const chunk = Buffer.alloc(1 << 20);
  for (let left = spec.size; left > 0; ) {
    const n = Math.min(left, chunk.length);
    const b = Buffer.alloc(n);
    if (spec.kind === 'text') fillText(b);
    else randomFillSync(b);
    await write(b);
    left -= n;
  }
  const pad = (512 - (spec.size % 512)) % 512;
  await write(Buffer.alloc(pad + 1024));
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const { size } = await stat(path);
  return { path, diffID: `sha256:${hash.digest('hex')}`, size };
}

export async function generateLayers(dir: string, specs: LayerSpec[]): Promise<GeneratedLayer[]> {
  await mkdir(dir, { recursive: true });
  const out: GeneratedLayer[] = [];
  for (const [i, spec] of specs.entries()) out.push(await writeLayerTar(join(dir, `layer-${i}.tar`), spec));
  return out;
}

export function imageConfig(layers: GeneratedLayer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2026-01-01T00:00:00Z',
      config: { Cmd: ['/bin/true'], Labels: { nonce: randomBytes(8).toString('hex') } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) },
      history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: 'pier test' })),
    }),
  );
}

class Hasher extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

export interface WrittenImage {
  manifestDigest: string;
  manifest: Buffer;
  configDigest: string;
  /** Digests of the layers as written (compressed in a gzipped layout). */
  layerDigests: string[];
}

/** Writes an OCI image layout at `dir` (tag in `org.opencontainers.image.ref.name`); layers gzipped when `gzip`. */
export async function writeOciLayout(dir: string, layers: GeneratedLayer[], options: { tag?: string; gzip?: boolean; gzipLevel?: number; config?: Buffer } = {}): Promise<WrittenImage> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const descs = [];
  for (const l of layers) {
    const tmp = join(blobs, `.tmp-${randomBytes(4).toString('hex')}`);
    const hasher = new Hasher();
    if (options.gzip) await pipeline(createReadStream(l.path), createGzip({ level: options.gzipLevel ?? 1 }), hasher, createWriteStream(tmp));
    else await pipeline(createReadStream(l.path), hasher, createWriteStream(tmp));
    const hex = hasher.hash.digest('hex');
    await rename(tmp, join(blobs, hex));
    descs.push({ mediaType: options.gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${hex}`, size: hasher.size });
  }
  const config = options.config ?? imageConfig(layers);
  await writeFile(join(blobs, sha256hex(config)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256hex(config)}`, size: config.length },
      layers: descs,
    }),
  );
  await writeFile(join(blobs, sha256hex(manifest)), manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': options.tag ?? 'latest' } }],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return { manifestDigest: `sha256:${sha256hex(manifest)}`, manifest, configDigest: `sha256:${sha256hex(config)}`, layerDigests: descs.map((d) => d.digest) };
}

/**
 * Writes a `docker save` tarball: `classic` (`<id>/layer.tar`, `<hex>.json`)
 * or `oci` (Docker 25+: `blobs/sha256/...`, index.json, oci-layout, plus
 * manifest.json); gzipped when `gzip`.
 */
export async function writeDockerArchive(file: string, layers: GeneratedLayer[], options: { repoTag: string; format?: 'classic' | 'oci'; gzip?: boolean; config?: Buffer }): Promise<{ configDigest: string; diffIDs: string[] }> {
  const config = options.config ?? imageConfig(layers);
  const configHex = sha256hex(config);
  const p = pack();
  const out = new PassThrough();
  const done = options.gzip ? pipeline(p, createGzip({ level: 1 }), createWriteStream(file)) : pipeline(p, out, createWriteStream(file));
  const addBuffer = (name: string, data: Buffer) =>
    new Promise<void>((resolve, reject) => {
      p.entry({ name, size: data.length, mtime: new Date(0) }, data, (err) => (err ? reject(err) : resolve()));
    });
  const addFile = async (name: string, path: string) => {
    const { size } = await stat(path);
    await new Promise<void>((resolve, reject) => {
      const entry = p.entry({ name, size, mtime: new Date(0) }, (err) => (err ? reject(err) : resolve()));
      createReadStream(path).on('error', reject).pipe(entry);
    });
  };
  const oci = options.format === 'oci';
  const layerPaths: string[] = [];
  if (oci) {
    await addBuffer('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    for (const l of layers) {
      const name = `blobs/sha256/${l.diffID.slice(7)}`;
      await addFile(name, l.path);
      layerPaths.push(name);
    }
    await addBuffer(`blobs/sha256/${configHex}`, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configHex}`, size: config.length },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.diffID, size: l.size })),
      }),
    );
    await addBuffer(`blobs/sha256/${sha256hex(manifest)}`, manifest);
    await addBuffer(
      'index.json',
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(manifest)}`, size: manifest.length, annotations: { 'io.containerd.image.name': options.repoTag } }] })),
    );
    await addBuffer('manifest.json', Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${configHex}`, RepoTags: [options.repoTag], Layers: layerPaths }])));
  } else {
    for (const l of layers) {
      const id = sha256hex(l.diffID + configHex);
      await addFile(`${id}/layer.tar`, l.path);
      await addBuffer(`${id}/VERSION`, Buffer.from('1.0'));
      layerPaths.push(`${id}/layer.tar`);
    }
    await addBuffer(`${configHex}.json`, config);
    await addBuffer('manifest.json', Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [options.repoTag], Layers: layerPaths }])));
  }
  p.finalize();
  await done;
  return { configDigest: `sha256:${configHex}`, diffIDs: layers.map((l) => l.diffID) };
}

export async function removeLayers(layers: GeneratedLayer[]): Promise<void> {
  for (const l of layers) await rm(l.path, { force: true });
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** Writes an OCI layout whose tag names an index of several single-platform images. */
export async function writeOciIndexLayout(dir: string, images: { layers: GeneratedLayer[]; platform: { os: string; architecture: string } }[], tag: string): Promise<{ indexDigest: string; children: WrittenImage[] }> {
  const children: WrittenImage[] = [];
  for (const img of images) children.push(await writeOciLayout(dir, img.layers, { gzip: true, tag: `tmp-${children.length}` }));
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: children.map((c, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: c.manifestDigest, size: c.manifest.length, platform: images[i]!.platform })),
    }),
  );
  const hex = sha256hex(index);
  await writeFile(join(dir, 'blobs', 'sha256', hex), index);
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: index.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return { indexDigest: `sha256:${hex}`, children };
}
