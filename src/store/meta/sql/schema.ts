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

/** Accounts, tokens, policy and the audit log (migration 0002-auth). */
export interface UsersTable {
  name: string;
  password_hash: string;
  admin: number;
  created_at: number;
  updated_at: number;
}
export interface GroupsTable {
  name: string;
  created_at: number;
}
export interface GroupMembersTable {
  group_name: string;
  user_name: string;
}
export interface AccessTokensTable {
  name: string;
  secret_hash: string;
  owner: string | null;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}
export interface RefreshTokensTable {
  secret_hash: string;
  subject: string;
  created_at: number;
  expires_at: number;
}
export interface PolicyRulesTable {
  id: Generated<number>;
  subject: string;
  repositories: string;
  actions: string;
  created_at: number;
}
export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  ip: string | null;
  action: string;
  repository: string | null;
  target: string | null;
  outcome: string;
}
export interface AuthStateTable {
  id: number;
  generation: number;
}

// A type alias, not an interface: withTables<T> needs an indexable type.
export type AuthTables = {
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  access_tokens: AccessTokensTable;
  refresh_tokens: RefreshTokensTable;
  policy_rules: PolicyRulesTable;
  audit_log: AuditLogTable;
  auth_state: AuthStateTable;
};

/** Lifecycle: pull times, named counters, the webhook outbox (migration 0003-lifecycle). */
export interface TagPullsTable {
  repository_id: number;
  tag: string;
  pulled_at: number;
}

/** Small named counters: `webhook_cursor` is the last tag_history id fanned out to webhook deliveries. */
export interface LifecycleStateTable {
  key: string;
  value: number;
}

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  endpoint: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_at: number;
  created_at: number;
  finished_at: number | null;
  last_error: string | null;
}

export interface WebhookAttemptsTable {
  id: Generated<number>;
  delivery_id: number;
  endpoint: string;
  at: number;
  status_code: number | null;
  error: string | null;
  ms: number;
}

export type LifecycleTables = {
  tag_pulls: TagPullsTable;
  lifecycle_state: LifecycleStateTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
};

/** Bytes reserved against a namespace quota (migration 0004, src/store/meta/quota-ledger.ts). */
export interface QuotaReservationsTable {
  holder: string;
  namespace: string;
  bytes: number;
  updated_at: number;
}

/** The SQL coordinator's rows (migration 0005-coordination; sql-coordinator.ts). */
export interface CoordinatorClaimsTable {
  id: string;
  digest: string;
  holder: string;
  expires_at: number;
}
export interface CoordinatorFencesTable {
  digest: string;
  token: string;
  holder: string;
  expires_at: number;
}
export interface CoordinatorLocksTable {
  key: string;
  token: string;
  holder: string;
  expires_at: number;
}
export interface CoordinatorLeasesTable {
  name: string;
  holder: string;
  expires_at: number;
}
export interface CoordinatorCountersTable {
  key: string;
  count: number;
  since: number;
}

export type CoordinatorTables = {
  coordinator_claims: CoordinatorClaimsTable;
  coordinator_fences: CoordinatorFencesTable;
  coordinator_locks: CoordinatorLocksTable;
  coordinator_leases: CoordinatorLeasesTable;
  coordinator_counters: CoordinatorCountersTable;
};

/** Inventories, scans and the vulnerability database (migration 0010-supply; supply-store.ts). */
export interface LayerInventoriesTable {
  digest: string;
  format: number;
  inventory: string;
  created_at: number;
}
export interface ImageScansTable {
  repository_id: number;
  digest: string;
  status: 'pending' | 'done' | 'failed' | 'skipped';
  source: string | null;
  inventory: string | null;
  findings: string | null;
  error: string | null;
  db_generation: number;
  sbom_digest: string | null;
  scanned_at: number;
  matched_at: number | null;
}
export interface VulnerabilitiesTable {
  id: string;
  modified: string;
  record: string;
}
export interface VulnerabilityPackagesTable {
  ecosystem: string;
  name: string;
  vulnerability_id: string;
}
export interface VulndbImportsTable {
  id: Generated<number>;
  imported_at: number;
  database_date: number;
  records: number;
  actor: string;
}

export type SupplyTables = {
  layer_inventories: LayerInventoriesTable;
  image_scans: ImageScansTable;
  vulnerabilities: VulnerabilitiesTable;
  vulnerability_packages: VulnerabilityPackagesTable;
  vulndb_imports: VulndbImportsTable;
};

/** Object-store upload sessions (migration 0008-blob-uploads; src/store/blob/upload-state.ts). */
export interface BlobUploadsTable {
  id: string;
  size: number;
  multipart_id: string | null;
  /** JSON: UploadPart[] */
  parts: string;
  /** JSON: StagedChunk[] */
  staged: string;
  assembled: number;
  holder: string | null;
  held_until: number | null;
  created_at: number;
  updated_at: number;
}

/** Web UI sessions (migration 0013-ui-sessions; sql-session-store.ts). */
export interface UiSessionsTable {
  id_hash: string;
  user_name: string;
  csrf: string;
  created_at: number;
  expires_at: number;
}

/** Token signing keys (migration 0006-signing-keys; sql-signing-key-store.ts). */
export interface SigningKeysTable {
  id: string;
  private_key: string;
  certificate: string;
  created_at: number;
}

export interface Database extends AuthTables, LifecycleTables, CoordinatorTables, SupplyTables {
  blob_uploads: BlobUploadsTable;
  ui_sessions: UiSessionsTable;
  signing_keys: SigningKeysTable;
  repositories: RepositoriesTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  tag_history: TagHistoryTable;
  uploads: UploadsTable;
  quota_reservations: QuotaReservationsTable;
}
