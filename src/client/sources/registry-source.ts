/**
 * An image in a registry, as the source of `pier copy` and `pier tag`:
 * manifests are fetched once; blobs are streamed on demand (with a Range
 * header when resuming), or mounted when the destination is the same registry.
 * Manifests and configs are verified against their digests here; layers are
 * streamed unverified and checked by whoever reads them (push, pull).
 */
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { Digest, isIndexMediaType, parseManifest, type Descriptor, type ImageReference } from '../../oci/index.js';
import { ClientError } from '../errors.js';
import type { Registry } from '../registry.js';
import { scope } from '../registry.js';
import { drain, header } from '../transport.js';
import type { ImageSource, SourceImage, SourceRoot, StoredBlob } from './source.js';

/** Drops the first `n` bytes of a stream. */
function skip(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
}

/** Image configs are small JSON documents; a larger "config" is refused before it is read. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export class RegistrySource implements ImageSource {
  readonly description: string;
  readonly mountFrom: { registry: string; repository: string };
  readonly defaultName: string;
  constructor(
    private readonly registry: Registry,
    private readonly ref: ImageReference,
  ) {
    this.description = ref.toString();
    this.mountFrom = { registry: ref.registry, repository: ref.repository };
    this.defaultName = ref.toString();
  }

  async close(): Promise<void> {}

  private blob(d: Descriptor): StoredBlob {
    return {
      kind: 'stored',
      descriptor: d,
      open: async (start = 0): Promise<Readable> => {
        if (start === 0) return (await this.registry.getBlob(this.ref.repository, d.digest)).body;
        const res = await this.registry.request({
          method: 'GET',
          url: new URL(`/v2/${this.ref.repository}/blobs/${d.digest.toString()}`, this.registry.base),
          headers: { range: `bytes=${start}-` },
          scopes: [scope(this.ref.repository, 'pull')],
        });
        if (res.status === 200) return pipeline(res.body, skip(start), () => undefined); // Range ignored: drop what we have
        if (res.status !== 206) throw await this.registry.fail(res, `fetching blob ${d.digest.toString()} from byte ${start}`, this.ref.repository);
        const range = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '');
        if (!range || Number(range[1]) !== start) {
          await drain(res);
          throw new ClientError('ERR_HTTP_STATUS', `${this.ref.registry}/${this.ref.repository}: asked for ${d.digest.toString()} from byte ${start}, got Content-Range ${JSON.stringify(header(res, 'content-range') ?? '')}`);
        }
        return res.body;
      },
    };
  }

  async root(): Promise<SourceRoot> {
    const top = await this.registry.getManifest(this.ref.repository, this.ref.manifestReference);
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === 'index') {
      const images = [];
      for (const child of parsed.manifests) {
        if (isIndexMediaType(child.mediaType)) throw new ClientError('ERR_SOURCE', `${this.description}: nested indexes are not supported`);
        images.push({ descriptor: child, image: await this.image(child.digest.toString()) });
      }
      return { kind: 'index', manifest: { bytes: top.bytes, mediaType: parsed.mediaType, digest: top.digest }, images };
    }
    return this.imageFrom(top.bytes, parsed.mediaType, top.digest);
  }

  private async image(reference: string): Promise<SourceImage> {
    const m = await this.registry.getManifest(this.ref.repository, reference);
    return this.imageFrom(m.bytes, m.mediaType, m.digest);
  }

  private async imageFrom(bytes: Buffer, mediaType: string, digest: Digest): Promise<SourceImage> {
    const parsed = parseManifest(bytes, mediaType);
    if (!parsed.config) throw new ClientError('ERR_SOURCE', `${this.description}: manifest has no config`);
    const config = parsed.config;
    if (config.size > MAX_CONFIG_BYTES) throw new ClientError('ERR_SOURCE', `${this.description}: config ${config.digest.toString()} is ${config.size} bytes, too large for an image config`);
    const cfg = await this.registry.getBlob(this.ref.repository, config.digest);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of cfg.body as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > config.size) {
        cfg.body.destroy();
        break;
      }
      chunks.push(c);
    }
    const configBytes = Buffer.concat(chunks);
    // The config is read whole, so it is checked here: every user of this source gets verified bytes.
    if (size !== config.size || !Digest.of(configBytes, config.digest.algorithm).equals(config.digest)) {
      throw new ClientError('ERR_DIGEST_MISMATCH', `config ${config.digest.toString()} from ${this.ref.registry}/${this.ref.repository} does not match its digest`);
    }
    return {
      kind: 'image',
      manifest: { bytes, mediaType: parsed.mediaType, digest },
      config: { descriptor: config, bytes: configBytes },
      layers: parsed.layers.map((l) => this.blob(l)),
    };
  }
}
