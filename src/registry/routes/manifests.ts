/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> */
import { Digest } from '../../oci/digest.js';
import { OciError } from '../../oci/errors.js';
import { parseManifest, referencedDescriptors } from '../../oci/manifest.js';
import { baseMediaType } from '../../oci/media-types.js';
import { parseManifestReference, parseTag, type RepositoryName, type Tag } from '../../oci/reference.js';
import type { ManifestRecord } from '../../store/meta/meta-store.js';
import type { Call } from '../context.js';
import { readBody } from '../http.js';

export async function manifestRoute(call: Call, rawName: string, rawReference: string): Promise<void> {
  switch (call.req.method) {
    case 'GET':
      return getManifest(call, rawName, rawReference, false);
    case 'HEAD':
      return getManifest(call, rawName, rawReference, true);
    case 'PUT':
      return putManifest(call, rawName, rawReference);
    case 'DELETE':
      return deleteManifest(call, rawName, rawReference);
    default:
      throw new OciError('UNSUPPORTED', `${call.req.method} is not supported on manifests`);
  }
}

/**
 * Parses the reference. A malformed tag cannot name anything stored, so a
 * read or delete of one is MANIFEST_UNKNOWN (404); a push to one is
 * MANIFEST_INVALID. A malformed digest is DIGEST_INVALID either way.
 */
function referenceOrInvalid(raw: string, forPush = false) {
  try {
    return parseManifestReference(raw);
  } catch (err) {
    if (raw.includes(':')) throw err;
    if (forPush) throw new OciError('MANIFEST_INVALID', `invalid tag ${JSON.stringify(raw.slice(0, 200))}`, { cause: err });
    throw new OciError('MANIFEST_UNKNOWN', `manifest ${JSON.stringify(raw.slice(0, 200))} unknown: not a valid tag`, { cause: err });
  }
}

async function unknownManifest(call: Call, name: RepositoryName, reference: string): Promise<OciError> {
  if (!(await call.deps.meta.repositoryExists(name))) {
    return new OciError('NAME_UNKNOWN', `repository ${name} not known to registry`, { detail: { name } });
  }
  return new OciError('MANIFEST_UNKNOWN', `manifest ${reference} unknown to repository ${name}`, { detail: { reference } });
}

async function getManifest(call: Call, rawName: string, rawReference: string, head: boolean): Promise<void> {
  const { name } = await call.repository(rawName, ['pull']);
  const reference = referenceOrInvalid(rawReference);
  const { meta } = call.deps;
  const record: ManifestRecord | undefined =
    reference.kind === 'tag' ? await meta.getTaggedManifest(name, reference.tag) : await meta.getManifest(name, reference.digest);
  if (!record) throw await unknownManifest(call, name, rawReference);
  if (reference.kind === 'tag') call.deps.lifecycle.pulled(name, reference.tag);
  const digest = record.digest.toString();
  call.reply
    .code(200)
    .header('content-type', record.mediaType)
    .header('docker-content-digest', digest)
    .header('etag', `"${digest}"`)
    .header('content-length', record.size);
  if (head) {
    await call.reply.send();
    return;
  }
  await call.reply.send(record.content);
}

async function putManifest(call: Call, rawName: string, rawReference: string): Promise<void> {
  const { name, principal } = await call.repository(rawName, ['pull', 'push']);
  const reference = referenceOrInvalid(rawReference, true);
  const { config, meta } = call.deps;
  const limit = config.manifests.maxSize;
  const body = await readBody(call.req.raw, limit, () => new OciError('MANIFEST_TOO_LARGE', `manifest exceeds the limit of ${limit} bytes`, { status: 413 }));
  call.bytesIn += body.length;
  const contentType = call.header('content-type');
  const parsed = parseManifest(body, contentType === undefined ? undefined : baseMediaType(contentType));

  let digest: Digest;
  const tags: Tag[] = [];
  if (reference.kind === 'digest') {
    digest = Digest.of(body, reference.digest.algorithm);
    if (!digest.equals(reference.digest)) {
      throw new OciError('DIGEST_INVALID', `manifest content has digest ${digest.toString()}, not ${reference.digest.toString()}`);
    }
  } else {
    digest = Digest.of(body);
    tags.push(reference.tag);
  }
  for (const t of call.query.getAll('tag')) tags.push(parseTag(t));

  const refs = referencedDescriptors(parsed);
  // Immutable tags and quotas; `done` wakes the webhook queue after the commit.
  const done = await call.deps.lifecycle.beforeManifestPut(name, digest, tags, body.length);
  try {
    await meta.putManifest(
      name,
      {
        digest,
        mediaType: parsed.mediaType,
        content: body,
        artifactType: parsed.artifactType,
        subject: parsed.subject?.digest,
        annotations: parsed.annotations,
        blobs: refs.blobs.map((d) => d.digest),
        manifests: refs.manifests.map((d) => d.digest),
      },
      tags,
      principal.name,
    );
  } finally {
    done();
  }
  call.deps.metrics.manifestsPushed.inc();
  call.reply
    .code(201)
    .header('location', `/v2/${name}/manifests/${digest.toString()}`)
    .header('docker-content-digest', digest.toString())
    .header('content-length', 0);
  if (parsed.subject) call.reply.header('oci-subject', parsed.subject.digest.toString());
  if (tags.length > 0 && reference.kind === 'digest') call.reply.header('oci-tag', tags.join(', '));
  await call.reply.send();
}

async function deleteManifest(call: Call, rawName: string, rawReference: string): Promise<void> {
  const { name, principal } = await call.repository(rawName, ['delete']);
  if (!call.deps.config.deletes) throw new OciError('UNSUPPORTED', 'deletes are disabled on this registry');
  const reference = referenceOrInvalid(rawReference);
  const { meta, lifecycle } = call.deps;
  await lifecycle.checkDelete(name, reference.kind === 'tag' ? { tag: reference.tag } : { digest: reference.digest });
  const deleted =
    reference.kind === 'tag' ? await meta.deleteTag(name, reference.tag, principal.name) : await meta.deleteManifest(name, reference.digest, principal.name);
  if (!deleted) throw await unknownManifest(call, name, rawReference);
  lifecycle.committed();
  call.reply.code(202).header('content-length', 0);
  await call.reply.send();
}
