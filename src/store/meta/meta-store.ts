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

export type MetaStoreErrorCode = 'ERR_MANIFEST_REFERENCE_MISSING' | 'ERR_NOT_FOUND';

export class MetaStoreError extends Error {
  constructor(
    readonly code: MetaStoreErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'MetaStoreError';
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
  tag: string;
  action: TagAction;
  oldDigest: string | undefined;
  newDigest: string | undefined;
  actor: string;
  at: Date;
}

export interface RepositoryCatalog {
  /** Repositories that hold at least one manifest, in lexical order. */
  listRepositories(page: Page): Promise<string[]>;
  repositoryExists(repository: RepositoryName): Promise<boolean>;
}

export interface BlobLinks {
  /**
   * Links a stored blob into a repository (creating the repository). Idempotent;
   * re-linking refreshes the link time, from which GC's grace period counts.
   */
  linkBlob(repository: RepositoryName, digest: Digest, size: number): Promise<void>;
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
   * allowed and only moves tags.
   */
  putManifest(repository: RepositoryName, manifest: NewManifest, tags: Tag[], actor: string): Promise<void>;
  getManifest(repository: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined>;
  /** The manifest a tag points at. */
  getTaggedManifest(repository: RepositoryName, tag: Tag): Promise<ManifestRecord | undefined>;
  /** Deletes a manifest and every tag pointing at it; false if absent. */
  deleteManifest(repository: RepositoryName, digest: Digest, actor: string): Promise<boolean>;
  /** Deletes one tag; false if absent. */
  deleteTag(repository: RepositoryName, tag: Tag, actor: string): Promise<boolean>;
  /** Tags in lexical order, or undefined if the repository is unknown. */
  listTags(repository: RepositoryName, page: Page): Promise<string[] | undefined>;
  /** Manifests whose subject is `subject`, optionally of one artifactType. */
  listReferrers(repository: RepositoryName, subject: Digest, artifactType?: string): Promise<Referrer[]>;
  /** Every change of a tag, newest first. */
  tagHistory(repository: RepositoryName, tag: Tag, limit: number): Promise<TagChange[]>;
}

export interface UploadSessions {
  createUpload(id: string, repository: RepositoryName): Promise<void>;
  /** The repository an upload belongs to, or undefined. */
  uploadRepository(id: string): Promise<string | undefined>;
  deleteUpload(id: string): Promise<void>;
  /** Upload ids started before `before`. */
  uploadsStartedBefore(before: Date): Promise<string[]>;
}

export interface MetaStore extends RepositoryCatalog, BlobLinks, ManifestStore, UploadSessions {
  close(): Promise<void>;
}
