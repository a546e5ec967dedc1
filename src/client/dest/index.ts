/**
 * File destinations of `pier pull` / `pier copy`: `oci:DIR[:TAG]`,
 * `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME[:TAG]]`.
 */
import { stat } from 'node:fs/promises';
import { ImageReference, isTag } from '../../oci/index.js';
import { ClientError } from '../errors.js';
import type { DestinationSpec, ImageWriter } from './destination.js';
import { DockerArchiveWriter } from './docker-archive-writer.js';
import { OciLayoutWriter } from './oci-layout-writer.js';

export type { DestinationSpec, ImageWriter } from './destination.js';
export { DockerArchiveWriter } from './docker-archive-writer.js';
export { OciLayoutWriter } from './oci-layout-writer.js';

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const;

/** Whether `spec` names a file destination (`oci:`, `oci-archive:`, `docker-archive:`) rather than a registry. */
export function isFileDestination(spec: string): boolean {
  const colon = spec.indexOf(':');
  return colon > 0 && (TRANSPORTS as readonly string[]).includes(spec.slice(0, colon));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a file destination. `oci:` and `oci-archive:` take the text after
 * the last colon as TAG when the whole text is not an existing path and the
 * tail holds no `/`; `docker-archive:` splits at the first colon, the rest
 * being an image name (`host:port/name:tag`), as skopeo does.
 */
export async function parseDestination(spec: string): Promise<DestinationSpec> {
  const colon = spec.indexOf(':');
  const transport = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  if (transport === 'docker-archive') {
    const at = rest.indexOf(':');
    const path = at === -1 ? rest : rest.slice(0, at);
    if (!path) throw new ClientError('ERR_CONFIG', `${spec}: needs a file name`);
    const nameText = at === -1 ? undefined : rest.slice(at + 1);
    if (!nameText) return { transport, path };
    let ref: ImageReference;
    try {
      ref = ImageReference.parse(nameText);
    } catch (cause) {
      throw new ClientError('ERR_CONFIG', `${spec}: ${JSON.stringify(nameText)} is not an image name`, { cause });
    }
    if (ref.digest) throw new ClientError('ERR_CONFIG', `${spec}: the name must be NAME[:TAG], not a digest`);
    // docker load wants a tag: NAME alone means NAME:latest, as docker tag does.
    return { transport, path, name: /:[^/:]+$/.test(nameText) ? nameText : `${nameText}:latest` };
  }
  if (transport !== 'oci' && transport !== 'oci-archive') throw new ClientError('ERR_CONFIG', `${spec}: not a file destination (oci:, oci-archive:, docker-archive:)`);
  let path = rest;
  let tag: string | undefined;
  const last = rest.lastIndexOf(':');
  if (last > 0 && !(await exists(rest)) && !rest.slice(last + 1).includes('/')) {
    path = rest.slice(0, last);
    tag = rest.slice(last + 1);
    if (!isTag(tag)) throw new ClientError('ERR_CONFIG', `${spec}: ${JSON.stringify(tag)} is not a valid tag`);
  }
  if (!path) throw new ClientError('ERR_CONFIG', `${spec}: needs a ${transport === 'oci' ? 'folder' : 'file'} name`);
  return { transport, path, tag };
}

/** Opens a writer for `spec`; `defaults` name the image when the spec does not (the source's tag or reference). */
export async function openWriter(spec: DestinationSpec, defaults: { tag?: string; name?: string } = {}): Promise<ImageWriter> {
  switch (spec.transport) {
    case 'oci':
      return OciLayoutWriter.dir(spec.path, spec.tag ?? defaults.tag);
    case 'oci-archive':
      return OciLayoutWriter.archive(spec.path, spec.tag ?? defaults.tag);
    case 'docker-archive':
      return DockerArchiveWriter.create(spec.path, spec.name ?? defaults.name);
  }
}
