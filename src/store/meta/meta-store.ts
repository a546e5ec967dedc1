/**
 * The metadata store: which repository links which blob, manifests, tags
 * and every change to a tag, referrers and upload sessions. Small role
 * interfaces composed into {@link MetaStore}; one SQL implementation
 * (Kysely) serves SQLite and PostgreSQL, and both run the shared suite in
 * test/store/meta-store-suite.ts.
 *
 * Inputs are already-parsed value types (Digest, RepositoryName, Tag).
 * Errors are {@link MetaStoreError}s with a stable code.
 */
import type { Digest } from '../../oci/digest.js';
import type { RepositoryName, Tag } from '../../oci/reference.js';
import { PierError } from '../../oci/pier-error.js';
import type { NamePatterns } from '../../shared/name-patterns.js';

export type MetaStoreErrorCode =
  /** A manifest references blobs or manifests the repository lacks (detail: the digests). */
  | 'ERR_MANIFEST_REFERENCE_MISSING'
  /** The repository is unknown. */
  | 'ERR_NOT_FOUND'
  /** A tag move names a manifest the repository does not hold. */
  | 'ERR_MANIFEST_UNKNOWN'
  /** A manifest delete refused: an index in the repository lists it (detail: `{ indexes }`). */
  | 'ERR_MANIFEST_REFERENCED';

export class MetaStoreError extends PierError {
  constructor(
    readonly code: MetaStoreErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

/** A page request: up to `limit` entries after `after` in lexical order. */
export interface Page {
  limit: number;
  after?: string | undefined;
}

export interface ManifestRecord {
  digest: Digest;
  mediaType: string;
  size: number;
  content: Buffer;
  artifactType: string | undefined;
  subject: Digest | undefined;
  annotations: Record<string, string> | undefined;
  createdAt: Date;
}

export interface NewManifest {
  digest: Digest;
  mediaType: string;
  content: Buffer;
  artifactType: string | undefined;
  subject: Digest | undefined;
  annotations: Record<string, string> | undefined;
  /** Blobs (config, layers) that must be linked in the repository. */
  blobs: Digest[];
  /** Child manifests that must exist in the repository. */
  manifests: Digest[];
  /** Written by the registry itself (an SBOM): outside quotas. A user's push of the same digest clears it. */
  generated?: boolean;
}

export interface Referrer {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType: string | undefined;
  annotations: Record<string, string> | undefined;
}

/** `rollback` is a move back to an earlier version, written by src/lifecycle. */
export type TagAction = 'create' | 'move' | 'delete' | 'rollback';

export interface TagChange {
  /** Increases with every change (the webhook events' order). */
  id: number;
  tag: string;
  action: TagAction;
  oldDigest: string | undefined;
  newDigest: string | undefined;
  actor: string;
  at: Date;
}

export interface RepositoryCatalog {
  /** Repositories that hold at least one manifest, in lexical order; only those in `names` (default: all). */
  listRepositories(page: Page, names?: NamePatterns): Promise<string[]>;
  repositoryExists(repository: RepositoryName): Promise<boolean>;
}

export interface BlobLinks {
  /**
   * Links a stored blob into a repository (creating the repository). Idempotent;
   * re-linking refreshes the link time, from which GC's grace period counts.
   * `generated`: linked by the registry itself (an SBOM), so outside quotas;
   * a link without it (a user's push or mount) clears the mark, and a
   * generated link never marks a user's link.
   */
  linkBlob(repository: RepositoryName, digest: Digest, size: number, options?: { generated?: boolean }): Promise<void>;
  /** The blob's size if the repository links it. */
  linkedBlob(repository: RepositoryName, digest: Digest): Promise<{ size: number } | undefined>;
  /** Removes the link; false if there was none. */
  unlinkBlob(repository: RepositoryName, digest: Digest): Promise<boolean>;
  /** Some repositories linking the digest (for mounts without `from`). */
  repositoriesWithBlob(digest: Digest, limit: number): Promise<string[]>;
}

export interface ManifestStore {
  /**
   * Stores a manifest and points `tags` at it, in one transaction, after
   * checking that every referenced blob and child manifest is present in
   * the repository (ERR_MANIFEST_REFERENCE_MISSING with the missing digests
   * as detail; nothing is stored then). Re-putting an existing manifest is
   * allowed and only moves tags. Returns the tag changes it made.
   */
  putManifest(repository: RepositoryName, manifest: NewManifest, tags: Tag[], actor: string): Promise<TagChange[]>;
  getManifest(repository: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined>;
  /** The manifest a tag points at. */
  getTaggedManifest(repository: RepositoryName, tag: Tag): Promise<ManifestRecord | undefined>;
  /**
   * Deletes a manifest and every tag pointing at it; false if absent.
   * Refuses, in the same transaction, a manifest that an index in the
   * repository references (ERR_MANIFEST_REFERENCED, detail
   * `{ indexes: string[] }`), unless `allowReferenced`: deleting it would
   * break the index.
   */
  deleteManifest(repository: RepositoryName, digest: Digest, actor: string, options?: { allowReferenced?: boolean }): Promise<boolean>;
  /** Indexes in the repository that list `digest` as a child manifest, in digest order. */
  indexesReferencing(repository: RepositoryName, digest: Digest): Promise<Digest[]>;
  /** Deletes one tag; false if absent. */
  deleteTag(repository: RepositoryName, tag: Tag, actor: string): Promise<boolean>;
  /** Tags in lexical order, or undefined if the repository is unknown. */
  listTags(repository: RepositoryName, page: Page): Promise<string[] | undefined>;
  /** Manifests whose subject is `subject`, optionally of one artifactType. */
  listReferrers(repository: RepositoryName, subject: Digest, artifactType?: string): Promise<Referrer[]>;
  /** Every change of a tag, newest first. */
  tagHistory(repository: RepositoryName, tag: Tag, limit: number): Promise<TagChange[]>;
  /** Names of the tags pointing at `digest`. */
  tagsPointingAt(repository: RepositoryName, digest: Digest): Promise<string[]>;
}

/**
 * One tag change: point `tag` at `to` (a digest the repository holds), or
 * delete it (`to` undefined). `expect` makes it conditional: it happens
 * only if the tag still points at `expect.digest` (undefined: the tag does
 * not exist) and, if given, was last moved at `expect.updatedAt`.
 */
export interface TagMove {
  to: string | undefined;
  actor: string;
  /** Recorded as `rollback` instead of `create`/`move`. */
  rollback?: boolean;
  expect?: { digest: string | undefined; updatedAt?: number };
}

export interface TagWriter {
  /**
   * The one writer of tags and their history: moves or deletes the tag
   * and appends its tag_history row (the source of webhook events) in one
   * transaction. Returns the change, or undefined when nothing changed
   * (the tag already pointed there, did not exist, or `expect` failed).
   * Throws ERR_MANIFEST_UNKNOWN when `to` is not a manifest of the repository.
   *
   * putManifest, deleteManifest and deleteTag write their tag changes
   * through the same code, inside their own transactions.
   */
  moveTag(repository: RepositoryName, tag: Tag, move: TagMove): Promise<TagChange | undefined>;
}

export interface UploadSessions {
  createUpload(id: string, repository: RepositoryName): Promise<void>;
  /** The repository an upload belongs to, or undefined. */
  uploadRepository(id: string): Promise<string | undefined>;
  deleteUpload(id: string): Promise<void>;
  /** Upload ids started before `before`. */
  uploadsStartedBefore(before: Date): Promise<string[]>;
}

export interface MetaStore extends RepositoryCatalog, BlobLinks, ManifestStore, TagWriter, UploadSessions {
  close(): Promise<void>;
}
