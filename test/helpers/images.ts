/**
 * Generated test images (random layers, like ggcr's pkg/v1/random), written
 * as OCI layouts or `docker save` archives, and pushed over raw HTTP.
 * No checked-in blobs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { MediaTypes } from '../../src/oci/media-types.js';

export interface TestBlob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface TestImage {
  mediaType: string;
  config: TestBlob;
  layers: TestBlob[];
  /** Uncompressed layer tars (diff IDs), in order. */
  diffs: Buffer[];
  manifest: Buffer;
  digest: string;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function blob(data: Buffer, mediaType = 'application/octet-stream'): TestBlob {
  return { mediaType, digest: sha256(data), size: data.length, data };
}

/** A tar of the given entries, in memory (test images are small). */
export async function tarOf(entries: { name: string; data: Buffer | string }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) p.entry({ name: e.name, mode: 0o644, mtime: new Date(0) }, e.data);
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A tar holding one file of `size` random bytes. */
export function randomTar(size: number, name = `file-${randomBytes(4).toString('hex')}`): Promise<Buffer> {
  return tarOf([{ name, data: randomBytes(size) }]);
}

export interface ImageOptions {
  /** Sizes of the random file in each layer. */
  layers?: number[];
  docker?: boolean;
  /** Compress layers with gzip (default true). */
  gzip?: boolean;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

export async function makeImage(options: ImageOptions = {}): Promise<TestImage> {
  const docker = options.docker ?? false;
  const gzip = options.gzip ?? true;
  const diffs = await Promise.all((options.layers ?? [1024]).map((size) => randomTar(size)));
  const layerType = docker ? MediaTypes.dockerLayerGzip : gzip ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer;
  const layers = diffs.map((d) => blob(gzip || docker ? gzipSync(d) : d, layerType));
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = blob(
    Buffer.from(
      JSON.stringify({
        ...platform,
        created: new Date(0).toISOString(),
        config: { Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: diffs.map((d) => sha256(d)) },
        history: diffs.map(() => ({ created_by: 'pier test' })),
      }),
    ),
    docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig,
  );
  const mediaType = docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    }),
  );
  return { mediaType, config, layers, diffs, manifest, digest: sha256(manifest) };
}

export function descriptorOf(image: TestImage, platform?: { os: string; architecture: string }) {
  return { mediaType: image.mediaType, digest: image.digest, size: image.manifest.length, ...(platform ? { platform } : {}) };
}

/** Writes an OCI image layout holding `images` (tag → image) and optional extra manifests (indexes). */
export async function writeOciLayout(dir: string, entries: { tag: string; image: TestImage; extra?: TestImage[] }[]): Promise<void> {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const put = (b: { digest: string; data: Buffer }) => writeFile(path.join(blobsDir, b.digest.slice(7)), b.data);
  const manifests = [];
  for (const { tag, image, extra } of entries) {
    for (const img of [image, ...(extra ?? [])]) {
      await put(img.config);
      for (const l of img.layers) await put(l);
      await put({ digest: img.digest, data: img.manifest });
    }
    manifests.push({ ...descriptorOf(image), annotations: { 'org.opencontainers.image.ref.name': tag } });
  }
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
}

/** An image index over `children` (each with a platform). Its config/layers are empty. */
export function makeIndex(children: { image: TestImage; platform: { os: string; architecture: string } }[]): TestImage {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: children.map((c) => descriptorOf(c.image, c.platform)),
    }),
  );
  const empty = blob(Buffer.from('{}'), MediaTypes.ociEmpty);
  return { mediaType: MediaTypes.ociIndex, config: empty, layers: [], diffs: [], manifest, digest: sha256(manifest) };
}

/** Writes a classic `docker save` tarball (manifest.json, config, layer.tar per layer). */
export async function writeDockerArchive(file: string, image: TestImage, repoTag: string): Promise<void> {
  const configName = `${image.config.digest.slice(7)}.json`;
  const layerNames = image.diffs.map((d) => `${sha256(d).slice(7)}/layer.tar`);
  const tar = await tarOf([
    { name: configName, data: image.config.data },
    ...image.diffs.map((d, i) => ({ name: layerNames[i]!, data: d })),
    { name: 'manifest.json', data: JSON.stringify([{ Config: configName, RepoTags: [repoTag], Layers: layerNames }]) },
  ]);
  await writeFile(file, tar);
}

/** Pushes an image over raw HTTP (monolithic uploads), as a minimal client would. */
export async function pushImage(baseUrl: string, repository: string, reference: string, image: TestImage, children: TestImage[] = []): Promise<void> {
  for (const child of children) await pushImage(baseUrl, repository, child.digest, child);
  for (const b of [image.config, ...image.layers]) {
    if (image.layers.length === 0 && image.mediaType === MediaTypes.ociIndex) break;
    const res = await fetch(`${baseUrl}/v2/${repository}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data, headers: { 'content-type': 'application/octet-stream' } });
    if (res.status !== 201) throw new Error(`blob push failed: ${res.status} ${await res.text()}`);
  }
  const res = await fetch(`${baseUrl}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
  if (res.status !== 201) throw new Error(`manifest push failed: ${res.status} ${await res.text()}`);
}
