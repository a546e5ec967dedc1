/**
 * Writes an OCI image layout (image-layout.md): a folder (`oci:DIR[:TAG]`)
 * or a tar of one (`oci-archive:FILE[:TAG]`). Every blob and manifest is
 * stored byte for byte, so every digest equals the registry's.
 *
 * - a new (or empty) folder: the staging folder becomes it by one rename;
 * - an existing layout: blobs it lacks are moved in, then `index.json` is
 *   replaced (temp file + rename) with the entry for TAG added or replaced,
 *   like skopeo; blobs it already has are not fetched;
 * - an archive: the staging folder is packed into a temp file renamed over FILE.
 */
import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MediaTypes, type Descriptor, type Digest } from '../../oci/index.js';
import { ClientError } from '../errors.js';
import type { SourceImage, SourceRoot } from '../sources/source.js';
import type { ImageWriter } from './destination.js';
import { Staging } from './staging.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT_FILE = `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`;

function blobPath(d: Digest): string {
  return `blobs/${d.algorithm}/${d.encoded}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export class OciLayoutWriter implements ImageWriter {
  readonly holdsIndex = true;
  private constructor(
    readonly description: string,
    private readonly path: string,
    private readonly tag: string | undefined,
    private readonly staging: Staging,
    /** 'new': the folder does not exist or is empty; 'merge': an existing layout; 'archive': oci-archive. */
    private readonly mode: 'new' | 'merge' | 'archive',
  ) {}

  /** `oci:DIR[:TAG]`. Refuses a folder that exists and is neither empty nor an OCI layout. */
  static async dir(path: string, tag: string | undefined): Promise<OciLayoutWriter> {
    let mode: 'new' | 'merge' = 'new';
    try {
      const st = await stat(path);
      if (!st.isDirectory()) throw new ClientError('ERR_CONFIG', `oci:${path}: exists and is not a folder`);
      if (await exists(join(path, 'oci-layout'))) mode = 'merge';
      else if ((await readdir(path)).length > 0) throw new ClientError('ERR_CONFIG', `oci:${path}: the folder is not empty and not an OCI image layout`);
    } catch (err) {
      if (err instanceof ClientError) throw err;
    }
    return new OciLayoutWriter(`oci:${path}${tag ? `:${tag}` : ''}`, path, tag, await Staging.create(path), mode);
  }

  /** `oci-archive:FILE[:TAG]`; an existing FILE is replaced. */
  static async archive(path: string, tag: string | undefined): Promise<OciLayoutWriter> {
    return new OciLayoutWriter(`oci-archive:${path}${tag ? `:${tag}` : ''}`, path, tag, await Staging.create(path), 'archive');
  }

  check(_root: SourceRoot): void {}

  async has(digest: Digest): Promise<boolean> {
    return this.mode === 'merge' && exists(join(this.path, blobPath(digest)));
  }

  async putLayer(_image: SourceImage, _index: number, d: Descriptor, body: Readable): Promise<void> {
    await this.staging.writeStream(blobPath(d.digest), body);
  }

  private async putImage(image: SourceImage): Promise<void> {
    await this.staging.writeBytes(blobPath(image.config.descriptor.digest), image.config.bytes);
    if (!image.manifest) throw new ClientError('ERR_SOURCE', `${this.description}: an image without its manifest cannot be written`);
    await this.staging.writeBytes(blobPath(image.manifest.digest), image.manifest.bytes);
  }

  private entry(root: SourceRoot): IndexEntry {
    const m = root.manifest;
    if (!m) throw new ClientError('ERR_SOURCE', `${this.description}: an image without its manifest cannot be written`);
    const e: IndexEntry = { mediaType: m.mediaType, digest: m.digest.toString(), size: m.bytes.length };
    if (this.tag) e.annotations = { [REF_NAME]: this.tag };
    return e;
  }

  async commit(root: SourceRoot): Promise<void> {
    if (root.kind === 'index') {
      for (const { image } of root.images) await this.putImage(image);
      await this.staging.writeBytes(blobPath(root.manifest.digest), root.manifest.bytes);
    } else {
      await this.putImage(root);
    }
    const entry = this.entry(root);
    if (this.mode === 'merge') {
      await this.merge(entry);
      return;
    }
    await this.staging.writeBytes('oci-layout', Buffer.from(LAYOUT_FILE));
    await this.staging.writeBytes('index.json', Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [entry] })}\n`));
    if (this.mode === 'archive') {
      await this.staging.packInto();
      await this.staging.discard();
      return;
    }
    try {
      // rename(2) replaces an empty folder: the layout appears whole or not at all.
      await rename(this.staging.dir, this.path);
    } catch (cause) {
      throw new ClientError('ERR_CONFIG', `${this.description}: cannot create ${this.path}`, { cause });
    }
  }

  /** Adds the staged blobs and `entry` to an existing layout; index.json is replaced last, by a rename. */
  private async merge(entry: IndexEntry): Promise<void> {
    let index: { manifests?: IndexEntry[]; [key: string]: unknown };
    try {
      index = JSON.parse(await readFile(join(this.path, 'index.json'), 'utf8')) as typeof index;
    } catch (cause) {
      throw new ClientError('ERR_CONFIG', `${this.description}: cannot read ${join(this.path, 'index.json')}`, { cause });
    }
    for (const alg of await readdir(join(this.staging.dir, 'blobs'))) {
      for (const name of await readdir(join(this.staging.dir, 'blobs', alg))) {
        const target = join(this.path, 'blobs', alg, name);
        if (await exists(target)) continue;
        await mkdir(join(this.path, 'blobs', alg), { recursive: true });
        await rename(join(this.staging.dir, 'blobs', alg, name), target);
      }
    }
    const manifests = (index.manifests ?? []).filter((m) => {
      if (this.tag) return m.annotations?.[REF_NAME] !== this.tag;
      return !(m.digest === entry.digest && !m.annotations?.[REF_NAME]);
    });
    manifests.push(entry);
    const tmp = join(this.staging.dir, 'index.json');
    await this.staging.writeBytes('index.json', Buffer.from(`${JSON.stringify({ ...index, schemaVersion: 2, manifests })}\n`));
    await rename(tmp, join(this.path, 'index.json'));
    await this.staging.discard();
  }

  async discard(): Promise<void> {
    await this.staging.discard();
  }
}
