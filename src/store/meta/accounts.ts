/**
 * Accounts, tokens, policy rules and the audit log: small role interfaces
 * that src/auth uses and one SQL implementation (sql/sql-account-store.ts)
 * fulfils, for SQLite now and PostgreSQL later; test/store/account-store-suite.ts
 * is the shared suite.
 *
 * Every change to a credential or a rule bumps a generation in the same
 * transaction; running registries poll it and drop their caches, so
 * `pier user rm` or `pier token revoke` from another process takes effect
 * within the poll interval.
 *
 * The store knows nothing of what a scope or rule means: it keeps them as
 * written, and src/auth parses them.
 */
import { PierError } from '../../oci/pier-error.js';

export type AccountStoreErrorCode = 'ERR_USER_EXISTS' | 'ERR_USER_UNKNOWN' | 'ERR_GROUP_EXISTS' | 'ERR_GROUP_UNKNOWN' | 'ERR_TOKEN_EXISTS' | 'ERR_TOKEN_UNKNOWN' | 'ERR_RULE_UNKNOWN';

/** A domain error with a stable code; the CLI prints its message. */
export class AuthStoreError extends PierError {
  constructor(
    readonly code: AccountStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface UserRecord {
  name: string;
  passwordHash: string;
  admin: boolean;
  groups: string[];
  createdAt: Date;
}

export interface TokenRecord {
  name: string;
  owner: string | undefined;
  /** Scopes as written (`repository:team/app:pull,push`); src/auth parses them. */
  scopes: string[];
  createdAt: Date;
  expiresAt: Date | undefined;
  revokedAt: Date | undefined;
  lastUsedAt: Date | undefined;
}

export interface AuditEntry {
  at: Date;
  actor: string;
  ip: string | undefined;
  /** `push`, `delete`, `denied`, `login-failed`, `token-issued`, ... */
  action: string;
  repository: string | undefined;
  /** What was acted on: a tag or digest, the scope asked, ... */
  target: string | undefined;
  outcome: 'ok' | 'denied' | 'failed';
}

export interface UserStore {
  addUser(name: string, passwordHash: string, options?: { admin?: boolean }): Promise<void>;
  setPassword(name: string, passwordHash: string): Promise<void>;
  setAdmin(name: string, admin: boolean): Promise<void>;
  removeUser(name: string): Promise<void>;
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
}

export interface GroupStore {
  addGroup(name: string): Promise<void>;
  removeGroup(name: string): Promise<void>;
  addMember(group: string, user: string): Promise<void>;
  removeMember(group: string, user: string): Promise<void>;
  listGroups(): Promise<{ name: string; members: string[] }[]>;
}

export interface TokenStore {
  createToken(token: { name: string; secretHash: string; owner?: string | undefined; scopes: string[]; expiresAt?: Date | undefined }): Promise<void>;
  /** A token by the hash of its secret, revoked or not. */
  findToken(secretHash: string): Promise<TokenRecord | undefined>;
  getToken(name: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  revokeToken(name: string): Promise<void>;
  addRefreshToken(secretHash: string, subject: string, expiresAt: Date): Promise<void>;
  /** The subject of a live refresh token. */
  findRefreshToken(secretHash: string): Promise<string | undefined>;
}

/** A `pier policy` rule as stored; src/auth/policy.ts validates it into a Rule. */
export interface StoredRule {
  id: number;
  subject: string;
  repositories: string;
  actions: string[];
}

export interface PolicyStore {
  addRule(rule: Omit<StoredRule, 'id'>): Promise<number>;
  removeRule(id: number): Promise<void>;
  listRules(): Promise<StoredRule[]>;
}

/** Which audit entries to list: each given field must match exactly; `before` pages (entries with a smaller id). */
export interface AuditQuery {
  limit?: number;
  actor?: string;
  repository?: string;
  action?: string;
  /** Only entries older than the entry with this id (the `id` of the last entry of the previous page). */
  before?: number;
}

export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
  /** Newest first (by id, the order they were recorded in), at most `limit` (default 100). */
  list(options?: AuditQuery): Promise<(AuditEntry & { id: number })[]>;
}

export interface AuthGeneration {
  /** Bumped by every change to users, groups, tokens or rules. */
  generation(): Promise<number>;
  /** How many users, live tokens and rules exist (zero of all: nothing configured). */
  counts(): Promise<{ users: number; tokens: number; rules: number }>;
}

/** Who changes accounts, tokens and policy through a store, for the audit log. */
export interface AuditActor {
  name: string;
  ip?: string | undefined;
}

export interface AuditedChanges {
  /**
   * The same store, recording its changes as made by `actor` (an admin
   * API request; the local commands' store records `local:<os user>`).
   * Every change (user, group, token, rule) writes its audit entry in its
   * own transaction: actions `user-add`, `user-password`, `user-admin`,
   * `user-remove`, `group-add`, `group-remove`, `group-member-add`,
   * `group-member-remove`, `token-create`, `token-revoke`, `policy-add`,
   * `policy-remove`.
   */
  as(actor: AuditActor): AccountStore;
}

export type AccountStore = UserStore & GroupStore & TokenStore & PolicyStore & AuditLog & AuthGeneration & AuditedChanges;
