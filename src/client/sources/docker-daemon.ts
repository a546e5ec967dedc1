/**
 * Images in a Docker Engine (`docker-daemon:NAME[:TAG]`, or a bare name):
 * `GET /images/NAME/get` over `DOCKER_HOST` (unix:// or tcp://) or
 * /var/run/docker.sock streams a `docker save` tarball, which is spooled to
 * a temp file and read as a {@link DockerArchiveSource}. Works with podman's
 * Docker-compatible service too.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HttpPool } from '../http.js';
import { readBody } from '../transport.js';
import { ClientError } from '../errors.js';
import { DockerArchiveSource } from './docker-archive.js';
import type { ImageSource, SourceRoot } from './source.js';

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

export class DockerDaemonSource implements ImageSource {
  readonly description: string;
  private archive: DockerArchiveSource | undefined;
  private dir: string | undefined;

  constructor(
    readonly name: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.description = `docker-daemon:${name}`;
  }

  get defaultName(): string {
    return this.name;
  }

  private rootPromise: Promise<SourceRoot> | undefined;

  /** Reads the source once; later calls share the result. */
  root(): Promise<SourceRoot> {
    return (this.rootPromise ??= this.load());
  }

  private async load(): Promise<SourceRoot> {
    const { origin, pool, where } = daemonEndpoint(this.env);
    this.dir = await mkdtemp(join(tmpdir(), 'pier-daemon-'));
    const file = join(this.dir, 'image.tar');
    try {
      const res = await pool.request({ origin, path: `/images/${encodeURIComponent(this.name)}/get`, method: 'GET' });
      if (res.statusCode === 404) {
        res.body.resume();
        throw new ClientError('ERR_NOT_FOUND', `the Docker daemon at ${where} has no image ${this.name}`);
      }
      if (res.statusCode !== 200) {
        const text = (await readBody({ status: res.statusCode, headers: res.headers, body: res.body, url: new URL(origin) }, 64 * 1024)).toString('utf8').slice(0, 300);
        throw new ClientError('ERR_DAEMON', `the Docker daemon at ${where} answered HTTP ${res.statusCode} for ${this.name}: ${text}`);
      }
      await pipeline(res.body, createWriteStream(file));
    } catch (err) {
      if (err instanceof ClientError) throw err;
      throw new ClientError('ERR_DAEMON', `cannot reach the Docker daemon at ${where} (set DOCKER_HOST)`, { cause: err });
    } finally {
      await pool.close();
    }
    this.archive = new DockerArchiveSource(file, undefined);
    return this.archive.root();
  }

  async close(): Promise<void> {
    await this.archive?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
