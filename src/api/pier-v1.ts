/**
 * The wire types of Pier's own JSON API, /pier/v1 (docs/api.md): what the
 * registry's routes (src/registry/routes/pier-api.ts) send and the client
 * (src/client/pier-api.ts) reads, and later the UI. One module, shared, so
 * the two cannot drift. Times are ISO 8601 strings; an absent optional
 * field is left out of the JSON.
 *
 * A leaf: it imports nothing.
 */

export type TagAction = 'create' | 'move' | 'delete' | 'rollback';

export interface HistoryChange {
  id: number;
  action: TagAction;
  oldDigest?: string;
  newDigest?: string;
  actor: string;
  at: string;
}

export interface HistoryVersion {
  digest: string;
  since: string;
  until?: string;
  /** Whether GC keeps this version's manifest (history.keep, history.maxAge). */
  kept: boolean;
}

/** GET /pier/v1/repositories/NAME/tags/TAG/history */
export interface TagHistoryResponse {
  repository: string;
  tag: string;
  current: string | null;
  changes: HistoryChange[];
  versions: HistoryVersion[];
}

/** POST /pier/v1/repositories/NAME/tags/TAG/rollback, body `{ to }` or `{ steps }` */
export interface RollbackResponse {
  repository: string;
  tag: string;
  from?: string;
  to: string;
}

/** DELETE /pier/v1/repositories/NAME/tags/TAG[?override=immutable] */
export interface DeleteTagResponse {
  repository: string;
  tag: string;
  deleted: true;
}

/** POST /pier/v1/gc[?dryRun=1] */
export interface GcResponse {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  manifests: { scanned: number; kept: number; deleted: number };
  links: { deleted: number };
  blobs: { scanned: number; deleted: number; bytesFreed: number; skippedRecent: number; skippedInUse: number };
  /** Upload sessions in progress (their bytes are never collected by GC). */
  uploadsInProgress: number;
  /** Milliseconds spent in each phase. */
  phases: { mark: number; manifests: number; links: number; blobs: number };
}

/** POST /pier/v1/retention[?apply=1] */
export interface RetentionResponse {
  dryRun: boolean;
  deleted: { repository: string; tag: string; digest: string; pushedAt: string; pulledAt?: string }[];
  kept: number;
}

/** GET /pier/v1/usage */
export interface UsageResponse {
  repositories: { repository: string; bytes: number; blobs: number; manifests: number }[];
  namespaces: { namespace: string; bytes: number; limit?: number }[];
  totalBytes: number;
}

/** GET /pier/v1/webhooks */
export interface WebhooksResponse {
  webhooks: { name: string; url: string; events: string[]; repository: string; signed: boolean; pending: number; failed: number; delivered: number }[];
}

/** GET /pier/v1/webhooks/NAME/deliveries[?limit=N] */
export interface DeliveriesResponse {
  name: string;
  pending: number;
  failed: number;
  delivered: number;
  deliveries: { id: number; eventId: string; type: string; status: 'pending' | 'delivered' | 'failed'; attempts: number; createdAt: string; finishedAt?: string; lastError?: string }[];
}

/** A webhook event as POSTed to a receiver (and shown by a test). */
export interface WebhookEventBody {
  id: string;
  type: string;
  action: TagAction | 'test';
  repository: string;
  tag: string;
  digest: string | null;
  previousDigest: string | null;
  actor: string;
  at: string;
}

/** POST /pier/v1/webhooks/NAME/test */
export interface WebhookTestResponse {
  name: string;
  ok: boolean;
  status: number | null;
  error: string | null;
  ms: number;
  event: WebhookEventBody;
}

// ---- administration (admin only): /pier/v1/users, groups, tokens, policy

export interface UserInfo {
  name: string;
  admin: boolean;
  groups: string[];
  createdAt: string;
}

export interface GroupInfo {
  name: string;
  members: string[];
}

export interface TokenInfo {
  name: string;
  owner: string | null;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface NewToken {
  name: string;
  /** Shown once: only its hash is stored. */
  secret: string;
  expiresAt: string | null;
}

export interface RuleInfo {
  /** `config:N` for a rule from the configuration file, else the rule's id (what `policy rm` takes). */
  origin: string;
  subject: string;
  repositories: string;
  actions: string[];
}

export interface ImportResponse {
  added: string[];
  updated: string[];
  skipped: { user: string; reason: string }[];
}

// ---- the web UI: session, repositories, tags, manifests, diffs, audit

/** GET /pier/v1/session (also the answer to POST, which signs in). */
export interface SessionResponse {
  /** The signed-in user, or null for an anonymous visitor. */
  user: string | null;
  admin: boolean;
  /** Echo in `X-Pier-CSRF` on every write made with the session cookie; null without a session. */
  csrf: string | null;
  /** The registry serves everyone everything (no account exists yet, loopback only). */
  open: boolean;
  /** Tag deletes are enabled on this registry (`deletes`). */
  deletes: boolean;
}

export type RepositorySort = 'name' | 'pushed' | 'size';

/** One repository in GET /pier/v1/repositories. */
export interface RepositoryInfo {
  name: string;
  tags: number;
  bytes: number;
  /** ISO time of its newest manifest, or null. */
  pushedAt: string | null;
}

/** GET /pier/v1/repositories[?q=TEXT&sort=name|pushed|size&order=asc|desc&offset=N&limit=N] — only what the viewer may pull. */
export interface RepositoriesResponse {
  /** How many repositories match `q` (all pages). */
  total: number;
  offset: number;
  repositories: RepositoryInfo[];
}

export type TagSort = 'name' | 'pushed';

/** One tag in GET /pier/v1/repositories/NAME/tags/details. */
export interface TagInfo {
  name: string;
  digest: string;
  mediaType: string;
  /** `os/architecture[/variant]` of each image (one for an image, each child's for an index). */
  platforms: string[];
  /** Compressed bytes a pull transfers: manifest, config and layers (for an index: all of its images). */
  size: number;
  pushedAt: string;
  pushedBy: string | null;
  lastPulledAt: string | null;
  immutable: boolean;
}

/**
 * GET /pier/v1/repositories/NAME/tags/details[?sort=pushed|name&order=asc|desc&offset=N&limit=N]:
 * one page (default 100, at most 1,000) of the tags sorted over all of them (default: newest push first).
 */
export interface TagsResponse {
  repository: string;
  /** What the viewer may do here (the UI offers only these; the server checks every request). */
  rights: ('pull' | 'push' | 'delete')[];
  /** How many tags the repository has (all pages). */
  total: number;
  offset: number;
  tags: TagInfo[];
}

/** GET /pier/v1/repositories/NAME/rights: what the viewer may do here (the UI offers only these). */
export interface RightsResponse {
  repository: string;
  rights: ('pull' | 'push' | 'delete')[];
}

export interface LayerInfo {
  digest: string;
  mediaType: string;
  size: number;
}

/** GET /pier/v1/repositories/NAME/manifests/DIGEST */
export interface ManifestResponse {
  repository: string;
  digest: string;
  mediaType: string;
  kind: 'image' | 'index';
  size: number;
  platforms: string[];
  /** An image's config descriptor and, when it is JSON of at most 1 MiB, the document. */
  config: (LayerInfo & { document: unknown }) | null;
  layers: LayerInfo[];
  /** An index's images. */
  manifests: (LayerInfo & { platform: string | null })[];
  annotations: Record<string, string>;
  /** Tags in this repository pointing at it. */
  tags: string[];
  /** Referrers (signatures, SBOMs, attestations), grouped by artifact type. */
  referrers: { artifactType: string; manifests: (LayerInfo & { annotations: Record<string, string> })[] }[];
}

export interface ConfigChange {
  /** `entrypoint`, `cmd`, `user`, `workingDir`, `env.NAME`, `label.KEY`, `exposedPort.PORT`. */
  field: string;
  from: string | null;
  to: string | null;
}

/** GET /pier/v1/repositories/NAME/diff?from=DIGEST&to=DIGEST (an index counts all of its images' layers). */
export interface DiffResponse {
  repository: string;
  from: string;
  to: string;
  layersAdded: LayerInfo[];
  layersRemoved: LayerInfo[];
  size: { from: number; to: number };
  platforms: { from: string[]; to: string[] };
  config: ConfigChange[];
}

/**
 * GET /pier/v1/audit[?actor=NAME&action=NAME&repository=NAME&limit=N&before=ID] (admins): newest
 * first; each filter matches exactly.
 */
export interface AuditResponse {
  entries: { id: number; at: string; actor: string; ip: string | null; action: string; repository: string | null; target: string | null; outcome: string }[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: number | null;
}

/** GET /pier/v1/rules (admins): the rules from the configuration file that the UI shows read-only. */
export interface RulesResponse {
  immutableTags: { repository: string; tags: string[]; except: string[] }[];
  quotas: { namespace: string; limit: number }[];
  retention: { repository: string; keepLast: number | null; keepDays: number | null; keep: string[] }[];
}

// ---- scans, SBOMs and the vulnerability database (src/supply)

export type FindingSeverity = 'critical' | 'high' | 'medium' | 'low' | 'unknown';

export interface ScanFinding {
  /** The OSV id (DSA-…, GHSA-…, PYSEC-…). */
  id: string;
  aliases: string[];
  severity: FindingSeverity;
  summary?: string;
  /** The installed package as the image names it (a Debian binary package, not its source). */
  package: string;
  type: 'deb' | 'apk' | 'rpm' | 'npm' | 'pypi' | 'golang';
  installed: string;
  /** The first version that fixes it, when the database knows one. */
  fixed?: string;
  /** The source package it was matched through (Debian, Alpine), when it differs from `package`. */
  source?: string;
}

/** GET /pier/v1/repositories/NAME/scans/REFERENCE (tag or digest); POST scans it now. */
export interface ScanResponse {
  repository: string;
  digest: string;
  /** `skipped`: not an image (a signature, an artifact): nothing to scan. */
  status: 'pending' | 'done' | 'failed' | 'skipped';
  /** Where the inventory came from: `layers`, `sbom` (an SBOM referrer), `attestation` (BuildKit), `index` (its platforms). */
  source?: string;
  error?: string;
  counts: Record<FindingSeverity, number>;
  findings: ScanFinding[];
  /** Packages in the inventory. */
  packages: number;
  /** Files the inventory reads but could not parse, as `path: reason` (their packages are not counted). Always sent; absent from older servers. */
  inventoryErrors?: string[];
  os?: { id: string; versionId: string; prettyName?: string };
  /** The digest of the CycloneDX SBOM referrer Pier wrote. */
  sbom?: string;
  scannedAt?: string;
  matchedAt?: string;
  database: VulnDbResponse;
}

/** GET /pier/v1/vulndb, and the answer to POST /pier/v1/vulndb/imports. */
export interface VulnDbResponse {
  /** 0: nothing imported yet. */
  generation: number;
  importedAt?: string;
  /** The newest `modified` of the imported records. */
  databaseDate?: string;
  records: number;
  /** Older than scanning.maxDatabaseAge, or none imported. */
  stale: boolean;
  maxAgeSeconds: number;
}

/** POST /pier/v1/vulndb/records, body `{ records: [OSV JSON, ...] }` */
export interface VulnDbRecordsResponse {
  accepted: number;
  rejected: { index: number; id?: string; error: string }[];
}
