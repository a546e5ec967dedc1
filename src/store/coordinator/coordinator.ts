/**
 * The coordinator: what must hold across requests and, scaled out, across
 * replicas. Small role interfaces; the embedded default keeps them in this
 * process ({@link InProcessCoordinator}, in-process.ts), a SQL
 * implementation keeps lease and claim rows (and advisory locks on
 * PostgreSQL). Every implementation runs test/store/coordinator-suite.ts.
 * No other module keeps such state in a Map.
 */

/** A held claim, fence, lock or lease: give it back once (later calls do nothing). */
export type Release = () => Promise<void>;

/**
 * Claims and fences on blob digests: how online GC and pushes agree
 * without stopping the registry (docs/decisions/0021-online-gc.md). A push
 * claims a digest while it makes the blob visible; GC fences digests while
 * it deletes them. They exclude each other: a fence skips claimed digests,
 * a claim waits until a fence on its digest is lifted.
 */
export interface BlobClaims {
  /** Claims `digest`, waiting while a fence holds it. */
  claim(digest: string): Promise<Release>;
  /** Fences each of `digests` that is neither claimed nor fenced; returns those and how to lift them. */
  fence(digests: Iterable<string>): Promise<{ fenced: string[]; lift: Release }>;
}

/** Mutual exclusion on names (immutable-tag pushes: `repository:tag`). */
export interface Locks {
  /** Takes every lock of `keys` (in a fixed order, so two callers cannot deadlock), waiting for holders. */
  lock(keys: string[]): Promise<Release>;
  /** Takes `key` if free; undefined if another holds it. */
  tryLock(key: string): Promise<Release | undefined>;
}

/**
 * Leader leases: one holder at a time runs a job (scheduled GC, retention,
 * a webhook endpoint's delivery queue). A lease lapses after `ttlMs` unless
 * renewed by acquiring it again, so a crashed holder cannot keep it.
 */
export interface Leases {
  /** True if this coordinator's holder has `name` now (newly, or renewed). */
  acquireLease(name: string, ttlMs: number): Promise<boolean>;
  releaseLease(name: string): Promise<void>;
}

/** Fixed-window counters (the login throttle). */
export interface Counters {
  /** Adds one to `key` and returns its count and window start; a window older than `windowMs` starts over. */
  increment(key: string, windowMs: number): Promise<{ count: number; since: number }>;
  /** The live count of `key` (undefined: none, or its window passed, which clears it). */
  read(key: string, windowMs: number): Promise<{ count: number; since: number } | undefined>;
  reset(key: string): Promise<void>;
}

export interface Coordinator extends BlobClaims, Locks, Leases, Counters {
  /** Who holds leases here (a replica's id). */
  readonly holder: string;
}
