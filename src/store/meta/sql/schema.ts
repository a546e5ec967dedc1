/** Kysely table types for the metadata schema (see migrations.ts). Times are epoch milliseconds. */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  size: number;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  content: Buffer;
  artifact_type: string | null;
  subject_digest: string | null;
  annotations: string | null;
  created_at: number;
}

/** What a manifest references: blobs (config, layers) and child manifests. */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  child_digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  manifest_digest: string;
  updated_at: number;
}

export interface TagHistoryTable {
  id: Generated<number>;
  repository_id: number;
  tag: string;
  action: 'create' | 'move' | 'delete' | 'rollback';
  old_digest: string | null;
  new_digest: string | null;
  actor: string;
  at: number;
}

export interface UploadsTable {
  id: string;
  repository_id: number;
  started_at: number;
}

export interface Database {
  repositories: RepositoriesTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  tag_history: TagHistoryTable;
  uploads: UploadsTable;
}
