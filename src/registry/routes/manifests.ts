/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> */
import { RequestError } from '../request-errors.js';
import { baseMediaType } from '../../oci/media-types.js';
import { parseManifestReference, parseTag, type RepositoryName } from '../../oci/reference.js';
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
      throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${call.req.method} is not supported on manifests`);
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
    if (forPush) throw new RequestError('ERR_TAG_INVALID', `invalid tag ${JSON.stringify(raw.slice(0, 200))}`, { cause: err });
    throw new RequestError('ERR_MANIFEST_UNKNOWN', `manifest ${JSON.stringify(raw.slice(0, 200))} unknown: not a valid tag`, { cause: err });
  }
}

async function unknownManifest(call: Call, name: RepositoryName, reference: string): Promise<RequestError> {
  if (!(await call.deps.service.repositoryExists(name))) {
    return new RequestError('ERR_REPOSITORY_UNKNOWN', `repository ${name} not known to registry`, { detail: { name } });
  }
  return new RequestError('ERR_MANIFEST_UNKNOWN', `manifest ${reference} unknown to repository ${name}`, { detail: { reference } });
}

async function getManifest(call: Call, rawName: string, rawReference: string, head: boolean): Promise<void> {
  const { name, principal } = await call.repository(rawName, ['pull']);
  const reference = referenceOrInvalid(rawReference);
  const record = await call.deps.service.getManifest(name, reference, call.actor(principal));
  if (!record) throw await unknownManifest(call, name, rawReference);
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
  const limit = call.deps.config.manifests.maxSize;
  const body = await readBody(call.req.raw, limit, () => new RequestError('ERR_MANIFEST_TOO_LARGE', `manifest exceeds the limit of ${limit} bytes`));
  call.bytesIn += body.length;
  const contentType = call.header('content-type');
  const tags = call.query.getAll('tag').map(parseTag);
  const { digest, subject } = await call.deps.service.putManifest(name, reference, body, contentType === undefined ? undefined : baseMediaType(contentType), tags, call.actor(principal));
  call.reply
    .code(201)
    .header('location', `/v2/${name}/manifests/${digest.toString()}`)
    .header('docker-content-digest', digest.toString())
    .header('content-length', 0);
  if (subject) call.reply.header('oci-subject', subject.toString());
  if (tags.length > 0 && reference.kind === 'digest') call.reply.header('oci-tag', tags.join(', '));
  await call.reply.send();
}

/**
 * DELETE by tag removes that tag only (the manifest stays, as do its other
 * tags and its history). DELETE by digest removes the manifest and every
 * tag on it, but not a manifest an index in the repository lists: that is
 * refused (409 DENIED naming the index) unless `manifests.deleteIndexChildren`
 * allows it or an admin adds `?override=index`.
 */
async function deleteManifest(call: Call, rawName: string, rawReference: string): Promise<void> {
  const { name, principal } = await call.repository(rawName, ['delete']);
  if (!call.deps.config.deletes) throw new RequestError('ERR_DELETES_DISABLED', 'deletes are disabled on this registry');
  const reference = referenceOrInvalid(rawReference);
  const overrideIndex = call.query.getAll('override').includes('index');
  const deleted = await call.deps.service.deleteManifest(name, reference, call.actor(principal), overrideIndex ? { overrideIndex: principal } : {});
  if (!deleted) throw await unknownManifest(call, name, rawReference);
  call.reply.code(202).header('content-length', 0);
  await call.reply.send();
}
