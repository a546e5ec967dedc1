/**
 * The registry's access gate: who is asking, and may they do this. The
 * routes call it before touching storage; the auth module provides the real
 * gate, and {@link openGate} lets everyone do everything (the default only
 * on loopback).
 */
import type { IncomingHttpHeaders } from 'node:http';

export type Action = 'pull' | 'push' | 'delete';

export interface Principal {
  /** Shown in logs and tag history: a user name, `token:NAME`, or `anonymous`. */
  name: string;
}

/** What a request needs: rights on one repository, the catalog, or just a valid identity (`/v2/`). */
export type Need = { repository: string; actions: Action[] } | { catalog: true } | { base: true };

export interface RequestIdentity {
  headers: IncomingHttpHeaders;
  ip: string;
}

export interface AccessGate {
  /**
   * Authenticates the request and checks `need`. Throws an OciError
   * (UNAUTHORIZED with a WWW-Authenticate challenge, or DENIED) otherwise.
   */
  require(request: RequestIdentity, need: Need): Promise<Principal>;
  /** Whether `principal` may pull `repository` (mount sources, catalog filtering). */
  canPull(principal: Principal, repository: string): Promise<boolean>;
}

export const ANONYMOUS: Principal = { name: 'anonymous' };

export const openGate: AccessGate = {
  async require() {
    return ANONYMOUS;
  },
  async canPull() {
    return true;
  },
};
