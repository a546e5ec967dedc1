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
import { OciError } from '../../oci/errors.js';
import { isRepositoryName, type RepositoryName } from '../../oci/reference.js';
import type { Principal } from '../access.js';
import type { Call } from '../context.js';
import { drain, parseContentRange } from '../http.js';

/** How many candidate source repositories a mount without `from` looks at. */
const MOUNT_CANDIDATES = 20;

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
  if (call.req.method !== 'POST') throw new OciError('UNSUPPORTED', `${call.req.method} is not supported on the uploads endpoint`);
  const { name, principal } = await call.repository(rawName, ['pull', 'push']);
  // Quota: refuse before any byte is stored (a monolithic upload declares its size here).
  await call.deps.lifecycle.checkUpload(name, Number(call.header('content-length') ?? 0) || 0);
  const mount = call.query.get('mount');
  if (mount !== null) {
    const digest = Digest.parse(mount);
    if (await tryMount(call, name, principal, digest, call.query.get('from'))) {
      await drain(call.req.raw);
      return sendBlobCreated(call, name, digest);
    }
  }
  const digestParam = call.query.get('digest');
  if (digestParam !== null && mount === null) {
    const digest = Digest.parse(digestParam);
    return monolithic(call, name, digest);
  }
  await drain(call.req.raw);
  const id = await call.deps.blobs.startUpload();
  await call.deps.meta.createUpload(id, name);
  await sendUploadState(call, name, id, 0, 202);
}

async function tryMount(call: Call, name: RepositoryName, principal: Principal, digest: Digest, from: string | null): Promise<boolean> {
  // Hold GC off the digest from the source check until the new link exists.
  const release = await call.deps.lifecycle.claimBlob(digest);
  try {
    return await mountFrom(call, name, principal, digest, from);
  } finally {
    release();
  }
}

async function mountFrom(call: Call, name: RepositoryName, principal: Principal, digest: Digest, from: string | null): Promise<boolean> {
  const { meta, gate, blobs, config } = call.deps;
  let candidates: string[];
  if (from !== null && from !== '') {
    if (!isRepositoryName(from)) return false;
    candidates = [from];
  } else if (config.uploads.automaticMount) {
    candidates = await meta.repositoriesWithBlob(digest, MOUNT_CANDIDATES);
  } else {
    return false;
  }
  for (const source of candidates) {
    if (source === name) {
      if (await meta.linkedBlob(name, digest)) return true;
      continue;
    }
    if (!(await gate.canPull(principal, source))) continue;
    const linked = await meta.linkedBlob(source as RepositoryName, digest);
    if (!linked) continue;
    // The bytes must really be there: never link a repository to nothing.
    const stored = await blobs.stat(digest);
    if (!stored) continue;
    await meta.linkBlob(name, digest, stored.size);
    return true;
  }
  return false;
}

async function monolithic(call: Call, name: RepositoryName, digest: Digest): Promise<void> {
  const { blobs, meta } = call.deps;
  const id = await blobs.startUpload();
  try {
    const { size } = await blobs.append(id, 0, call.req.raw);
    call.bytesIn += size;
    const declared = call.header('content-length');
    const release = await call.deps.lifecycle.claimBlob(digest);
    try {
      const info = await blobs.commit(id, digest, declared === undefined ? undefined : Number(declared));
      await meta.linkBlob(name, digest, info.size);
    } finally {
      release();
    }
    call.deps.metrics.blobsCommitted.inc();
  } catch (err) {
    await blobs.cancelUpload(id);
    throw err;
  }
  await sendBlobCreated(call, name, digest);
}

export async function uploadRoute(call: Call, rawName: string, id: string): Promise<void> {
  const method = call.req.method;
  const { name } = await call.repository(rawName, ['pull', 'push']);
  const owner = await call.deps.meta.uploadRepository(id);
  if (owner !== name) throw new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${JSON.stringify(id.slice(0, 80))} unknown to repository ${name}`);
  switch (method) {
    case 'GET': {
      const { size } = await call.deps.blobs.uploadInfo(id);
      return sendUploadState(call, name, id, size, 204);
    }
    case 'PATCH':
      return patchUpload(call, name, id);
    case 'PUT':
      return finishUpload(call, name, id);
    case 'DELETE':
      await call.deps.blobs.cancelUpload(id);
      await call.deps.meta.deleteUpload(id);
      call.reply.code(204);
      await call.reply.send();
      return;
    default:
      throw new OciError('UNSUPPORTED', `${method} is not supported on uploads`);
  }
}

/**
 * Appends the request body. With Content-Range, its start must be the
 * current size and its length the Content-Length (416 otherwise, with the
 * current Range so the client can resume).
 */
async function appendBody(call: Call, name: string, id: string): Promise<number> {
  const { blobs, config } = call.deps;
  const { size } = await blobs.uploadInfo(id);
  const range = parseContentRange(call.header('content-range'));
  const declared = call.header('content-length');
  const outOfOrder = (message: string) =>
    new OciError('RANGE_INVALID', message, {
      status: 416,
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
    throw new OciError('SIZE_INVALID', `chunk of ${declared} bytes exceeds the maximum of ${max}`, { status: 413 });
  }
  // Quota: refuse a declared chunk that would pass it; cap one of unknown length at what is left.
  const allowed = await call.deps.lifecycle.checkUpload(name as RepositoryName, size + (Number(declared ?? 0) || 0));
  const sized = range ? range.end - range.start + 1 : max > 0 ? max : undefined;
  const capped = allowed !== undefined && declared === undefined && !range && (sized === undefined || allowed < sized);
  const limit = capped ? allowed : sized;
  let info;
  try {
    info = await blobs.append(id, size, call.req.raw, limit === undefined ? {} : { maxBytes: limit });
  } catch (err) {
    if (capped && (err as { code?: string }).code === 'ERR_SIZE_MISMATCH') {
      throw new OciError('DENIED', `quota exceeded: this upload passed the quota of its namespace after ${limit} more bytes`, { cause: err });
    }
    throw err;
  }
  call.bytesIn += info.size - size;
  return info.size;
}

async function patchUpload(call: Call, name: string, id: string): Promise<void> {
  const size = await appendBody(call, name, id);
  await sendUploadState(call, name, id, size, 202);
}

async function finishUpload(call: Call, name: RepositoryName, id: string): Promise<void> {
  const digestParam = call.query.get('digest');
  if (digestParam === null) throw new OciError('DIGEST_INVALID', 'the digest query parameter is required to finish an upload');
  const digest = Digest.parse(digestParam);
  const { blobs, meta } = call.deps;
  const hasBody = call.header('content-length') !== undefined ? Number(call.header('content-length')) > 0 : call.header('transfer-encoding') !== undefined;
  if (hasBody) await appendBody(call, name, id);
  else await drain(call.req.raw);
  let info;
  // GC must not delete the digest between the commit and the link.
  const release = await call.deps.lifecycle.claimBlob(digest);
  try {
    try {
      info = await blobs.commit(id, digest);
    } catch (err) {
      // A failed verification discards the upload (the store deleted its bytes).
      if ((err as { code?: string }).code === 'ERR_DIGEST_MISMATCH' || (err as { code?: string }).code === 'ERR_SIZE_MISMATCH') {
        await meta.deleteUpload(id);
      }
      throw err;
    }
    await meta.linkBlob(name, digest, info.size);
  } finally {
    release();
  }
  await meta.deleteUpload(id);
  call.deps.metrics.blobsCommitted.inc();
  await sendBlobCreated(call, name, digest);
}
