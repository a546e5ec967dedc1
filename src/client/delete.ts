/**
 * Deletes that do what they say (docs/decisions/0055-delete-semantics.md):
 *
 * - {@link deleteTag} removes one tag with the distribution spec's DELETE
 *   by tag; the manifest, its other tags and any index stay. A registry
 *   that cannot delete a tag (distribution 2.8 answers 400 DIGEST_INVALID,
 *   others 405) is an `ERR_UNSUPPORTED` naming the by-digest command.
 * - {@link findManifestUsers} lists what a manifest delete would break: the
 *   tags on it and the tagged indexes that list it (every registry: tags
 *   list, HEAD each tag, GET the indexes).
 * - {@link deleteManifest} sends DELETE by digest. Pier itself refuses a
 *   manifest an index references (409 DENIED naming the index); with
 *   `force`, the delete is sent again with Pier's admin override
 *   `?override=index`. Other registries get the plain DELETE only.
 */
import { parseManifest, type Digest, type ImageReference, type RepositoryName } from '../oci/index.js';
import { ClientError } from './errors.js';
import { Limiter } from './limiter.js';
import { scope, type Registry } from './registry.js';
import { drain, readBody, type HttpResponse } from './transport.js';
import { Readable } from 'node:stream';

/** What uses a manifest: the tags pointing at it and the tagged indexes listing it. */
export interface ManifestUsers {
  tags: string[];
  indexes: { digest: string; tags: string[] }[];
}

/** The first error of an OCI error body, with the bytes kept so the response can still be described. */
async function errorOf(res: HttpResponse): Promise<{ code?: string; message?: string; detail?: unknown; res: HttpResponse }> {
  const body = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
  const copy: HttpResponse = { ...res, body: Readable.from([body]) };
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    return { ...parsed.errors?.[0], res: copy };
  } catch {
    return { res: copy };
  }
}

function sendDelete(registry: Registry, repository: RepositoryName, reference: string, override?: 'index'): Promise<HttpResponse> {
  const url = new URL(`/v2/${repository}/manifests/${reference}`, registry.base);
  if (override) url.searchParams.set('override', override);
  return registry.request({ method: 'DELETE', url, scopes: [scope(repository, 'delete')] });
}

const ok = (status: number) => status === 202 || status === 200 || status === 204;

/**
 * Removes the tag `ref.tag` only. Returns the digest the tag pointed at.
 * @throws ClientError ERR_NOT_FOUND when there is no such tag;
 *   ERR_UNSUPPORTED when the registry cannot delete tags (the message shows
 *   `pier delete REPO@DIGEST`, which deletes the manifest and every tag on it).
 */
export async function deleteTag(registry: Registry, ref: ImageReference): Promise<Digest> {
  const tag = ref.tag;
  if (tag === undefined) throw new ClientError('ERR_CONFIG', `${ref.toString()}: names no tag`);
  const head = await registry.headManifest(ref.repository, tag, ['pull', 'delete']);
  if (!head) throw new ClientError('ERR_NOT_FOUND', `${ref.toString()}: no such tag`, { status: 404 });
  const digest = head.digest ?? (await registry.getManifest(ref.repository, tag)).digest;
  const res = await sendDelete(registry, ref.repository, tag);
  if (ok(res.status)) {
    await drain(res);
    return digest;
  }
  const e = await errorOf(res);
  // distribution 2.8 parses the reference as a digest (400 DIGEST_INVALID); others answer 405.
  if ((res.status === 400 && e.code === 'DIGEST_INVALID') || res.status === 405) {
    throw new ClientError(
      'ERR_UNSUPPORTED',
      `${registry.registry} cannot delete a tag, only a manifest; to delete the manifest and every tag on it: pier delete ${ref.registry}/${ref.repository}@${digest.toString()}`,
      { status: res.status },
    );
  }
  throw await registry.fail(e.res, `deleting tag ${tag}`, ref.repository, ['delete']);
}

/**
 * The tags on `digest` and the tagged indexes that list it, read through
 * the distribution API (so it works on any registry). An untagged index is
 * not seen here; Pier refuses that delete itself.
 */
export async function findManifestUsers(registry: Registry, repository: RepositoryName, digest: Digest): Promise<ManifestUsers> {
  const tags = await registry.listTags(repository).catch((err: unknown) => {
    if (err instanceof ClientError && err.code === 'ERR_NOT_FOUND') return [] as string[];
    throw err;
  });
  const limiter = new Limiter(8);
  const heads = await Promise.all(tags.map((tag) => limiter.run(async () => ({ tag, head: await registry.headManifest(repository, tag) }))));
  const users: ManifestUsers = { tags: [], indexes: [] };
  const indexTags = new Map<string, string[]>();
  for (const { tag, head } of heads) {
    if (!head?.digest) continue;
    if (head.digest.equals(digest)) users.tags.push(tag);
    else if (/index|manifest\.list/.test(head.mediaType)) {
      const key = head.digest.toString();
      indexTags.set(key, [...(indexTags.get(key) ?? []), tag]);
    }
  }
  const indexes = await Promise.all(
    [...indexTags].map(([d, t]) =>
      limiter.run(async () => {
        const m = await registry.getManifest(repository, d);
        const parsed = parseManifest(m.bytes, m.mediaType);
        return parsed.kind === 'index' && parsed.manifests.some((c) => c.digest.equals(digest)) ? { digest: d, tags: t } : undefined;
      }),
    ),
  );
  users.indexes = indexes.filter((i) => i !== undefined);
  return users;
}

/**
 * Sends DELETE by digest. With `force`, a Pier refusal because an index
 * lists the manifest is answered with the admin override.
 * @throws ClientError ERR_IN_USE when Pier refuses (an index lists it) and
 *   `force` is not set; the message names the index.
 */
export async function deleteManifest(registry: Registry, repository: RepositoryName, digest: Digest, options: { force?: boolean } = {}): Promise<void> {
  let res = await sendDelete(registry, repository, digest.toString());
  if (res.status === 409) {
    const e = await errorOf(res);
    const indexes = (e.detail as { indexes?: unknown } | undefined)?.indexes;
    if (!Array.isArray(indexes)) throw await registry.fail(e.res, `deleting ${digest.toString()}`, repository, ['delete']);
    if (!options.force) {
      throw new ClientError('ERR_IN_USE', `${registry.registry}/${repository}@${digest.toString()} is listed by index ${indexes.join(', ')}; add --force to delete it anyway (the index breaks)`, { status: 409 });
    }
    res = await sendDelete(registry, repository, digest.toString(), 'index');
  }
  if (ok(res.status)) return drain(res);
  throw await registry.fail(res, `deleting ${digest.toString()}`, repository, ['delete']);
}
