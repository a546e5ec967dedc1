/**
 * Registry authentication as a transport layer: answers `WWW-Authenticate`
 * challenges with Basic credentials or Docker's token protocol
 * (https://distribution.github.io/distribution/spec/auth/token/), including
 * anonymous tokens, OAuth2 refresh tokens (docker's `identitytoken`), and
 * refreshing tokens before they expire during long pushes.
 *
 * Tokens are cached per set of scopes; concurrent requests for the same
 * scopes share one token request.
 */
import { Buffer } from 'node:buffer';
import { ClientError, loginRequired, refusalError, reportedError, wrongPassword } from './errors.js';
import { drain, header, isReplayable, readBody, type Handler, type HttpRequest, type Layer } from './transport.js';

export interface Credential {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (docker config.json `identitytoken`). */
  identityToken?: string;
  /** A bearer token to send as is (`registrytoken`). */
  registryToken?: string;
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header (one challenge; the first Basic or Bearer wins). */
export function parseChallenge(value: string | undefined): Challenge | undefined {
  if (!value) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let p = re.exec(m[2] ?? ''); p; p = re.exec(m[2] ?? '')) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme, params };
}

/** `repository:foo:pull,push` scopes merged by resource, actions unioned, sorted: a stable cache key. */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    for (const one of scope.split(' ')) {
      if (!one) continue;
      const last = one.lastIndexOf(':');
      if (last === -1) continue;
      const resource = one.slice(0, last);
      const actions = byResource.get(resource) ?? new Set<string>();
      for (const a of one.slice(last + 1).split(',')) if (a) actions.add(a);
      byResource.set(resource, actions);
    }
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  /** The registry host:port whose requests get credentials. */
  host: string;
  /** The name to show in messages (`docker.io`). */
  registry: string;
  credential: () => Promise<Credential | undefined>;
  /** How token requests are sent (retries, user agent; not this layer). */
  send: Handler;
  now?: () => number;
  /** Refresh tokens this long before they expire (default 15 s). */
  refreshMargin?: number;
}

export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private credentialPromise: Promise<Credential | undefined> | undefined;
  /** How many tokens were fetched (tests observe refreshes). */
  tokenRequests = 0;

  constructor(private readonly options: AuthenticatorOptions) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  private credential(): Promise<Credential | undefined> {
    return (this.credentialPromise ??= this.options.credential());
  }

  /**
   * What this authenticator presents once challenged: a user name and
   * password, a token (identity or registry token), or nothing. Messages
   * use it: a 401 after a password is a wrong password.
   */
  async presented(): Promise<'password' | 'token' | 'none'> {
    const cred = await this.credential().catch(() => undefined);
    if (cred?.registryToken || cred?.identityToken) return 'token';
    return cred?.username ? 'password' : 'none';
  }

  /** The Authorization header for these scopes, or undefined when none is known to be needed. */
  private async authorization(scopes: string[], force: boolean): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const cred = await this.credential();
      if (!cred?.username) return undefined;
      return `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
    }
    const cred = await this.credential();
    if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
    const merged = mergeScopes(scopes);
    const key = merged.join(' ');
    const cached = this.tokens.get(key);
    if (!force && cached && cached.expiresAt - (this.options.refreshMargin ?? 15_000) > this.now) return `Bearer ${cached.token}`;
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(challenge, merged, cred).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async fetchToken(challenge: Challenge, scopes: string[], cred: Credential | undefined): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new ClientError('ERR_TOKEN', `${this.options.registry} asked for a token without naming a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new ClientError('ERR_TOKEN', `${this.options.registry} named an invalid token realm ${JSON.stringify(realm)}`, { cause });
    }
    const service = challenge.params.service;
    this.tokenRequests++;
    const started = this.now;
    let req: HttpRequest;
    if (cred?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'pier' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      req = { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) };
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred?.username) {
        url.searchParams.set('account', cred.username);
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
      }
      req = { method: 'GET', url, headers };
    }
    const res = await this.options.send(req);
    if (res.status === 401 || res.status === 403) {
      await drain(res);
      const registry = this.options.registry;
      const message = cred?.identityToken
        ? `the login for ${registry} has expired or was revoked; run 'pier login ${registry}'`
        : cred?.username
          ? wrongPassword(registry)
          : loginRequired(registry);
      throw new ClientError('ERR_UNAUTHORIZED', message, { status: res.status });
    }
    if (res.status === 429) {
      const reported = reportedError((await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8'));
      throw refusalError({
        ...(reported ? { reported } : {}),
        status: 429,
        what: 'getting a token',
        where: this.options.registry,
        registry: this.options.registry,
        ...(header(res, 'retry-after') ? { retryAfter: header(res, 'retry-after') } : {}),
        credentials: Boolean(cred),
        password: Boolean(cred?.username),
      });
    }
    if (res.status !== 200) {
      await drain(res);
      throw new ClientError('ERR_TOKEN', `${this.options.registry}: token server ${url.host} answered HTTP ${res.status}`, {
        status: res.status,
        retryable: res.status >= 500,
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse((await readBody(res, 1 << 20)).toString('utf8')) as typeof body;
    } catch (cause) {
      throw new ClientError('ERR_TOKEN', `${this.options.registry}: token server answered invalid JSON`, { cause });
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new ClientError('ERR_TOKEN', `${this.options.registry}: token server answered without a token`);
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresAt: started + expiresIn * 1000 };
  }

  /** Learns the scheme from a `GET /v2/` ping, so later requests authenticate up front. */
  learn(value: string | undefined): void {
    const c = parseChallenge(value);
    if (c) this.challenge = c;
  }

  layer(): Layer {
    return (next) => async (req) => {
      if (req.url.host !== this.options.host) return next(req);
      const scopes = req.scopes ?? [];
      const first = await this.authorization(scopes, false);
      const res = await next(withAuthorization(req, first));
      if (res.status !== 401) return res;
      const challenge = parseChallenge(header(res, 'www-authenticate'));
      if (!challenge) return res;
      this.challenge = challenge;
      const wanted = challenge.params.scope ? [...scopes, challenge.params.scope] : scopes;
      const second = await this.authorization(wanted, true);
      if (!second || (second === first && challenge.scheme === 'basic')) return res;
      if (!isReplayable(req.body)) {
        await drain(res);
        throw new ClientError('ERR_UNAUTHORIZED', `${this.options.registry}: credentials expired during an upload`, { retryable: true, status: 401 });
      }
      await drain(res);
      return next(withAuthorization(req, second));
    };
  }
}

function withAuthorization(req: HttpRequest, value: string | undefined): HttpRequest {
  if (!value) return req;
  return { ...req, headers: { ...req.headers, authorization: value } };
}
