/** GET/HEAD/DELETE /v2/<name>/blobs/<digest> */
import { Digest } from '../../oci/digest.js';
import { RequestError } from '../request-errors.js';
import type { Call } from '../context.js';
import { parseRange } from '../http.js';
import { sendFileRange } from '../send-file.js';
import { responseSink, sendStream } from '../send-stream.js';

export async function blobRoute(call: Call, rawName: string, rawDigest: string): Promise<void> {
  const method = call.req.method;
  if (method === 'GET' || method === 'HEAD') return getBlob(call, rawName, rawDigest, method === 'HEAD');
  if (method === 'DELETE') return deleteBlob(call, rawName, rawDigest);
  throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${method} is not supported on blobs`);
}

async function getBlob(call: Call, rawName: string, rawDigest: string, head: boolean): Promise<void> {
  const { name } = await call.repository(rawName, ['pull']);
  const digest = Digest.parse(rawDigest);
  const linked = await call.deps.service.linkedBlob(name, digest);
  if (!linked) throw new RequestError('ERR_BLOB_UNKNOWN', `blob ${digest.toString()} unknown to repository ${name}`, { detail: { digest: digest.toString() } });
  const range = parseRange(call.header('range'), linked.size);
  const reply = call.reply;
  reply.header('content-type', 'application/octet-stream');
  reply.header('docker-content-digest', digest.toString());
  reply.header('etag', `"${digest.toString()}"`);
  reply.header('accept-ranges', 'bytes');
  reply.header('cache-control', 'max-age=31536000');
  if (range) {
    reply.code(206);
    reply.header('content-range', `bytes ${range.start}-${range.end}/${linked.size}`);
    reply.header('content-length', range.end - range.start + 1);
  } else {
    reply.code(200);
    reply.header('content-length', linked.size);
  }
  if (head) {
    await reply.send();
    return;
  }
  // A store with the BlobLocator role may answer with a location instead of the bytes.
  const location = await call.deps.service.locateBlob(digest, range);
  if (location?.kind === 'redirect') {
    reply.code(307).header('location', location.url).header('content-length', 0).removeHeader('content-range');
    await reply.send();
    return;
  }
  if (location?.kind === 'internal') {
    // The proxy serves the file (and the client's Range) itself: no body here.
    reply.code(200).header('x-accel-redirect', location.path).header('content-length', 0).removeHeader('content-range');
    await reply.send();
    return;
  }
  const start = range?.start ?? 0;
  const end = range ? range.end : linked.size - 1;
  const file = await call.deps.service.openBlobFile(digest);
  if (!file) {
    // Opened before the reply is taken over, so a store failure here is still an OCI error.
    const body = await call.deps.service.openBlobBody(digest, linked.size, range);
    if (body) {
      writeHead(reply);
      // A store failure midway cuts the connection: the client sees a short body, never wrong bytes.
      await body.sendTo(responseSink(reply.raw)).then(
        () => reply.raw.end(),
        (err: unknown) => {
          call.req.log.warn({ err, digest: digest.toString() }, 'blob GET cut: the store failed midway');
          reply.raw.destroy();
        },
      );
      return;
    }
    // Any other store's stream (S3 over https: the SDK's), still past Fastify's stream piping.
    const stream = await call.deps.service.openBlob(digest, range);
    writeHead(reply);
    await sendStream(reply.raw, stream, end - start + 1);
    return;
  }
  // A local file: past Fastify's stream piping, straight to the connection.
  try {
    writeHead(reply);
    await sendFileRange(reply.raw, file, start, end);
  } finally {
    await file.close().catch(() => undefined);
  }
}

/**
 * Takes the response over from Fastify and writes its status and headers;
 * the body is the caller's. The onResponse hook (metrics, access log)
 * still runs when the response finishes.
 */
function writeHead(reply: Call['reply']): void {
  reply.hijack();
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) reply.raw.setHeader(k, v);
  reply.raw.writeHead(reply.statusCode);
}

async function deleteBlob(call: Call, rawName: string, rawDigest: string): Promise<void> {
  const { name, principal } = await call.repository(rawName, ['delete']);
  if (!call.deps.config.deletes) throw new RequestError('ERR_DELETES_DISABLED', 'deletes are disabled on this registry');
  const digest = Digest.parse(rawDigest);
  if (!(await call.deps.service.deleteBlob(name, digest, call.actor(principal)))) {
    throw new RequestError('ERR_BLOB_UNKNOWN', `blob ${digest.toString()} unknown to repository ${name}`, { detail: { digest: digest.toString() } });
  }
  call.reply.code(202).header('content-length', 0);
  await call.reply.send();
}
