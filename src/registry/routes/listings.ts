/** Tag listing, the catalog and the referrers API: the read-only listings. */
import { Digest } from '../../oci/digest.js';
import { RequestError } from '../request-errors.js';
import { MediaTypes } from '../../oci/media-types.js';
import type { Call } from '../context.js';
import { nextLink, parsePage } from '../http.js';

/** Page size when `n` is absent, and the largest page served. */
const DEFAULT_PAGE = 10_000;
const MAX_PAGE = 10_000;

function onlyGet(call: Call, what: string): void {
  if (call.req.method !== 'GET' && call.req.method !== 'HEAD') throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${call.req.method} is not supported on ${what}`);
}

async function sendJson(call: Call, body: unknown, contentType = 'application/json'): Promise<void> {
  const payload = Buffer.from(JSON.stringify(body));
  call.reply.code(200).header('content-type', contentType).header('content-length', payload.length);
  await call.reply.send(call.req.method === 'HEAD' ? undefined : payload);
}

export async function tagsRoute(call: Call, rawName: string): Promise<void> {
  onlyGet(call, 'tag lists');
  const { name } = await call.repository(rawName, ['pull']);
  const page = parsePage(call.query, DEFAULT_PAGE, MAX_PAGE);
  // One more than asked tells whether a next page exists.
  const tags = page.limit === 0 ? [] : await call.deps.service.listTags(name, { limit: page.limit + 1, after: page.after });
  if (tags === undefined || (page.limit === 0 && !(await call.deps.service.repositoryExists(name)))) {
    throw new RequestError('ERR_REPOSITORY_UNKNOWN', `repository ${name} not known to registry`, { detail: { name } });
  }
  if (tags.length > page.limit) {
    tags.length = page.limit;
    call.reply.header('link', nextLink(`/v2/${name}/tags/list`, page.limit, tags[tags.length - 1]!));
  }
  await sendJson(call, { name, tags });
}

export async function catalogRoute(call: Call): Promise<void> {
  onlyGet(call, 'the catalog');
  const principal = await call.deps.gate.require(call.identity(), { catalog: true });
  call.principal = principal;
  const page = parsePage(call.query, DEFAULT_PAGE, MAX_PAGE);
  // Only what the caller may pull, filtered by the database (decision 0117); one more than asked tells whether a next page exists.
  const names = await call.deps.gate.pullable(principal);
  const visible = page.limit === 0 ? [] : await call.deps.service.listRepositories({ limit: page.limit + 1, after: page.after }, names);
  const more = visible.length > page.limit;
  if (more) visible.length = page.limit;
  if (more) call.reply.header('link', nextLink('/v2/_catalog', page.limit, visible[visible.length - 1]!));
  await sendJson(call, { repositories: visible });
}

export async function referrersRoute(call: Call, rawName: string, rawDigest: string): Promise<void> {
  onlyGet(call, 'referrers');
  const { name } = await call.repository(rawName, ['pull']);
  const subject = Digest.parse(rawDigest);
  const artifactType = call.query.get('artifactType') ?? undefined;
  const referrers = await call.deps.service.listReferrers(name, subject, artifactType === '' ? undefined : artifactType);
  if (artifactType) call.reply.header('oci-filters-applied', 'artifactType');
  await sendJson(
    call,
    {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: referrers.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest.toString(),
        size: r.size,
        ...(r.artifactType ? { artifactType: r.artifactType } : {}),
        ...(r.annotations ? { annotations: r.annotations } : {}),
      })),
    },
    MediaTypes.ociIndex,
  );
}
