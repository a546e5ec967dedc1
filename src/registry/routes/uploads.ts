/**
 * Blob uploads: POST /v2/<name>/blobs/uploads/ (session, monolithic with
 * `?digest=`, or mount with `?mount=&from=`), and PATCH/PUT/GET/DELETE on
 * /v2/<name>/blobs/uploads/<id>.
 *
 * Session state lives in the blob store (bytes received) and the metadata
 * store (which repository it belongs to), so a client can ask how far it got
 * and resume after a broken connection or a registry restart.
 */
import { Digest } from '../../oci/digest.js';
import { RequestError } from '../request-errors.js';
import type { RepositoryName } from '../../oci/reference.js';
import type { Call } from '../context.js';
import { drain, parseContentRange } from '../http.js';

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

async function sendUploadState(call: Call, name: string, id: string, size: number, status: number): Promise<void> {
  call.reply
    .code(status)
    .header('location', uploadLocation(name, id))
    .header('range', rangeHeader(size))
    .header('docker-upload-uuid', id)
    .header('content-length', 0);
  if (call.deps.config.uploads.maxChunkSize > 0) call.reply.header('oci-chunk-max-length', call.deps.config.uploads.maxChunkSize);
  await call.reply.send();
}

async function sendBlobCreated(call: Call, name: string, digest: Digest): Promise<void> {
  call.reply
    .code(201)
    .header('location', `/v2/${name}/blobs/${digest.toString()}`)
    .header('docker-content-digest', digest.toString())
    .header('content-length', 0);
  await call.reply.send();
}

export async function uploadsRoute(call: Call, rawName: string): Promise<void> {
  if (call.req.method !== 'POST') throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${call.req.method} is not supported on the uploads endpoint`);
  const { name, principal } = await call.repository(rawName, ['pull', 'push']);
  const mount = call.query.get('mount');
  if (mount !== null) {
    const digest = Digest.parse(mount);
    if (await call.deps.service.mountBlob(name, digest, principal, call.query.get('from'), call.req.ip)) {
      await drain(call.req.raw);
      return sendBlobCreated(call, name, digest);
    }
  }
  const digestParam = call.query.get('digest');
  if (digestParam !== null && mount === null) {
    const digest = Digest.parse(digestParam);
    const declared = call.header('content-length');
    const info = await call.deps.service.putBlob(name, digest, call.req.raw, declared === undefined ? undefined : Number(declared));
    call.bytesIn += info.size;
    return sendBlobCreated(call, name, digest);
  }
  await drain(call.req.raw);
  const id = await call.deps.service.startUpload(name);
  await sendUploadState(call, name, id, 0, 202);
}

export async function uploadRoute(call: Call, rawName: string, id: string): Promise<void> {
  const method = call.req.method;
  const { name } = await call.repository(rawName, ['pull', 'push']);
  const owner = await call.deps.service.uploadRepository(id);
  if (owner !== name) throw new RequestError('ERR_UPLOAD_UNKNOWN', `upload ${JSON.stringify(id.slice(0, 80))} unknown to repository ${name}`);
  switch (method) {
    case 'GET': {
      return sendUploadState(call, name, id, await call.deps.service.uploadSize(id), 204);
    }
    case 'PATCH':
      return patchUpload(call, name, id);
    case 'PUT':
      return finishUpload(call, name, id);
    case 'DELETE':
      await call.deps.service.cancelUpload(id);
      call.reply.code(204);
      await call.reply.send();
      return;
    default:
      throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${method} is not supported on uploads`);
  }
}

/**
 * Appends the request body. With Content-Range, its start must be the
 * current size and its length the Content-Length (416 otherwise, with the
 * current Range so the client can resume).
 */
async function appendBody(call: Call, name: RepositoryName, id: string): Promise<number> {
  const { service, config } = call.deps;
  const size = await service.uploadSize(id);
  const range = parseContentRange(call.header('content-range'));
  const declared = call.header('content-length');
  const outOfOrder = (message: string) =>
    new RequestError('ERR_RANGE_INVALID', message, {
      headers: { location: uploadLocation(name, id), range: rangeHeader(size), 'docker-upload-uuid': id },
    });
  if (range) {
    if (range.start !== size) throw outOfOrder(`chunk starts at ${range.start}, but the upload has ${size} bytes`);
    if (declared !== undefined && Number(declared) !== range.end - range.start + 1) {
      throw outOfOrder(`Content-Range ${range.start}-${range.end} does not match Content-Length ${declared}`);
    }
  }
  const max = config.uploads.maxChunkSize;
  if (max > 0 && declared !== undefined && Number(declared) > max) {
    throw new RequestError('ERR_BODY_TOO_LARGE', `chunk of ${declared} bytes exceeds the maximum of ${max}`);
  }
  // The service reserves each chunk against the namespace quota before it writes it.
  const sized = range ? range.end - range.start + 1 : max > 0 ? max : undefined;
  const total = await service.appendUpload(name, id, size, call.req.raw, { declared: declared === undefined ? undefined : Number(declared) || 0, limit: sized });
  call.bytesIn += total - size;
  return total;
}

async function patchUpload(call: Call, name: RepositoryName, id: string): Promise<void> {
  const size = await appendBody(call, name, id);
  await sendUploadState(call, name, id, size, 202);
}

async function finishUpload(call: Call, name: RepositoryName, id: string): Promise<void> {
  const digestParam = call.query.get('digest');
  if (digestParam === null) throw new RequestError('ERR_DIGEST_PARAM', 'the digest query parameter is required to finish an upload');
  const digest = Digest.parse(digestParam);
  const hasBody = call.header('content-length') !== undefined ? Number(call.header('content-length')) > 0 : call.header('transfer-encoding') !== undefined;
  if (hasBody) await appendBody(call, name, id);
  else await drain(call.req.raw);
  await call.deps.service.commitUpload(name, id, digest);
  await sendBlobCreated(call, name, digest);
}
