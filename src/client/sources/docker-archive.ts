/**
 * `docker save` tarballs (`docker-archive:PATH[:IMAGE]`): the classic
 * layout (`manifest.json` naming `<id>/layer.tar` files) and the OCI layout
 * Docker 25+ writes (the same `manifest.json`, naming `blobs/sha256/...`),
 * gzipped or not. Layers are uncompressed tars named by the config's
 * diffIDs and become {@link RawLayer}s; a gzipped one is pushed as is.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { Digest, Digester, ImageReference, MediaTypes } from '../../oci/index.js';
import { ClientError } from '../errors.js';
import { TarFiles } from './files.js';
import { verified } from './verify.js';
import type { ImageSource, SourceImage, SourceLayer, SourceRoot } from './source.js';

// node:zlib loads at the first gzipped archive, not with every push (decision 0132).
const requireBuiltin = createRequire(import.meta.url);
let zlibModule: typeof Zlib | undefined;
const zlib = (): typeof Zlib => (zlibModule ??= requireBuiltin('node:zlib') as typeof Zlib);

interface ArchiveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

function sameImage(a: string, b: string): boolean {
  try {
    return ImageReference.parse(a).toString() === ImageReference.parse(b).toString();
  } catch {
    return a === b;
  }
}

export class DockerArchiveSource implements ImageSource {
  readonly description: string;
  defaultName: string | undefined;
  private files: TarFiles | undefined;
  private tempDir: string | undefined;

  constructor(
    private readonly path: string,
    private readonly image: string | undefined,
    private readonly options: { tempDir?: string; removeOnClose?: boolean } = {},
  ) {
    this.description = `docker-archive:${path}${image ? `:${image}` : ''}`;
  }

  private async archive(): Promise<TarFiles> {
    if (this.files) return this.files;
    let tarPath = this.path;
    try {
      if (await isGzip(this.path)) {
        // A gzipped tarball has no random access: unpack it once to a temp file.
        this.tempDir = await mkdtemp(join(this.options.tempDir ?? tmpdir(), 'pier-archive-'));
        tarPath = join(this.tempDir, 'archive.tar');
        await pipeline(createReadStream(this.path), zlib().createGunzip(), createWriteStream(tarPath));
      }
    } catch (cause) {
      throw new ClientError('ERR_SOURCE', `reading ${this.path}`, { cause });
    }
    this.files = await TarFiles.open(tarPath);
    return this.files;
  }

  async close(): Promise<void> {
    await this.files?.close();
    if (this.tempDir) await rm(this.tempDir, { recursive: true, force: true });
    if (this.options.removeOnClose) await rm(this.path, { force: true });
  }

  private rootPromise: Promise<SourceRoot> | undefined;

  /** Reads the source once; later calls share the result. */
  root(): Promise<SourceRoot> {
    return (this.rootPromise ??= this.load());
  }

  private async load(): Promise<SourceRoot> {
    const files = await this.archive();
    let entries: ArchiveManifestEntry[];
    try {
      entries = JSON.parse((await files.read('manifest.json')).toString('utf8')) as ArchiveManifestEntry[];
      if (!Array.isArray(entries)) throw new Error('manifest.json is not an array');
    } catch (cause) {
      throw new ClientError('ERR_SOURCE', `${this.path} is not a docker save archive (no valid manifest.json)`, { cause });
    }
    let chosen = entries;
    if (this.image) chosen = entries.filter((e) => (e.RepoTags ?? []).some((t) => sameImage(t, this.image!)));
    if (chosen.length !== 1) {
      const names = entries.flatMap((e) => e.RepoTags ?? []).join(', ') || '(untagged)';
      throw new ClientError(
        'ERR_SOURCE',
        chosen.length === 0 ? `${this.path}: no image ${this.image ?? ''} (has ${names})` : `${this.path} holds several images (${names}); name one as docker-archive:PATH:IMAGE`,
      );
    }
    const entry = chosen[0]!;
    this.defaultName = this.image ?? entry.RepoTags?.[0] ?? undefined;
    const configBytes = await files.read(entry.Config);
    const configDigest = Digest.of(configBytes);
    // The config's file name is its digest (`<hex>.json`, `blobs/sha256/<hex>`): it must match.
    const named = /(?:^|\/)(sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(entry.Config);
    if (named && named[2] !== configDigest.encoded) {
      throw new ClientError('ERR_DIGEST_MISMATCH', `${this.description}: the image config ${entry.Config} does not match the digest in its name; nothing was published`);
    }
    let diffIDs: Digest[];
    try {
      const config = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
      diffIDs = (config.rootfs?.diff_ids ?? []).map((d) => Digest.parse(d));
    } catch (cause) {
      throw new ClientError('ERR_SOURCE', `${this.path}: invalid image config ${entry.Config}`, { cause });
    }
    if (diffIDs.length !== entry.Layers.length) {
      throw new ClientError('ERR_SOURCE', `${this.path}: the config lists ${diffIDs.length} layers, manifest.json ${entry.Layers.length}`);
    }
    const layers: SourceLayer[] = [];
    for (const [i, layerPath] of entry.Layers.entries()) {
      const size = (await files.size(layerPath)) ?? 0;
      const magic = await files.head(layerPath, 2);
      const diffID = diffIDs[i]!;
      const what = `${this.description}: layer ${i + 1} (${layerPath})`;
      if (magic[0] === 0x1f && magic[1] === 0x8b) {
        // Already compressed: pushed as is, checked against its digest and, gunzipped, its diff_id.
        const d = new Digester();
        for await (const chunk of files.open(layerPath) as AsyncIterable<Buffer>) d.update(chunk);
        const digest = d.digest();
        layers.push({
          kind: 'stored',
          descriptor: { mediaType: MediaTypes.dockerLayerGzip, digest, size },
          open: async (start = 0) => verified(files.open(layerPath), { digest, diffID, size, what }, start),
        });
      } else {
        layers.push({ kind: 'raw', diffID, size, open: async () => verified(files.open(layerPath), { digest: diffID, digestName: 'diff_id', size, what }) });
      }
    }
    const image: SourceImage = {
      kind: 'image',
      config: { descriptor: { mediaType: MediaTypes.dockerConfig, digest: configDigest, size: configBytes.length }, bytes: configBytes },
      layers,
    };
    return image;
  }
}
