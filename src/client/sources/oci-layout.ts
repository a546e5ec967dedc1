/**
 * OCI image layouts (image-layout.md): a folder (`oci:PATH[:TAG]`) or a tar
 * of one (`oci-archive:PATH[:TAG]`). Blobs are pushed byte for byte, so
 * every digest, including the manifest's, is unchanged.
 */
import { Digest, MediaTypes, isIndexMediaType, parseManifest, type Descriptor } from '../../oci/index.js';
import { ClientError } from '../errors.js';
import { DirFiles, TarFiles, type Files } from './files.js';
import type { ImageSource, SourceImage, SourceRoot, StoredBlob } from './source.js';
import { verified } from './verify.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

function blobPath(d: Digest): string {
  return `blobs/${d.algorithm}/${d.encoded}`;
}

export class OciLayoutSource implements ImageSource {
  readonly description: string;
  readonly defaultName: string | undefined;
  private constructor(
    private readonly files: Files,
    private readonly tag: string | undefined,
    transport: 'oci' | 'oci-archive',
  ) {
    this.description = `${transport}:${files.where}${tag ? `:${tag}` : ''}`;
    this.defaultName = undefined;
  }

  static dir(path: string, tag?: string): OciLayoutSource {
    return new OciLayoutSource(new DirFiles(path), tag, 'oci');
  }

  static async archive(path: string, tag?: string): Promise<OciLayoutSource> {
    return new OciLayoutSource(await TarFiles.open(path), tag, 'oci-archive');
  }

  async close(): Promise<void> {
    await this.files.close();
  }

  private async readBlob(d: Descriptor, limit = 8 * 1024 * 1024): Promise<Buffer> {
    if (d.size > limit) throw new ClientError('ERR_SOURCE', `${this.files.where}: ${d.digest.toString()} is too large to be a manifest or config`);
    const bytes = await this.files.read(blobPath(d.digest));
    if (bytes.length !== d.size || !Digest.of(bytes, d.digest.algorithm).equals(d.digest)) {
      throw new ClientError('ERR_DIGEST_MISMATCH', `${this.description}: ${blobPath(d.digest)} does not match its digest; nothing was published`);
    }
    return bytes;
  }

  /** A blob streamed from the layout, checked against its descriptor as it is read (the whole file, also when resuming). */
  private stored(d: Descriptor, what: string): StoredBlob {
    const expected = { digest: d.digest, size: d.size, what: `${this.description}: ${what} (${blobPath(d.digest)})` };
    return { kind: 'stored', descriptor: d, open: async (start = 0) => verified(this.files.open(blobPath(d.digest)), expected, start) };
  }

  private rootPromise: Promise<SourceRoot> | undefined;

  /** Reads the source once; later calls share the result. */
  root(): Promise<SourceRoot> {
    return (this.rootPromise ??= this.load());
  }

  private async load(): Promise<SourceRoot> {
    let index: ReturnType<typeof parseManifest>;
    try {
      index = parseManifest(await this.files.read('index.json'), MediaTypes.ociIndex);
    } catch (cause) {
      throw new ClientError('ERR_SOURCE', `${this.description} is not an OCI image layout`, { cause });
    }
    const candidates = index.manifests.filter((m) => {
      if (!this.tag) return true;
      const name = m.annotations?.[REF_NAME];
      return name === this.tag || name?.endsWith(`:${this.tag}`);
    });
    if (candidates.length === 0) throw new ClientError('ERR_SOURCE', `${this.description}: no image tagged ${this.tag ?? '(any)'}`);
    if (candidates.length > 1) {
      const names = candidates.map((c) => c.annotations?.[REF_NAME] ?? c.digest.toString()).join(', ');
      throw new ClientError('ERR_SOURCE', `${this.description}: ${candidates.length} images (${names}); name one with :TAG`);
    }
    const top = candidates[0]!;
    if (isIndexMediaType(top.mediaType)) {
      const bytes = await this.readBlob(top);
      const parsed = parseManifest(bytes, top.mediaType);
      const images = [];
      for (const child of parsed.manifests) {
        if (isIndexMediaType(child.mediaType)) throw new ClientError('ERR_SOURCE', `${this.description}: nested indexes are not supported`);
        images.push({ descriptor: child, image: await this.image(child) });
      }
      return { kind: 'index', manifest: { bytes, mediaType: parsed.mediaType, digest: top.digest }, images };
    }
    return this.image(top);
  }

  private async image(d: Descriptor): Promise<SourceImage> {
    const bytes = await this.readBlob(d);
    const m = parseManifest(bytes, d.mediaType);
    if (!m.config) throw new ClientError('ERR_SOURCE', `${this.description}: manifest ${d.digest.toString()} has no config`);
    const configBytes = await this.readBlob(m.config);
    const image: SourceImage = {
      kind: 'image',
      manifest: { bytes, mediaType: m.mediaType, digest: d.digest },
      config: { descriptor: m.config, bytes: configBytes },
      layers: m.layers.map((l, i) => this.stored(l, `layer ${i + 1}`)),
    };
    if (d.platform) image.platform = d.platform;
    return image;
  }
}
