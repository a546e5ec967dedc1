/**
 * The repository service: the one place each rule of a repository is
 * written, between the registry's routes (which parse HTTP and map errors)
 * and the stores. The routes, the /pier/v1 API, retention and later the
 * UI, scanner and pull-through cache call it:
 *
 * - a blob becomes visible by claim → commit → link ({@link commitUpload},
 *   {@link putBlob}, {@link mountBlob}): the claim keeps GC off the digest
 *   until the link exists;
 * - a manifest is stored by {@link putManifest}: digest check, lifecycle
 *   rules (immutable tags, quota), one metadata transaction;
 * - a tag moves by {@link moveTag} (MetaStore.moveTag: tag and history row
 *   in one transaction), is deleted by {@link deleteTag} and rolled back by
 *   {@link rollback}.
 *
 * After each change commits it emits a {@link DomainEvent}. Errors are
 * domain errors (store, lifecycle, parse); src/registry/http-errors.ts
 * maps them.
 */
import { randomUUID } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { AccessGate, Principal } from '../auth/access.js';
import { LifecycleError } from '../lifecycle/errors.js';
import type { RollbackResult, RollbackTarget } from '../lifecycle/history.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { NamePatterns } from '../shared/name-patterns.js';
import { Digest, DigestError } from '../oci/digest.js';
import { parseManifest, referencedDescriptors } from '../oci/manifest.js';
import { isRepositoryName, type ManifestReference, type RepositoryName, type Tag } from '../oci/reference.js';
import { BlobStoreError, canLocate, canOpenBody, canOpenFile, type BlobBody, type BlobInfo, type BlobLocation, type BlobStore, type ByteRange } from '../store/blob/blob-store.js';
import { MetaStoreError, type ManifestRecord, type MetaStore, type Page, type Referrer, type TagChange, type TagMove, type TagWriter } from '../store/meta/meta-store.js';
import type { Actor, DomainEvents } from './events.js';
import { isServedImage, ServePolicyError, type ServePolicy } from './serve-policy.js';

/** How many candidate source repositories a mount without `from` looks at. */
const MOUNT_CANDIDATES = 20;

export interface RepositoryServiceOptions {
  /** Mount a blob already in the registry when a mount names no source (`uploads.automaticMount`). */
  automaticMount: boolean;
  /** Delete a manifest an index in the repository lists, breaking the index (`manifests.deleteIndexChildren`). */
  deleteIndexChildren: boolean;
}

export interface RepositoryServiceDeps {
  meta: MetaStore;
  blobs: BlobStore;
  lifecycle: Lifecycle;
  /** Pull rights on a mount's source repository (the live policy and a bearer token's grant). */
  access: Pick<AccessGate, 'canMountFrom'>;
  events: DomainEvents;
  options: RepositoryServiceOptions;
  /** Asked, in order, before an image manifest is served by tag (./serve-policy.ts). */
  servePolicies?: readonly ServePolicy[];
}

export interface PushedManifest {
  digest: Digest;
  subject: Digest | undefined;
  tags: Tag[];
}

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

export class RepositoryService implements TagWriter {
  constructor(private readonly deps: RepositoryServiceDeps) {}

  // ---- reads

  repositoryExists(repository: RepositoryName): Promise<boolean> {
    return this.deps.meta.repositoryExists(repository);
  }

  /**
   * The manifest a tag or digest names; a read by tag counts as a pull
   * (retention). An image read by tag passes the serve policies first: a
   * refusal throws {@link ServePolicyError} and emits `serve-refused`; a
   * warning emits `serve-warned` and serves. `actor`: who asked, for the record.
   */
  async getManifest(repository: RepositoryName, reference: ManifestReference, actor?: Actor): Promise<ManifestRecord | undefined> {
    const { meta, lifecycle } = this.deps;
    const record = reference.kind === 'tag' ? await meta.getTaggedManifest(repository, reference.tag) : await meta.getManifest(repository, reference.digest);
    if (record && reference.kind === 'tag') {
      if (isServedImage(reference.tag, record)) {
        for (const policy of this.deps.servePolicies ?? []) {
          const verdict = await policy.check({ repository, tag: reference.tag, manifest: record });
          if (verdict.outcome === 'allow') continue;
          const event = { repository, tag: reference.tag, digest: record.digest.toString(), policy: verdict.policy, reason: verdict.reason, message: verdict.message, actor };
          if (verdict.outcome === 'deny') {
            this.deps.events.emit({ type: 'serve-refused', ...event });
            throw new ServePolicyError(verdict.policy, verdict.reason, verdict.message);
          }
          this.deps.events.emit({ type: 'serve-warned', ...event });
        }
      }
      lifecycle.pulled(repository, reference.tag);
    }
    return record;
  }

  /** The digest a tag points at, read without serve policies and not counted as a pull (reports about an image). */
  async resolveTag(repository: RepositoryName, tag: Tag): Promise<Digest | undefined> {
    return (await this.deps.meta.getTaggedManifest(repository, tag))?.digest;
  }

  /** Repositories that hold at least one manifest, in lexical order (the catalog). */
  listRepositories(page: Page, names?: NamePatterns): Promise<string[]> {
    return this.deps.meta.listRepositories(page, names);
  }

  /** Tags in lexical order, or undefined if the repository is unknown. */
  listTags(repository: RepositoryName, page: Page): Promise<string[] | undefined> {
    return this.deps.meta.listTags(repository, page);
  }

  listReferrers(repository: RepositoryName, subject: Digest, artifactType?: string): Promise<Referrer[]> {
    return this.deps.meta.listReferrers(repository, subject, artifactType);
  }

  /** The blob's size if the repository links it. */
  /** Tags in `repository` pointing at `digest`, in name order. */
  tagsPointingAt(repository: RepositoryName, digest: Digest): Promise<string[]> {
    return this.deps.meta.tagsPointingAt(repository, digest);
  }

  linkedBlob(repository: RepositoryName, digest: Digest): Promise<{ size: number } | undefined> {
    return this.deps.meta.linkedBlob(repository, digest);
  }

  openBlob(digest: Digest, range?: ByteRange): Promise<Readable> {
    return this.deps.blobs.open(digest, range);
  }

  /**
   * An open handle on the blob's local file, if the store keeps blobs as
   * files (the BlobFileOpener role); undefined: use {@link openBlob}. The caller closes it.
   */
  async openBlobFile(digest: Digest): Promise<FileHandle | undefined> {
    const { blobs } = this.deps;
    return canOpenFile(blobs) ? blobs.openFile(digest) : undefined;
  }

  /**
   * The blob's body for the store's own read loop, if the store has one
   * (the BlobBodyOpener role, S3 over `http:`); undefined: use {@link openBlob}.
   * ERR_STORAGE_FAILED if the store holds another number of bytes than
   * `size` (the blob's recorded size) says.
   */
  async openBlobBody(digest: Digest, size: number, range?: ByteRange): Promise<BlobBody | undefined> {
    const { blobs } = this.deps;
    const body = canOpenBody(blobs) ? await blobs.openBody(digest, range) : undefined;
    const expected = range ? range.end - range.start + 1 : size;
    if (body && body.length !== expected) {
      body.close();
      throw new BlobStoreError('ERR_STORAGE_FAILED', `storage failed: the store sent ${body.length} bytes for ${digest.toString()}, not ${expected}`);
    }
    return body;
  }

  /** Where the blob can be read without streaming it through the registry, if the store can say (the BlobLocator role). */
  async locateBlob(digest: Digest, range?: ByteRange): Promise<BlobLocation | undefined> {
    const { blobs } = this.deps;
    return canLocate(blobs) ? blobs.locate(digest, range) : undefined;
  }

  // ---- uploads and blobs

  /** Starts a resumable upload session belonging to `repository`. */
  async startUpload(repository: RepositoryName): Promise<string> {
    const id = await this.deps.blobs.startUpload();
    try {
      await this.deps.meta.createUpload(id, repository);
    } catch (err) {
      // No session (the database may be full): leave no file behind.
      await this.deps.blobs.cancelUpload(id);
      throw err;
    }
    return id;
  }

  /** The repository an upload session belongs to (undefined: none). */
  uploadRepository(id: string): Promise<string | undefined> {
    return this.deps.meta.uploadRepository(id);
  }

  async uploadSize(id: string): Promise<number> {
    return (await this.deps.blobs.uploadInfo(id)).size;
  }

  /**
   * Appends `data` at `offset` (the upload's size) and returns the new
   * size. `declared` is the chunk's Content-Length, `limit` the most it
   * may hold. Under a namespace quota every byte is reserved (under the
   * upload's id) before it is written, a chunk of unknown length too: the
   * chunk that would pass the quota fails with ERR_QUOTA_EXCEEDED before
   * it reaches the store, and the upload keeps what it had.
   */
  async appendUpload(repository: RepositoryName, id: string, offset: number, data: Readable, chunk: { declared: number | undefined; limit: number | undefined }): Promise<number> {
    const body = this.deps.lifecycle.meterUpload(repository, id, data, offset, chunk.declared);
    return (
      await this.deps.blobs.append(id, offset, body, {
        ...(chunk.limit === undefined ? {} : { maxBytes: chunk.limit }),
        ...(chunk.declared === undefined ? {} : { expectedBytes: chunk.declared }),
      })
    ).size;
  }

  /**
   * Finishes an upload session as blob `digest` of `repository`: verify,
   * commit and link under a claim, then end the session. A failed
   * verification ends the session too (the store discarded its bytes).
   */
  async commitUpload(repository: RepositoryName, id: string, digest: Digest): Promise<BlobInfo> {
    const info = await this.commitAndLink(repository, digest, async () => {
      try {
        return await this.deps.blobs.commit(id, digest);
      } catch (err) {
        if (codeOf(err) === 'ERR_DIGEST_MISMATCH' || codeOf(err) === 'ERR_SIZE_MISMATCH') {
          await this.deps.meta.deleteUpload(id);
          await this.deps.lifecycle.releaseReservation(id);
        }
        throw err;
      }
    });
    await this.deps.meta.deleteUpload(id);
    // Linked, so counted as stored: the upload's reservation has done its job.
    await this.deps.lifecycle.releaseReservation(id);
    return info;
  }

  /**
   * A monolithic upload: the whole blob in one stream, of `declaredSize`
   * bytes if known. Under a quota every byte is reserved before it is
   * written, a chunked body's too (see {@link appendUpload}).
   */
  async putBlob(repository: RepositoryName, digest: Digest, data: Readable, declaredSize: number | undefined): Promise<BlobInfo> {
    const { blobs, lifecycle } = this.deps;
    const id = await blobs.startUpload();
    try {
      await blobs.append(id, 0, lifecycle.meterUpload(repository, id, data, 0, declaredSize), declaredSize === undefined ? {} : { expectedBytes: declaredSize });
      return await this.commitAndLink(repository, digest, () => blobs.commit(id, digest, declaredSize));
    } catch (err) {
      await blobs.cancelUpload(id);
      throw err;
    } finally {
      await lifecycle.releaseReservation(id);
    }
  }

  /** Discards an upload session: its bytes and its row. */
  async cancelUpload(id: string): Promise<void> {
    await this.deps.blobs.cancelUpload(id);
    await this.deps.meta.deleteUpload(id);
    await this.deps.lifecycle.releaseReservation(id);
  }

  /**
   * Links `digest` into `repository` from `from` (or, with automatic
   * mounts, from any repository that has it), if `principal` may pull
   * the source (live policy and token grant) and the bytes are stored.
   * Under a namespace quota the blob's size is reserved before it links,
   * whatever the source's namespace (ERR_QUOTA_EXCEEDED). False when it
   * cannot: the client then uploads. `ip`: the caller's, for the audit log.
   */
  async mountBlob(repository: RepositoryName, digest: Digest, principal: Principal, from: string | null, ip?: string): Promise<boolean> {
    const { meta, blobs } = this.deps;
    let candidates: string[];
    if (from !== null && from !== '') {
      if (!isRepositoryName(from)) return false;
      candidates = [from];
    } else if (this.deps.options.automaticMount) {
      candidates = await meta.repositoriesWithBlob(digest, MOUNT_CANDIDATES);
    } else {
      return false;
    }
    // Hold GC off the digest from the source check until the new link exists.
    const release = await this.deps.lifecycle.claimBlob(digest);
    try {
      for (const source of candidates) {
        if (source === repository) {
          if (await meta.linkedBlob(repository, digest)) return true;
          continue;
        }
        if (!(await this.deps.access.canMountFrom(principal, source))) continue;
        if (!(await meta.linkedBlob(source as RepositoryName, digest))) continue;
        // The bytes must really be there: never link a repository to nothing.
        const stored = await blobs.stat(digest);
        if (!stored) continue;
        // Quota: a mount adds the blob to this namespace (unless it has it), whatever the source's namespace.
        const holder = `mount:${randomUUID()}`;
        await this.deps.lifecycle.reserveBlob(repository, holder, digest, stored.size);
        try {
          await meta.linkBlob(repository, digest, stored.size);
        } finally {
          await this.deps.lifecycle.releaseReservation(holder);
        }
        this.deps.events.emit({ type: 'blob-mounted', repository, digest: digest.toString(), from: source, actor: { name: principal.name, ip } });
        return true;
      }
      return false;
    } finally {
      await release();
    }
  }

  /** Unlinks a blob from the repository (its bytes go at the next GC); false if it was not linked. */
  async deleteBlob(repository: RepositoryName, digest: Digest, actor: Actor): Promise<boolean> {
    if (!(await this.deps.meta.unlinkBlob(repository, digest))) return false;
    this.deps.events.emit({ type: 'blob-deleted', repository, digest: digest.toString(), actor });
    return true;
  }

  /** claim → commit → link: GC cannot delete the digest between the commit and the link. */
  private async commitAndLink(repository: RepositoryName, digest: Digest, commit: () => Promise<BlobInfo>, link: { generated?: boolean } = {}): Promise<BlobInfo> {
    const release = await this.deps.lifecycle.claimBlob(digest);
    let info: BlobInfo;
    try {
      info = await commit();
      await this.deps.meta.linkBlob(repository, digest, info.size, link);
    } finally {
      await release();
    }
    this.deps.events.emit({ type: 'blob-committed', repository, digest: digest.toString(), size: info.size });
    return info;
  }

  // ---- manifests

  /**
   * Stores a document the registry itself generated (an SBOM) as an OCI
   * 1.1 referrer of `subject`: the document and the empty config as blobs
   * (claim → commit → link), then the manifest by digest, in one metadata
   * transaction. Outside users' quotas: no reservation, no quota check, and
   * its links and manifest are marked generated so the quota's measure
   * leaves them out (decision 0120). Without tags; announced like any push under `actor` (the audit
   * log records it). Returns the manifest's digest.
   */
  async putGeneratedReferrer(
    repository: RepositoryName,
    subject: { mediaType: string; digest: Digest; size: number },
    artifact: { artifactType: string; content: Buffer; annotations: Record<string, string> },
    actor: Actor,
  ): Promise<Digest> {
    const empty = Buffer.from('{}');
    const layers = [
      { mediaType: artifact.artifactType, bytes: artifact.content },
      { mediaType: 'application/vnd.oci.empty.v1+json', bytes: empty },
    ];
    for (const { bytes } of layers) {
      const digest = Digest.of(bytes);
      if (await this.deps.meta.linkedBlob(repository, digest)) continue;
      const id = await this.deps.blobs.startUpload();
      try {
        await this.deps.blobs.append(id, 0, Readable.from([bytes]), { expectedBytes: bytes.length });
        await this.commitAndLink(repository, digest, () => this.deps.blobs.commit(id, digest, bytes.length), { generated: true });
      } catch (err) {
        await this.deps.blobs.cancelUpload(id);
        throw err;
      }
    }
    const document = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: artifact.artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: Digest.of(empty).toString(), size: empty.length, data: empty.toString('base64') },
      layers: [{ mediaType: artifact.artifactType, digest: Digest.of(artifact.content).toString(), size: artifact.content.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest.toString(), size: subject.size },
      annotations: { 'org.opencontainers.image.created': new Date().toISOString(), ...artifact.annotations },
    };
    const content = Buffer.from(JSON.stringify(document));
    const parsed = parseManifest(content, document.mediaType);
    const digest = Digest.of(content);
    const refs = referencedDescriptors(parsed);
    await this.deps.meta.putManifest(
      repository,
      { digest, mediaType: parsed.mediaType, content, artifactType: parsed.artifactType, subject: parsed.subject?.digest, annotations: parsed.annotations, blobs: refs.blobs.map((d) => d.digest), manifests: [], generated: true },
      [],
      actor.name,
    );
    this.deps.events.emit({ type: 'manifest-pushed', repository, digest: digest.toString(), reference: digest.toString(), tags: [], actor });
    return digest;
  }

  /**
   * Stores a manifest named by `reference` (its tag, or its digest, which
   * the content must match) and points the reference's tag and `tags` at
   * it. Lifecycle rules first (immutable tags, quota), then one metadata
   * transaction; every referenced blob and child must be in the repository.
   */
  async putManifest(repository: RepositoryName, reference: ManifestReference, content: Buffer, contentType: string | undefined, tags: Tag[], actor: Actor): Promise<PushedManifest> {
    const parsed = parseManifest(content, contentType);
    let digest: Digest;
    const allTags: Tag[] = [];
    if (reference.kind === 'digest') {
      digest = Digest.of(content, reference.digest.algorithm);
      if (!digest.equals(reference.digest)) {
        throw new DigestError('ERR_DIGEST_INVALID', `manifest content has digest ${digest.toString()}, not ${reference.digest.toString()}`);
      }
    } else {
      digest = Digest.of(content);
      allTags.push(reference.tag);
    }
    allTags.push(...tags);
    const refs = referencedDescriptors(parsed);
    // Immutable tags and quotas; `done` releases the tag locks after the commit.
    const done = await this.deps.lifecycle.beforeManifestPut(repository, digest, allTags, content.length);
    let changes: TagChange[];
    try {
      changes = await this.deps.meta.putManifest(
        repository,
        {
          digest,
          mediaType: parsed.mediaType,
          content,
          artifactType: parsed.artifactType,
          subject: parsed.subject?.digest,
          annotations: parsed.annotations,
          blobs: refs.blobs.map((d) => d.digest),
          manifests: refs.manifests.map((d) => d.digest),
        },
        allTags,
        actor.name,
      );
    } finally {
      await done();
    }
    const rawReference = reference.kind === 'tag' ? reference.tag : reference.digest.toString();
    this.deps.events.emit({ type: 'manifest-pushed', repository, digest: digest.toString(), reference: rawReference, tags: allTags, actor });
    for (const change of changes) this.deps.events.emit({ type: 'tag-changed', repository, change, actor });
    return { digest, subject: parsed.subject?.digest, tags: allTags };
  }

  /**
   * Deletes a manifest (by digest, with every tag pointing at it) or a tag
   * (by name: that tag only); refuses an immutable tag. A manifest an index
   * in the repository lists is refused (MetaStoreError ERR_MANIFEST_REFERENCED,
   * naming the index) unless `deleteIndexChildren` is configured or an
   * admin asks to `overrideIndex`. False if there was nothing.
   */
  async deleteManifest(repository: RepositoryName, reference: ManifestReference, actor: Actor, options: { overrideIndex?: Principal } = {}): Promise<boolean> {
    const { meta, lifecycle } = this.deps;
    if (options.overrideIndex) lifecycle.requireAdmin(options.overrideIndex, 'deleting a manifest an index lists (override=index)');
    await lifecycle.checkDelete(repository, reference.kind === 'tag' ? { tag: reference.tag } : { digest: reference.digest });
    let deleted: boolean;
    if (reference.kind === 'tag') {
      deleted = (await this.moveTag(repository, reference.tag, { to: undefined, actor: actor.name }, { actor })) !== undefined;
    } else {
      const allowReferenced = options.overrideIndex !== undefined || this.deps.options.deleteIndexChildren;
      deleted = await meta.deleteManifest(repository, reference.digest, actor.name, { allowReferenced });
    }
    if (deleted) this.deps.events.emit({ type: 'manifest-deleted', repository, reference: reference.kind === 'tag' ? reference.tag : reference.digest.toString(), actor });
    return deleted;
  }

  // ---- tags

  /**
   * MetaStore.moveTag, announced: every tag change outside a manifest push
   * goes through here. `context` names the request that made it (actor
   * and address) and an immutable-tag override, for the audit log.
   */
  async moveTag(repository: RepositoryName, tag: Tag, move: TagMove, context: { actor?: Actor; override?: 'immutable' } = {}): Promise<TagChange | undefined> {
    const change = await this.deps.meta.moveTag(repository, tag, move);
    if (change) this.deps.events.emit({ type: 'tag-changed', repository, change, actor: context.actor, override: context.override });
    return change;
  }

  /** Deletes a tag; an immutable one only for an admin who asked to `override`. */
  async deleteTag(repository: RepositoryName, tag: Tag, principal: Principal, override: boolean, actor: Actor = { name: principal.name }): Promise<boolean> {
    const { lifecycle } = this.deps;
    if (override) lifecycle.requireAdmin(principal, 'deleting an immutable tag');
    else await lifecycle.checkDelete(repository, { tag });
    return (await this.moveTag(repository, tag, { to: undefined, actor: principal.name }, { actor, override: override ? 'immutable' : undefined })) !== undefined;
  }

  /** Points a tag back at an earlier version (not an immutable tag), as one `rollback` change. */
  async rollback(repository: RepositoryName, tag: Tag, target: RollbackTarget, actor: Actor): Promise<RollbackResult> {
    const { lifecycle } = this.deps;
    lifecycle.checkRollback(repository, tag);
    const { from, to } = await lifecycle.history.planRollback(repository, tag, target);
    let change: TagChange | undefined;
    try {
      change = await this.moveTag(repository, tag, { to, actor: actor.name, rollback: true, expect: { digest: from } }, { actor });
    } catch (err) {
      if (err instanceof MetaStoreError && err.code === 'ERR_MANIFEST_UNKNOWN') {
        throw new LifecycleError('ERR_VERSION_UNKNOWN', `version ${to} of tag ${tag} is no longer stored (beyond history.keep, and collected)`);
      }
      throw err;
    }
    if (!change) throw new LifecycleError('ERR_VERSION_UNKNOWN', `tag ${tag} moved while rolling it back; look at its history and try again`);
    return { repository, tag, from, to };
  }
}
