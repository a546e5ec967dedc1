/**
 * Test data generated at run time: incompressible random bytes, uncompressed
 * tar layers that containerd can unpack, and OCI image configs and manifests.
 */
import { createHash, randomFillSync } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { tarHeader } from '../../test/client/image-files.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function randomBuffer(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  // randomFillSync is limited to 2^31-1 bytes per call.
  for (let off = 0; off < size; off += 1 << 30) randomFillSync(b, off, Math.min(1 << 30, size - off));
  return b;
}

/**
 * Writes a tar archive holding one file of `payload` random bytes to `path`
 * and returns its descriptor (uncompressed, so digest = diff_id). Streams in
 * 16 MiB pieces; memory stays flat.
 */
export async function writeRandomTarLayer(path: string, name: string, payload: number): Promise<Descriptor> {
  const fh = await open(path, 'w');
  const hash = createHash('sha256');
  let size = 0;
  const write = async (b: Buffer): Promise<void> => {
    hash.update(b);
    await fh.write(b);
    size += b.length;
  };
  try {
    await write(tarHeader(name, payload));
    const piece = Buffer.allocUnsafe(16 << 20);
    for (let left = payload; left > 0; left -= piece.length) {
      const n = Math.min(left, piece.length);
      randomFillSync(piece, 0, n);
      await write(piece.subarray(0, n));
    }
    const pad = (512 - (payload % 512)) % 512;
    await write(Buffer.alloc(pad + 1024));
  } finally {
    await fh.close();
  }
  return { mediaType: OCI_LAYER_TAR, digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * A file of `size` random bytes whose last 32 bytes can be rewritten to give
 * a fresh digest cheaply: the hash state of the prefix is kept and copied.
 */
export class MutableRandomFile {
  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly prefixHash: Hash,
  ) {}

  static async create(path: string, size: number): Promise<MutableRandomFile> {
    const fh = await open(path, 'w');
    const hash = createHash('sha256');
    try {
      const piece = Buffer.allocUnsafe(16 << 20);
      for (let left = size - 32; left > 0; left -= piece.length) {
        const n = Math.min(left, piece.length);
        randomFillSync(piece, 0, n);
        hash.update(piece.subarray(0, n));
        await fh.write(piece.subarray(0, n));
      }
      await fh.write(Buffer.alloc(32));
    } finally {
      await fh.close();
    }
    return new MutableRandomFile(path, size, hash);
  }

  /** Rewrites the tail with new random bytes; returns the file's new digest. */
  async renew(): Promise<string> {
    const tail = randomBuffer(32);
    const fh = await open(this.path, 'r+');
    try {
      await fh.write(tail, 0, 32, this.size - 32);
    } finally {
      await fh.close();
    }
    return `sha256:${this.prefixHash.copy().update(tail).digest('hex')}`;
  }
}

/** An image config for linux/amd64 whose rootfs lists `layers` (uncompressed: digest = diff_id). */
export function imageConfig(layers: readonly Descriptor[], label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      os: 'linux',
      config: { Labels: { 'pier.bench': label } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: 'pier bench' })),
    }),
  );
}

export function imageManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
}

/** A small in-memory image: config + layers as buffers, and its manifest. */
export interface MemoryImage {
  readonly config: { desc: Descriptor; data: Buffer };
  readonly layers: readonly { desc: Descriptor; data: Buffer }[];
  readonly manifest: Buffer;
  readonly manifestDigest: string;
}

export function memoryImage(layerData: readonly Buffer[], label: string): MemoryImage {
  const layers = layerData.map((data) => ({ desc: { mediaType: OCI_LAYER_TAR, digest: sha256(data), size: data.length }, data }));
  const cfg = imageConfig(layers.map((l) => l.desc), label);
  const config = { desc: { mediaType: OCI_CONFIG, digest: sha256(cfg), size: cfg.length }, data: cfg };
  const manifest = imageManifest(config.desc, layers.map((l) => l.desc));
  return { config, layers, manifest, manifestDigest: sha256(manifest) };
}
