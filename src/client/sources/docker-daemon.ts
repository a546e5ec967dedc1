/**
 * Images in a Docker Engine (`docker-daemon:NAME[:TAG]`, or a bare name),
 * over `DOCKER_HOST` (unix:// or tcp://) or /var/run/docker.sock. Works with
 * podman's Docker-compatible service too.
 *
 * The image is first inspected (`GET /images/NAME/json`: its ID, which is
 * the config digest, and the config's `diff_ids`). Exporting it
 * (`GET /images/NAME/get`, a `docker save` tarball spooled to a temp file
 * and read as a {@link DockerArchiveSource}) costs seconds, so it happens
 * only when layer bytes are actually needed:
 *
 * - an image pushed before (its config and layer sizes are in the client
 *   cache, {@link PierCache.knownImage}, checked against the ID and
 *   `diff_ids` the daemon reports) becomes a source whose layers export
 *   the image on their first `open()`. The push engine finds each layer's
 *   compressed form in the diffID cache and asks the registry; when the
 *   registry has every blob, nothing is opened and nothing exported. When
 *   one must be uploaded, the export runs once and must hold the same
 *   config (else the push fails: the image changed under it).
 * - any other image is exported at once, and recorded in the cache when its
 *   ID is its config digest (true of Docker's classic image store; not of
 *   the containerd image store, whose IDs are manifest digests: those
 *   images are always exported).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Digest, MediaTypes } from '../../oci/index.js';
import { PierCache, defaultCacheDir, type KnownImage } from '../cache.js';
import { HttpPool } from '../http.js';
import { readBody } from '../transport.js';
import { ClientError } from '../errors.js';
import { DockerArchiveSource } from './docker-archive.js';
import type { ImageSource, RawLayer, SourceImage, SourceRoot } from './source.js';

export function daemonEndpoint(env: NodeJS.ProcessEnv = process.env): { origin: string; pool: HttpPool; where: string } {
  const host = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    return { origin: 'http://localhost', pool: new HttpPool({ socketPath, env }), where: socketPath };
  }
  if (host.startsWith('tcp://') || host.startsWith('http://')) {
    return { origin: `http://${host.replace(/^\w+:\/\//, '')}`, pool: new HttpPool({ env }), where: host };
  }
  throw new ClientError('ERR_CONFIG', `DOCKER_HOST=${host}: only unix:// and tcp:// are supported`);
}

export interface DockerDaemonSourceOptions {
  /** The client cache folder (default: as the client's, from `env`). */
  cacheDir?: string;
}

/** What the Engine API's image inspect tells about an image. */
interface Inspected {
  /** The image ID when it is a digest (the config digest in the classic store). */
  id: Digest | undefined;
  diffIDs: Digest[];
}

function sameDigests(a: readonly Digest[], b: readonly Digest[]): boolean {
  return a.length === b.length && a.every((d, i) => d.equals(b[i]!));
}

function configDiffIDs(config: Buffer): Digest[] | undefined {
  try {
    const parsed = JSON.parse(config.toString('utf8')) as { rootfs?: { diff_ids?: unknown } };
    const ids = parsed.rootfs?.diff_ids;
    if (!Array.isArray(ids)) return undefined;
    const out = ids.map((d) => (typeof d === 'string' ? Digest.tryParse(d) : undefined));
    return out.every((d) => d !== undefined) ? out : undefined;
  } catch {
    return undefined;
  }
}

export class DockerDaemonSource implements ImageSource {
  readonly description: string;
  private archive: DockerArchiveSource | undefined;
  private dir: string | undefined;
  private readonly cacheDir: string;

  constructor(
    readonly name: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    options: DockerDaemonSourceOptions = {},
  ) {
    this.description = `docker-daemon:${name}`;
    this.cacheDir = options.cacheDir ?? defaultCacheDir(env);
  }

  get defaultName(): string {
    return this.name;
  }

  private rootPromise: Promise<SourceRoot> | undefined;
  private exportPromise: Promise<SourceImage> | undefined;
  /** Stops an export still streaming when the source is closed (a failed or interrupted push). */
  private readonly closing = new AbortController();

  /** Reads the source once; later calls share the result. */
  root(): Promise<SourceRoot> {
    return (this.rootPromise ??= this.load());
  }

  private async load(): Promise<SourceRoot> {
    const inspected = await this.inspect();
    if (inspected.id) {
      const cache = new PierCache(this.cacheDir);
      const known = await cache.knownImage(inspected.id);
      await cache.close();
      const knownIDs = known && configDiffIDs(known.config);
      if (known && knownIDs && sameDigests(knownIDs, inspected.diffIDs) && known.layerSizes.length === knownIDs.length) {
        return this.deferred(inspected.id, known, knownIDs);
      }
    }
    const image = await this.exported();
    if (inspected.id) await this.remember(inspected, image);
    return image;
  }

  /** An image whose layers are exported only when one is opened. */
  private deferred(id: Digest, known: KnownImage, diffIDs: Digest[]): SourceImage {
    const layers = diffIDs.map((diffID, i): RawLayer => ({
      kind: 'raw',
      diffID,
      size: known.layerSizes[i]!,
      open: async () => {
        const image = await this.exported();
        if (!image.config.descriptor.digest.equals(id)) {
          throw new ClientError('ERR_SOURCE', `${this.name} changed in the Docker daemon during the push (was ${id.toString()}, now ${image.config.descriptor.digest.toString()}); run the push again`);
        }
        const layer = image.layers[i];
        if (layer?.kind !== 'raw' || !layer.diffID.equals(diffID)) {
          throw new ClientError('ERR_SOURCE', `${this.name}: the exported image has no layer ${diffID.toString()} at position ${i + 1}`);
        }
        return layer.open();
      },
    }));
    return { kind: 'image', config: { descriptor: { mediaType: MediaTypes.dockerConfig, digest: id, size: known.config.length }, bytes: known.config }, layers };
  }

  /** Records an exported image so the next push of it needs no export. Only classic-store images (ID = config digest, every layer uncompressed). */
  private async remember(inspected: Inspected, image: SourceImage): Promise<void> {
    if (!inspected.id?.equals(image.config.descriptor.digest)) return;
    const sizes: number[] = [];
    for (const l of image.layers) {
      if (l.kind !== 'raw') return;
      sizes.push(l.size);
    }
    if (!sameDigests(image.layers.map((l) => (l as RawLayer).diffID), inspected.diffIDs)) return;
    const cache = new PierCache(this.cacheDir);
    await cache.recordKnownImage(inspected.id, { config: image.config.bytes, layerSizes: sizes });
    await cache.close();
  }

  private async inspect(): Promise<Inspected> {
    const { origin, pool, where } = daemonEndpoint(this.env);
    try {
      const res = await pool.request({ origin, path: `/images/${encodeURIComponent(this.name)}/json`, method: 'GET' });
      const text = (await readBody({ status: res.statusCode, headers: res.headers, body: res.body, url: new URL(origin) }, 4 << 20)).toString('utf8');
      if (res.statusCode === 404) throw new ClientError('ERR_NOT_FOUND', `the Docker daemon at ${where} has no image ${this.name}`);
      if (res.statusCode !== 200) throw new ClientError('ERR_DAEMON', `the Docker daemon at ${where} answered HTTP ${res.statusCode} for ${this.name}: ${text.slice(0, 300)}`);
      let body: { Id?: unknown; RootFS?: { Layers?: unknown } };
      try {
        body = JSON.parse(text) as typeof body;
      } catch (cause) {
        throw new ClientError('ERR_DAEMON', `the Docker daemon at ${where} answered an image inspect that is not JSON`, { cause });
      }
      const layers = Array.isArray(body.RootFS?.Layers) ? body.RootFS.Layers : [];
      const diffIDs = layers.map((d) => (typeof d === 'string' ? Digest.tryParse(d) : undefined));
      const id = typeof body.Id === 'string' ? Digest.tryParse(body.Id) : undefined;
      // An ID or layer list this client cannot read only means: export.
      return diffIDs.every((d) => d !== undefined) ? { id, diffIDs } : { id: undefined, diffIDs: [] };
    } catch (err) {
      if (err instanceof ClientError) throw err;
      throw new ClientError('ERR_DAEMON', `cannot reach the Docker daemon at ${where} (set DOCKER_HOST)`, { cause: err });
    } finally {
      await pool.close();
    }
  }

  /** Exports the image once (`docker save` of NAME) and reads it. */
  private exported(): Promise<SourceImage> {
    return (this.exportPromise ??= this.export());
  }

  private async export(): Promise<SourceImage> {
    const { origin, pool, where } = daemonEndpoint(this.env);
    this.dir = await mkdtemp(join(tmpdir(), 'pier-daemon-'));
    const file = join(this.dir, 'image.tar');
    try {
      const res = await pool.request({ origin, path: `/images/${encodeURIComponent(this.name)}/get`, method: 'GET', signal: this.closing.signal });
      if (res.statusCode === 404) {
        res.body.resume();
        throw new ClientError('ERR_NOT_FOUND', `the Docker daemon at ${where} has no image ${this.name}`);
      }
      if (res.statusCode !== 200) {
        const text = (await readBody({ status: res.statusCode, headers: res.headers, body: res.body, url: new URL(origin) }, 64 * 1024)).toString('utf8').slice(0, 300);
        throw new ClientError('ERR_DAEMON', `the Docker daemon at ${where} answered HTTP ${res.statusCode} for ${this.name}: ${text}`);
      }
      await pipeline(res.body, createWriteStream(file), { signal: this.closing.signal });
    } catch (err) {
      if (err instanceof ClientError) throw err;
      if (this.closing.signal.aborted) throw new ClientError('ERR_ABORTED', `export of ${this.name} stopped`, { cause: err });
      throw new ClientError('ERR_DAEMON', `cannot reach the Docker daemon at ${where} (set DOCKER_HOST)`, { cause: err });
    } finally {
      await pool.close();
    }
    this.archive = new DockerArchiveSource(file, undefined);
    const root = await this.archive.root();
    if (root.kind !== 'image') throw new ClientError('ERR_SOURCE', `${this.name}: the daemon exported an index`);
    return root;
  }

  async close(): Promise<void> {
    // An export still running is stopped, and has ended, before its folder goes.
    this.closing.abort();
    await this.exportPromise?.catch(() => undefined);
    await this.archive?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
