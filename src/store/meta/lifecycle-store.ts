/**
 * The metadata roles behind lifecycle management (src/lifecycle): the
 * queries online GC, storage accounting, retention and the webhook outbox
 * need, and pull times. Small role interfaces with one SQL implementation
 * (sql/sql-lifecycle-store.ts); test/store/lifecycle-store-suite.ts is the
 * shared suite. Tag changes go through MetaStore.moveTag, never through
 * these.
 *
 * Repositories appear here by their numeric id where GC works in bulk
 * (ids are stable for a repository's lifetime).
 */
import type { TagAction } from './meta-store.js';

/** A (repository, digest) pair with its creation time, epoch ms. */
export interface RepositoryDigest {
  repositoryId: number;
  digest: string;
  createdAt: number;
}

/** An edge of the manifest graph in one repository: `parent` lists (or is referred to by) `child`. */
export interface ManifestEdge {
  repositoryId: number;
  parent: string;
  child: string;
}

export interface TagHistoryRow {
  repositoryId: number;
  tag: string;
  action: TagAction;
  newDigest: string | null;
  at: number;
}

/**
 * What online GC reads and deletes (docs/decisions/0021-online-gc.md).
 * The reads take no locks; each delete re-checks, in its own transaction
 * (read committed is enough: each statement re-reads what it deletes),
 * what the mark saw.
 */
export interface GcQueries {
  /**
   * Where the tag history stood when the mark began: a change past it may
   * not have been seen by the mark (SQLite: the highest id; PostgreSQL: the
   * oldest transaction still running, since ids do not commit in order).
   */
  historyWatermark(): Promise<number>;
  tags(): Promise<{ repositoryId: number; name: string; digest: string }[]>;
  /** Every tag change, grouped by repository and tag, newest first within a tag. */
  tagHistoryRows(): Promise<TagHistoryRow[]>;
  /** Index → child manifest edges. */
  indexChildren(): Promise<ManifestEdge[]>;
  /** Subject → referrer edges (`parent` is the subject). */
  referrers(): Promise<ManifestEdge[]>;
  manifests(): Promise<RepositoryDigest[]>;
  /** Manifest → blob edges. */
  blobReferences(): Promise<ManifestEdge[]>;
  links(): Promise<RepositoryDigest[]>;
  /** Digests at least one repository links. */
  linkedDigests(digests?: string[]): Promise<Set<string>>;
  /**
   * Deletes, per repository, the candidate manifests still unreachable in
   * one transaction: none is tagged now, none was tagged past `watermark`,
   * none was created at or after `cutoff`, none is listed by a surviving
   * index or refers to a surviving subject. Returns those deleted.
   */
  deleteUnreachableManifests(groups: [number, string[]][], watermark: number, cutoff: number): Promise<[number, string[]][]>;
  /** Deletes the links still older than `cutoff` that no manifest references now; returns how many. */
  deleteUnreferencedLinks(links: { repositoryId: number; digest: string }[], cutoff: number): Promise<number>;
  uploadsInProgress(): Promise<number>;
}

export interface RepositoryUsage {
  repository: string;
  bytes: number;
  blobs: number;
  manifests: number;
}

export interface UsageQueries {
  /**
   * Bytes a namespace uses (what its quota measures): each distinct blob its
   * repositories link once, plus their manifests; what the registry
   * generated itself (SBOM referrers, decision 0120) is left out.
   */
  namespaceBytes(namespace: string): Promise<number>;
  /** Per repository: linked blob bytes plus manifest bytes, in name order; generated content left out, as for namespaces. */
  repositoryUsage(): Promise<RepositoryUsage[]>;
  /** Distinct blob bytes plus manifest bytes across the registry: everything stored, generated SBOMs included. */
  totalBytes(): Promise<number>;
}

export interface RetentionTag {
  name: string;
  digest: string;
  /** When the tag last moved, epoch ms. */
  updatedAt: number;
  /** When it was last pulled, epoch ms. */
  pulledAt: number | undefined;
}

export interface RetentionQueries {
  /** Every repository, in name order. */
  repositoryNames(): Promise<string[]>;
  /** The repository's tags, most recently moved first (then by name). */
  tagsByAge(repository: string): Promise<RetentionTag[]>;
}

export interface PullLog {
  /** Records the latest pull time of each tag, in one transaction; unknown repositories are skipped. */
  recordPulls(pulls: { repository: string; tag: string; at: number }[]): Promise<void>;
}

/** A tag change as a webhook event's source, from tag_history. */
export interface TagEventRow {
  id: number;
  repository: string;
  tag: string;
  action: TagAction;
  oldDigest: string | null;
  newDigest: string | null;
  actor: string;
  at: number;
}

export interface NewDelivery {
  endpoint: string;
  eventId: string;
  eventType: string;
  payload: string;
}

export interface DeliveryRow {
  id: number;
  endpoint: string;
  eventId: string;
  eventType: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAt: number;
  createdAt: number;
  finishedAt: number | undefined;
  lastError: string | undefined;
}

export interface AttemptRecord {
  at: number;
  statusCode: number | undefined;
  error: string | undefined;
  ms: number;
}

/**
 * The durable webhook queue: tag changes are copied into one delivery per
 * matching endpoint after a cursor, and each delivery's attempts logged.
 */
export interface WebhookOutbox {
  /** Sets the cursor to the newest tag change if it was never set (history before the first start is not replayed). */
  initCursor(): Promise<void>;
  /**
   * In one transaction: reads up to `limit` tag changes after the cursor,
   * inserts the deliveries `plan` makes of them (a duplicate endpoint and
   * event id is skipped), and moves the cursor past them. Returns how many
   * changes were read. Fan-outs run one at a time (the cursor row is
   * locked), and changes are read in commit order, each exactly once, with
   * any number of concurrent writers (decision 0076): per tag, in the order
   * the changes were made.
   */
  fanOut(limit: number, plan: (events: TagEventRow[]) => NewDelivery[]): Promise<number>;
  /** The endpoint's oldest pending delivery. */
  nextPending(endpoint: string): Promise<DeliveryRow | undefined>;
  /** Logs an attempt and updates the delivery, in one transaction. */
  recordAttempt(delivery: DeliveryRow, attempt: AttemptRecord, update: { status: DeliveryRow['status']; attempts: number; nextAt: number; finishedAt: number | undefined; lastError: string | undefined }): Promise<void>;
  /** Logs a delivery made outside the queue (a test event) with its one attempt. */
  recordSent(delivery: NewDelivery & { status: 'delivered' | 'failed'; createdAt: number; finishedAt: number; lastError: string | undefined }, attempt: AttemptRecord): Promise<void>;
  deliveryCounts(endpoint: string): Promise<{ pending: number; failed: number; delivered: number }>;
  /** Newest first. */
  recentDeliveries(endpoint: string, limit: number): Promise<DeliveryRow[]>;
}

export type LifecycleStore = GcQueries & UsageQueries & RetentionQueries & PullLog & WebhookOutbox;
