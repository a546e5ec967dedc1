/**
 * Parses a SOURCE argument of `pier push`:
 * `oci:PATH[:TAG]`, `oci-archive:PATH[:TAG]`, `docker-archive:PATH[:IMAGE]`,
 * `docker-daemon:NAME[:TAG]`, or a bare `NAME[:TAG]` (the daemon, like `docker push`).
 */
import { stat } from 'node:fs/promises';
import { ClientError } from '../errors.js';
import { DockerArchiveSource } from './docker-archive.js';
import { DockerDaemonSource } from './docker-daemon.js';
import { OciLayoutSource } from './oci-layout.js';
import type { ImageSource } from './source.js';

export type { ImageSource, RawLayer, SourceImage, SourceIndex, SourceLayer, SourceRoot, StoredBlob } from './source.js';
export { DockerArchiveSource } from './docker-archive.js';
export { DockerDaemonSource, daemonEndpoint } from './docker-daemon.js';
export { OciLayoutSource } from './oci-layout.js';
export { RegistrySource } from './registry-source.js';

/** Splits `PATH[:SUFFIX]` where PATH may itself contain colons: the suffix is taken only when PATH exists without it. */
async function splitPath(value: string): Promise<{ path: string; suffix?: string }> {
  try {
    await stat(value);
    return { path: value };
  } catch {
    // fall through
  }
  const colon = value.lastIndexOf(':');
  if (colon > 0) {
    const path = value.slice(0, colon);
    const suffix = value.slice(colon + 1);
    if (suffix && !suffix.includes('/')) return { path, suffix };
  }
  return { path: value };
}

/** docker-archive suffixes are image names that may have a tag: `PATH:name:tag`. */
async function splitArchive(value: string): Promise<{ path: string; suffix?: string }> {
  try {
    await stat(value);
    return { path: value };
  } catch {
    // fall through
  }
  let at = value.indexOf(':');
  while (at > 0) {
    const path = value.slice(0, at);
    try {
      await stat(path);
      return { path, suffix: value.slice(at + 1) || undefined };
    } catch {
      at = value.indexOf(':', at + 1);
    }
  }
  return { path: value };
}

export async function openSource(spec: string, env: NodeJS.ProcessEnv = process.env): Promise<ImageSource> {
  const colon = spec.indexOf(':');
  const transport = colon === -1 ? '' : spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  switch (transport) {
    case 'oci': {
      const { path, suffix } = await splitPath(rest);
      return OciLayoutSource.dir(path, suffix);
    }
    case 'oci-archive': {
      const { path, suffix } = await splitPath(rest);
      return OciLayoutSource.archive(path, suffix);
    }
    case 'docker-archive': {
      const { path, suffix } = await splitArchive(rest);
      try {
        await stat(path);
      } catch (cause) {
        throw new ClientError('ERR_SOURCE', `docker-archive: cannot read ${path}`, { cause });
      }
      return new DockerArchiveSource(path, suffix);
    }
    case 'docker-daemon':
      return new DockerDaemonSource(rest, env);
    default:
      if (transport === 'docker' || transport === 'dir' || transport === 'containers-storage') {
        throw new ClientError('ERR_CONFIG', `source transport ${transport}: is not supported; use oci:, oci-archive:, docker-archive: or docker-daemon:`);
      }
      return new DockerDaemonSource(spec, env);
  }
}
