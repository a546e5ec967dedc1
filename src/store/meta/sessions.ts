/**
 * Web UI sessions (the registry's browser sign-in): a row per session, so
 * any replica behind a load balancer answers a signed-in browser, and a
 * restart signs nobody out. The store keeps only the SHA-256 of the
 * session's secret (the cookie value) and the CSRF token the pages must
 * echo on every write. One SQL implementation (sql/sql-session-store.ts);
 * test/store/session-store-suite.ts is the shared suite.
 */

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie's secret. */
  idHash: string;
  /** The signed-in user's name. */
  user: string;
  /** Echoed by the pages in `X-Pier-CSRF` on every write. */
  csrf: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface SessionStore {
  createSession(session: SessionRecord): Promise<void>;
  /** The session with this hash, unless it has expired by `now`. */
  getSession(idHash: string, now: Date): Promise<SessionRecord | undefined>;
  /** Returns whether a session was deleted. */
  deleteSession(idHash: string): Promise<boolean>;
  /** Deletes every session of `user` (removed users are signed out everywhere); returns how many. */
  deleteUserSessions(user: string): Promise<number>;
  /** Deletes sessions expired by `now`; returns how many. */
  deleteExpiredSessions(now: Date): Promise<number>;
}
