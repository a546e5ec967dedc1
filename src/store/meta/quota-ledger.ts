/**
 * Namespace quotas, atomically: what a namespace stores plus what is
 * reserved for bytes on their way in. A writer reserves before it writes
 * (an upload before each chunk reaches the disk, a mount or a manifest
 * before it links), so concurrent pushes cannot all pass a quota that only
 * one of them fits: the check and the reservation are one transaction.
 *
 * Reservations are rows in the metadata database, not a Map, so they hold
 * across replicas sharing it. A reservation belongs to a holder (an upload
 * session's id, or a one-off id for a mount or manifest) and is released
 * once what it reserved is linked (and so counted as stored) or abandoned.
 * One not touched since `staleBefore` (a crashed replica's) no longer
 * counts, and {@link QuotaLedger.sweep} deletes it.
 */
export interface QuotaReservation {
  /** The namespace (first path segment of a repository name). */
  namespace: string;
  /** Who holds it: an upload id, or `mount:…`/`manifest:…`. */
  holder: string;
  /** Bytes the holder needs reserved in all (an upload: its size so far plus what it is about to write). */
  total: number;
  /** The namespace's quota, bytes. */
  limit: number;
  /** Reservations last touched before this do not count. */
  staleBefore: Date;
  /** A blob the reservation is for: if the namespace stores it already, nothing needs reserving. */
  digest?: string | undefined;
}

export type ReserveResult =
  | { ok: true; /** Bytes of the quota still free after this reservation. */ free: number }
  | { ok: false; /** Bytes stored in the namespace. */ used: number; /** Bytes reserved by live holders (this one included). */ reserved: number; /** Bytes more the holder asked for. */ needed: number };

export interface QuotaLedger {
  /**
   * Atomically: raises the holder's reservation to `total` (creating it)
   * if what the namespace stores plus every live reservation, so raised,
   * stays within `limit`, and answers ok; otherwise changes nothing. A
   * holder already holding `total` or more only has its reservation
   * touched (kept live).
   */
  reserve(request: QuotaReservation): Promise<ReserveResult>;
  /** Drops the holder's reservation (no-op if it has none). */
  release(holder: string): Promise<void>;
  /** Bytes a namespace stores: each distinct blob once, however many of its repositories link it, plus manifests. */
  namespaceBytes(namespace: string): Promise<number>;
  /** Deletes reservations not touched since `staleBefore`; returns how many. */
  sweep(staleBefore: Date): Promise<number>;
}
