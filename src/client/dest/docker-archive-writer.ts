/**
 * Writes a classic `docker save` tarball (`docker-archive:FILE[:NAME[:TAG]]`)
 * that `docker load` and `podman load` take:
 *
 *     manifest.json        [{"Config":"<hex>.json","RepoTags":["NAME:TAG"],"Layers":["<diffID hex>.tar",...]}]
 *     <config hex>.json    the config, byte for byte (so the image ID is the config digest)
 *     <diffID hex>.tar     each layer uncompressed, as docker save writes it
 *
 * Layers are gunzipped while they stream and their uncompressed digest is
 * checked against the config's `rootfs.diff_ids`, besides the compressed
 * digest the pull engine checks. One image per archive.
 */
import type { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Digest, type Descriptor } from '../../oci/index.js';
import { ClientError } from '../errors.js';
import type { SourceImage, SourceRoot } from '../sources/source.js';
import type { ImageWriter } from './destination.js';
import { Staging } from './staging.js';
import { verifier } from './verify.js';

type Compression = 'gzip' | 'none';

function layerCompression(mediaType: string): Compression | undefined {
  if (/[+.]gzip$/.test(mediaType)) return 'gzip';
  if (/\.tar$/.test(mediaType) || mediaType === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  return undefined;
}

/** The config's `rootfs.diff_ids`, parsed once. */
function diffIDs(image: SourceImage, where: string): Digest[] {
  let ids: unknown;
  try {
    ids = (JSON.parse(image.config.bytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
  } catch (cause) {
    throw new ClientError('ERR_SOURCE', `${where}: the image config is not JSON`, { cause });
  }
  if (!Array.isArray(ids) || ids.length !== image.layers.length || !ids.every((d) => typeof d === 'string' && Digest.tryParse(d))) {
    throw new ClientError('ERR_SOURCE', `${where}: the config's rootfs.diff_ids do not list one digest per layer (${image.layers.length})`);
  }
  return ids.map((d) => Digest.parse(d as string));
}

export class DockerArchiveWriter implements ImageWriter {
  readonly holdsIndex = false;
  readonly description: string;
  private readonly ids = new WeakMap<SourceImage, Digest[]>();
  private constructor(
    private readonly path: string,
    /** `NAME:TAG` for RepoTags, or none (docker load then loads an untagged image). */
    private readonly name: string | undefined,
    private readonly staging: Staging,
  ) {
    this.description = `docker-archive:${path}${name ? `:${name}` : ''}`;
  }

  /** An existing FILE is replaced (at commit). */
  static async create(path: string, name: string | undefined): Promise<DockerArchiveWriter> {
    return new DockerArchiveWriter(path, name, await Staging.create(path));
  }

  private diffIDs(image: SourceImage): Digest[] {
    let ids = this.ids.get(image);
    if (!ids) {
      ids = diffIDs(image, this.description);
      this.ids.set(image, ids);
    }
    return ids;
  }

  check(root: SourceRoot): void {
    if (root.kind === 'index') throw new ClientError('ERR_CONFIG', `${this.description}: holds one image; choose a platform with --platform`);
    this.diffIDs(root);
    for (const l of root.layers) {
      if (l.kind !== 'stored') continue;
      if (!layerCompression(l.descriptor.mediaType)) {
        throw new ClientError('ERR_CONFIG', `${this.description}: cannot write layer ${l.descriptor.digest.toString()} of type ${l.descriptor.mediaType} (gzip and uncompressed layers only)`);
      }
    }
  }

  async has(_digest: Digest): Promise<boolean> {
    return false;
  }

  async putLayer(image: SourceImage, index: number, d: Descriptor, body: Readable): Promise<void> {
    const diffID = this.diffIDs(image)[index]!;
    const steps: Transform[] = [];
    if (layerCompression(d.mediaType) === 'gzip') steps.push(createGunzip({ chunkSize: 1 << 20 }));
    steps.push(
      verifier(diffID, {
        message: (seen) => `layer ${d.digest.toString()} (${index + 1} of ${image.layers.length}) does not match the config's diff_id ${diffID.toString()} when uncompressed (${seen})`,
      }),
    );
    await this.staging.writeStream(`${diffID.encoded}.tar`, body, steps);
  }

  async commit(root: SourceRoot): Promise<void> {
    if (root.kind === 'index') throw new ClientError('ERR_CONFIG', `${this.description}: holds one image; choose a platform with --platform`);
    const config = root.config.descriptor.digest;
    await this.staging.writeBytes(`${config.encoded}.json`, root.config.bytes);
    const manifest = [{ Config: `${config.encoded}.json`, RepoTags: this.name ? [this.name] : [], Layers: this.diffIDs(root).map((d) => `${d.encoded}.tar`) }];
    await this.staging.writeBytes('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await this.staging.packInto();
    await this.staging.discard();
  }

  async discard(): Promise<void> {
    await this.staging.discard();
  }
}
