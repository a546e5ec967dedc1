/**
 * Web UI sign-in: a user's name and password (checked, and throttled, like
 * any other login by the gate) open a session, a row in the store (any
 * replica answers it, a restart keeps it). The browser holds the session's
 * secret in an HttpOnly cookie; the store holds only its SHA-256 and a CSRF
 * token that the pages echo in a header on every write (the registry
 * refuses a cookie-authenticated write without it).
 *
 * Only users sign in here: access tokens are for clients, not browsers.
 * A session carries no rights of its own: each request is checked by the
 * gate against the user's live rights (a removed user's session grants
 * nothing).
 */
import { randomBytes } from 'node:crypto';
import type { SessionRecord, SessionStore } from '../store/meta/sessions.js';
import { AuthError } from './errors.js';
import { hashSecret, type AuthGate } from './gate.js';

/** How long a session lasts from sign-in. */
export const SESSION_TTL_MS = 12 * 3600_000;

export interface OpenedSession {
  /** The cookie's value: shown once, stored only as a hash. */
  secret: string;
  user: string;
  csrf: string;
  expiresAt: Date;
}

export class WebSessions {
  constructor(
    private readonly store: SessionStore,
    private readonly gate: Pick<AuthGate, 'login'>,
    private readonly ttlMs = SESSION_TTL_MS,
  ) {}

  /** Checks the password (throttled per user and address) and opens a session. */
  async signIn(user: string, password: string, ip: string): Promise<OpenedSession> {
    const identity = await this.gate.login(user, password, ip);
    if (identity.kind !== 'user') throw new AuthError('ERR_CREDENTIALS_INVALID', 'sign in with a user name and password (access tokens are for clients)');
    const secret = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.ttlMs);
    await this.store.createSession({ idHash: hashSecret(secret), user: identity.name, csrf, createdAt: now, expiresAt });
    // Sign-in is rare: sweeping expired rows here keeps the table small without a timer.
    await this.store.deleteExpiredSessions(now);
    return { secret, user: identity.name, csrf, expiresAt };
  }

  /** The live session behind a cookie's value, if any. */
  find(secret: string): Promise<SessionRecord | undefined> {
    return this.store.getSession(hashSecret(secret), new Date());
  }

  async signOut(secret: string): Promise<void> {
    await this.store.deleteSession(hashSecret(secret));
  }

  /** Ends every session of `user` (its password changed, or it was removed). */
  async signOutEverywhere(user: string): Promise<void> {
    await this.store.deleteUserSessions(user);
  }
}
