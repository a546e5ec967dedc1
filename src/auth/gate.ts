/**
 * The registry's access gate with accounts: authenticates a request
 * (Bearer JWT, Basic user password or access token, or nobody) and checks
 * what it needs against the policy.
 *
 * Refusals are {@link AuthError}s (the registry's http-errors.ts makes them
 * HTTP answers), chosen so that nothing about a repository leaks before the
 * check:
 * - no credentials and not allowed: ERR_UNAUTHENTICATED with a challenge
 *   naming exactly the scope the request needs (401 `Bearer`: the client
 *   fetches a token and retries);
 * - a bearer token without the scope: ERR_SCOPE_INSUFFICIENT (401
 *   `error="insufficient_scope"`, what distribution answers);
 * - valid Basic credentials without the right: ERR_ACCESS_DENIED (403);
 * - bad credentials: ERR_CREDENTIALS_INVALID (401); too many bad ones from
 *   one address: ERR_LOGIN_THROTTLED (429).
 *
 * Costs: a bearer token is verified once and cached until it expires; a
 * Basic credential is verified with the slow hash once, then cached for
 * `cacheTtl` under an HMAC of user and password (never the password). Every
 * cache is dropped when the store's generation changes (polled each second).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { AccessGate, Action, Need, Principal, RequestIdentity } from './access.js';
import { AuthError, type Challenge } from './errors.js';
import { isRepositoryName } from '../oci/reference.js';
import { dummyVerify, verifyPassword } from './password.js';
import { ANONYMOUS_IDENTITY, grantScopes, identityName, pullPatterns, rightsOn, type Identity, type Rule } from './policy.js';
import { ALL_NAMES, type NamePatterns } from '../shared/name-patterns.js';
import type { AccessEntry } from './scope.js';
import { storedRules, tokenScopes, type AuthStore } from './store.js';
import type { LoginThrottle } from './throttle.js';
import { TokenError, type TokenClaims, type TokenService } from './tokens.js';

/** Access tokens are `pier_` and 43 characters of base64url; only their SHA-256 is stored. */
export const ACCESS_TOKEN_PREFIX = 'pier_';

export function newAccessTokenSecret(): string {
  return `${ACCESS_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface AuthPrincipal extends Principal {
  identity: Identity;
  /** How the request proved it: the gate answers 401 or 403 accordingly. */
  via: 'anonymous' | 'basic' | 'bearer' | 'session' | 'open';
  claims?: TokenClaims;
  /** An admin user (or anyone, while the registry is open): the lifecycle API's admin check reads this. */
  admin: boolean;
}

export interface GateSettings {
  service: string;
  /** The token endpoint's URL; when unset, derived from the request's Host. */
  realm: string | undefined;
  /** Scheme used for a derived realm. */
  https: boolean;
  /** Seconds a verified Basic credential stays cached. */
  cacheTtl: number;
  /** Rules from the config file (rules from `pier policy` are read from the store). */
  rules: Rule[];
  /** Serve everyone everything while no user, token or rule exists (loopback, or --insecure-open). */
  openWhenEmpty: boolean;
}

type Logger = { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

const OPEN_PRINCIPAL: AuthPrincipal = { name: 'anonymous', identity: ANONYMOUS_IDENTITY, via: 'open', admin: true };

function isAdmin(identity: Identity): boolean {
  return identity.kind === 'user' && identity.admin;
}

export class AuthGate implements AccessGate {
  private generation = -1;
  private rules: Rule[] = [];
  private open = false;
  private readonly identities = new Map<string, Identity | null>();
  private readonly credentials = new Map<string, { identity: Identity; until: number }>();
  private readonly inflight = new Map<string, Promise<Identity | undefined>>();
  private readonly hmacKey = randomBytes(32);
  private poll: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    readonly store: AuthStore,
    readonly tokens: TokenService,
    private readonly throttle: LoginThrottle,
    private readonly settings: GateSettings,
    private readonly log: Logger,
  ) {}

  /** Loads the state and starts following the store's generation. */
  async start(pollMs = 1000): Promise<void> {
    await this.refresh();
    this.poll = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.error({ err }, 'reloading accounts and policy failed'));
    }, pollMs);
    this.poll.unref();
  }

  stop(): void {
    clearInterval(this.poll);
  }

  /** Whether the registry serves everyone everything (nothing configured yet). */
  get isOpen(): boolean {
    return this.open;
  }

  /** Re-reads rules and counts, and drops caches, if anything changed since last time. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const generation = await this.store.generation();
        if (generation === this.generation) return;
        const stored = await storedRules(this.store);
        const counts = await this.store.counts();
        this.rules = [...this.settings.rules, ...stored];
        this.open = this.settings.openWhenEmpty && counts.users === 0 && counts.tokens === 0 && this.rules.length === 0;
        this.identities.clear();
        this.credentials.clear();
        this.generation = generation;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  // --- AccessGate ---

  async require(request: RequestIdentity, need: Need): Promise<Principal> {
    if (this.open) return OPEN_PRINCIPAL;
    const principal = await this.authenticate(request, need);
    if ('base' in need) return principal;
    if ('catalog' in need) {
      const ok = principal.via === 'bearer' ? hasAccess(principal.claims!.access, 'registry', 'catalog', ['*']) : principal.via === 'basic' || principal.via === 'session';
      if (ok) return principal;
      throw this.refusal(request, principal, 'registry:catalog:*', undefined);
    }
    const rights = rightsOn(this.rules, principal.identity, need.repository);
    let ok = need.actions.every((a) => rights.has(a));
    if (ok && principal.via === 'bearer') ok = hasAccess(principal.claims!.access, 'repository', need.repository, need.actions);
    if (ok) return principal;
    throw this.refusal(request, principal, `repository:${need.repository}:${need.actions.join(',')}`, need.repository);
  }

  async canPull(principal: Principal, repository: string): Promise<boolean> {
    if (this.open) return true;
    const identity = (principal as Partial<AuthPrincipal>).identity ?? ANONYMOUS_IDENTITY;
    return rightsOn(this.rules, identity, repository).has('pull');
  }

  async pullable(principal: Principal): Promise<NamePatterns> {
    if (this.open) return ALL_NAMES;
    return pullPatterns(this.rules, (principal as Partial<AuthPrincipal>).identity ?? ANONYMOUS_IDENTITY);
  }

  async rights(principal: Principal, repository: string): Promise<Action[]> {
    if (this.open) return ['pull', 'push', 'delete'];
    const p = principal as Partial<AuthPrincipal>;
    const rights = [...rightsOn(this.rules, p.identity ?? ANONYMOUS_IDENTITY, repository)];
    return p.via === 'bearer' ? rights.filter((a) => hasAccess(p.claims?.access ?? [], 'repository', repository, [a])) : rights;
  }

  /**
   * The live policy allows pulling `repository` and, for a bearer token,
   * so does the token's `access` claim: the token is the grant, so a mount
   * from a repository it does not name is refused even when the policy
   * would allow it.
   */
  async canMountFrom(principal: Principal, repository: string): Promise<boolean> {
    if (!(await this.canPull(principal, repository))) return false;
    const p = principal as Partial<AuthPrincipal>;
    return this.open || p.via !== 'bearer' || hasAccess(p.claims?.access ?? [], 'repository', repository, ['pull']);
  }

  // --- for the token endpoint ---

  /** What `identity` gets of the scopes asked (all of them while the registry is open). */
  grant(identity: Identity, asked: AccessEntry[]): AccessEntry[] {
    // A name the registry would reject gets nothing, whatever the rules' patterns match.
    const valid = asked.filter((a) => a.type !== 'repository' || isRepositoryName(a.name));
    if (this.open) return valid;
    return grantScopes(this.rules, identity, valid);
  }

  /** When a token issued to `identity` must expire at the latest (ms since the epoch): its access token's expiry. */
  notAfter(identity: Identity): number | undefined {
    return identity.kind === 'token' ? identity.expiresAt : undefined;
  }

  /**
   * Checks a user's password or an access token (given as the password;
   * the user name is then free). Throws 429 while this account is
   * throttled from this address, and 401 on failure, which counts towards
   * the throttle; a success (from the cache too) clears the count.
   */
  async login(user: string, password: string, ip: string): Promise<Identity> {
    const wait = await this.throttle.retryAfter(user, ip);
    if (wait > 0) {
      throw new AuthError('ERR_LOGIN_THROTTLED', `too many failed logins for ${JSON.stringify(user.slice(0, 100))} from ${ip}; retry in ${wait} s`, { retryAfter: wait });
    }
    const key = createHmac('sha256', this.hmacKey).update(user).update('\0').update(password).digest('base64');
    const now = Date.now();
    const cached = this.credentials.get(key);
    let identity: Identity | undefined;
    if (cached && cached.until > now) {
      identity = cached.identity;
    } else {
      let pending = this.inflight.get(key);
      if (!pending) {
        const generation = this.generation;
        pending = this.checkCredentials(user, password).then((found) => {
          if (found && generation === this.generation) {
            const expiry = found.kind === 'token' ? found.expiresAt : undefined;
            this.credentials.set(key, { identity: found, until: Math.min(now + this.settings.cacheTtl * 1000, expiry ?? Infinity) });
          }
          return found;
        });
        this.inflight.set(key, pending);
        void pending.finally(() => this.inflight.delete(key)).catch(() => undefined);
      }
      identity = await pending;
    }
    if (!identity) {
      await this.throttle.failed(user, ip);
      this.audit({ actor: user.slice(0, 100) || '(empty)', ip, action: 'login', outcome: 'failed' });
      throw new AuthError('ERR_CREDENTIALS_INVALID', 'invalid username or password', { challenge: this.challenge(undefined, undefined, undefined) });
    }
    await this.throttle.succeeded(user, ip);
    return identity;
  }

  /** The live identity behind a token's `sub` (or a refresh token's subject); undefined once deleted or revoked. */
  async identityOf(subject: string): Promise<Identity | undefined> {
    if (subject === '' || subject === 'anonymous') return ANONYMOUS_IDENTITY;
    const cached = this.identities.get(subject);
    if (cached !== undefined) return cached === null || expired(cached) ? undefined : cached;
    let identity: Identity | undefined;
    if (subject.startsWith('token:')) {
      const record = await this.store.getToken(subject.slice(6));
      if (record && record.revokedAt === undefined && (record.expiresAt === undefined || record.expiresAt.getTime() > Date.now())) {
        identity = await this.tokenIdentity(record.name, record.owner, tokenScopes(record), record.expiresAt);
      }
    } else {
      const user = await this.store.getUser(subject);
      if (user) identity = { kind: 'user', name: user.name, admin: user.admin, groups: user.groups };
    }
    this.identities.set(subject, identity ?? null);
    return identity;
  }

  /** Where and for what a client gets a token (the registry answers it as `WWW-Authenticate: Bearer`). */
  challenge(request: RequestIdentity | undefined, scope: string | undefined, error: Challenge['error']): Challenge {
    let realm = this.settings.realm;
    if (realm === undefined) {
      const host = request?.headers.host ?? 'localhost';
      realm = `${this.settings.https ? 'https' : 'http'}://${host}/auth/token`;
    }
    return { realm, service: this.settings.service, scope, error };
  }

  // --- internals ---

  private async tokenIdentity(name: string, owner: string | undefined, scopes: AccessEntry[], expiresAt: Date | undefined): Promise<Identity | undefined> {
    let ownerIdentity: Extract<Identity, { kind: 'user' }> | undefined;
    if (owner !== undefined) {
      const o = await this.identityOf(owner);
      if (!o || o.kind !== 'user') return undefined;
      ownerIdentity = o;
    }
    return { kind: 'token', name, scopes, owner: ownerIdentity, expiresAt: expiresAt?.getTime() };
  }

  private async checkCredentials(user: string, password: string): Promise<Identity | undefined> {
    if (password.startsWith(ACCESS_TOKEN_PREFIX)) {
      const record = await this.store.findToken(hashSecret(password));
      if (!record || record.revokedAt !== undefined || (record.expiresAt !== undefined && record.expiresAt.getTime() <= Date.now())) return undefined;
      return this.tokenIdentity(record.name, record.owner, tokenScopes(record), record.expiresAt);
    }
    const record = await this.store.getUser(user);
    if (!record) {
      await dummyVerify(password);
      return undefined;
    }
    if (!(await verifyPassword(password, record.passwordHash))) return undefined;
    return { kind: 'user', name: record.name, admin: record.admin, groups: record.groups };
  }

  private async authenticate(request: RequestIdentity, need: Need): Promise<AuthPrincipal> {
    const header = request.headers.authorization;
    if ((header === undefined || header === '') && request.session !== undefined) {
      // A web UI session: the user's live rights (a removed user has none left).
      const identity = await this.identityOf(request.session);
      if (identity?.kind === 'user') return { name: identity.name, identity, via: 'session', admin: isAdmin(identity) };
    }
    if (header === undefined || header === '') {
      if ('base' in need) throw new AuthError('ERR_UNAUTHENTICATED', 'authentication required', { challenge: this.challenge(request, undefined, undefined) });
      return { name: 'anonymous', identity: ANONYMOUS_IDENTITY, via: 'anonymous', admin: false };
    }
    const space = header.indexOf(' ');
    const scheme = header.slice(0, space).toLowerCase();
    const value = header.slice(space + 1).trim();
    if (scheme === 'bearer') {
      let claims: TokenClaims;
      try {
        claims = await this.tokens.verify(value);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        throw new AuthError('ERR_TOKEN_INVALID', err.message, { challenge: this.challenge(request, scopeOf(need), 'invalid_token'), cause: err });
      }
      const identity = await this.identityOf(claims.sub);
      if (!identity) {
        throw new AuthError('ERR_TOKEN_INVALID', 'the token\'s subject no longer exists or was revoked', { challenge: this.challenge(request, scopeOf(need), 'invalid_token') });
      }
      return { name: identityName(identity), identity, via: 'bearer', claims, admin: isAdmin(identity) };
    }
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon === -1) throw new AuthError('ERR_CREDENTIALS_INVALID', 'malformed Basic credentials', { challenge: this.challenge(request, scopeOf(need), undefined) });
      const identity = await this.login(decoded.slice(0, colon), decoded.slice(colon + 1), request.ip).catch((err: unknown) => {
        // Name the scope in the challenge, as for any other 401 here.
        if (err instanceof AuthError && err.code === 'ERR_CREDENTIALS_INVALID') {
          throw new AuthError('ERR_CREDENTIALS_INVALID', err.message, { challenge: this.challenge(request, scopeOf(need), undefined) });
        }
        throw err;
      });
      return { name: identityName(identity), identity, via: 'basic', admin: isAdmin(identity) };
    }
    throw new AuthError('ERR_CREDENTIALS_INVALID', `unsupported authorization scheme ${JSON.stringify(scheme.slice(0, 20))}`, { challenge: this.challenge(request, scopeOf(need), undefined) });
  }

  private refusal(request: RequestIdentity, principal: AuthPrincipal, scope: string, repository: string | undefined): AuthError {
    if (principal.via === 'anonymous') {
      return new AuthError('ERR_UNAUTHENTICATED', 'authentication required', { challenge: this.challenge(request, scope, undefined) });
    }
    this.audit({ actor: principal.name, ip: request.ip, action: scope.slice(scope.lastIndexOf(':') + 1), repository, target: scope, outcome: 'denied' });
    if (principal.via === 'bearer') {
      return new AuthError('ERR_SCOPE_INSUFFICIENT', 'the token does not grant this access', { challenge: this.challenge(request, scope, 'insufficient_scope') });
    }
    return new AuthError('ERR_ACCESS_DENIED', `${principal.name} may not ${scope.split(':').pop() ?? ''} ${repository ?? 'the catalog'}`);
  }

  private audit(entry: { actor: string; ip: string; action: string; repository?: string | undefined; target?: string; outcome: 'denied' | 'failed' }): void {
    this.store
      .record({ at: new Date(), actor: entry.actor, ip: entry.ip, action: entry.action, repository: entry.repository, target: entry.target, outcome: entry.outcome })
      .catch((err: unknown) => this.log.error({ err }, 'writing the audit log failed'));
  }
}

/** Whether a token identity has passed its expiry (users do not expire). */
function expired(identity: Identity): boolean {
  return identity.kind === 'token' && identity.expiresAt !== undefined && identity.expiresAt <= Date.now();
}

function scopeOf(need: Need): string | undefined {
  if ('repository' in need) return `repository:${need.repository}:${need.actions.join(',')}`;
  if ('catalog' in need) return 'registry:catalog:*';
  return undefined;
}

function hasAccess(access: AccessEntry[], type: string, name: string, actions: string[]): boolean {
  const have = new Set<string>();
  for (const e of access) if (e.type === type && e.name === name) for (const a of e.actions) have.add(a);
  return actions.every((a) => have.has(a));
}
