/**
 * The access contract: who is asking, and may they do this. The auth
 * module owns it (the registry's routes and the repository service consume
 * it); {@link AuthGate} in gate.ts is the real gate, and {@link openGate}
 * lets everyone do everything (the default only on loopback).
 *
 * Nothing here speaks HTTP: a refusal is an {@link AuthError} with a stable
 * code and the challenge data; src/registry/http-errors.ts turns it into a
 * 401/403/429 with its `WWW-Authenticate` or `Retry-After`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ALL_NAMES, type NamePatterns } from '../shared/name-patterns.js';

export type Action = 'pull' | 'push' | 'delete';

export interface Principal {
  /** Shown in logs and tag history: a user name, `token:NAME`, or `anonymous`. */
  name: string;
  /** An admin (or anyone, while the registry is open): the lifecycle API's admin check reads this. */
  admin?: boolean;
}

/** What a request needs: rights on one repository, the catalog, or just a valid identity (`/v2/`). */
export type Need = { repository: string; actions: Action[] } | { catalog: true } | { base: true };

export interface RequestIdentity {
  headers: IncomingHttpHeaders;
  ip: string;
  /**
   * The user of a web UI session, resolved by the registry from the
   * session cookie (src/auth/sessions.ts); used only when the request has
   * no Authorization header.
   */
  session?: string | undefined;
}

export interface AccessGate {
  /**
   * Authenticates the request and checks `need`. Throws an AuthError
   * (src/auth/errors.ts) otherwise.
   */
  require(request: RequestIdentity, need: Need): Promise<Principal>;
  /** Whether the live policy lets `principal` pull `repository` (catalog filtering). */
  canPull(principal: Principal, repository: string): Promise<boolean>;
  /**
   * Whether `principal` may mount a blob from `repository`: pull rights on
   * it by the live policy and, for a bearer token, by the token's own
   * grant (a token never reaches a repository it does not name).
   */
  canMountFrom(principal: Principal, repository: string): Promise<boolean>;
  /**
   * Every repository the live policy lets `principal` pull, as patterns
   * (what `canPull` answers name by name): lists are filtered by it in
   * the database rather than name by name.
   */
  pullable(principal: Principal): Promise<NamePatterns>;
  /** What the live policy lets `principal` do on `repository` (the web UI offers only these actions; each request is checked again). */
  rights(principal: Principal, repository: string): Promise<Action[]>;
}

export const ANONYMOUS: Principal = { name: 'anonymous' };

export const openGate: AccessGate = {
  async require() {
    return ANONYMOUS;
  },
  async canPull() {
    return true;
  },
  async canMountFrom() {
    return true;
  },
  async pullable() {
    return ALL_NAMES;
  },
  async rights() {
    return ['pull', 'push', 'delete'];
  },
};
