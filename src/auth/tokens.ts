/**
 * Bearer tokens: short-lived JWTs per the Docker token spec (jwt.md), signed
 * by the key set's signer and verified against every key in it. Claims:
 * `iss`, `sub` (the identity's name, '' when anonymous), `aud` (the
 * service, a single string as distribution 2.8 parses it), `exp`, `nbf`,
 * `iat`, `jti` and `access` (the granted scopes). The header carries the
 * libtrust `kid` of the signing key.
 *
 * Verification accepts only the asymmetric algorithms of known keys, so an
 * `alg: none` token, an HS256 token "signed" with the public key, or a token
 * from an unknown key fails; verified tokens are cached until they expire,
 * so a request with a bearer token costs one map lookup.
 */
import { randomUUID } from 'node:crypto';
import type { JWTHeaderParameters, KeyObject as JoseKey } from 'jose';

/** jose, loaded by the first token issued or verified (a registry open to all never needs it). */
const jose = () => import('jose');
import type { KeySet } from './keys.js';
import type { AccessEntry } from './scope.js';
import { PierError } from '../oci/pier-error.js';

export interface TokenClaims {
  sub: string;
  access: AccessEntry[];
  /** Seconds since the epoch. */
  exp: number;
}

export class TokenError extends PierError {
  readonly code = 'ERR_TOKEN_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenError';
  }
}

export interface TokenServiceOptions {
  issuer: string;
  service: string;
  /** Lifetime of issued tokens, seconds. */
  ttl: number;
  /** Clock skew tolerated on `exp`/`nbf`, seconds. */
  leeway?: number;
  cacheSize?: number;
}

export class TokenService {
  private readonly cache = new Map<string, TokenClaims>();
  private readonly leeway: number;
  private readonly cacheSize: number;

  constructor(
    private readonly keys: KeySet,
    private readonly options: TokenServiceOptions,
  ) {
    this.leeway = options.leeway ?? 30;
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  get service(): string {
    return this.options.service;
  }

  get ttl(): number {
    return this.options.ttl;
  }

  /**
   * Signs a token for `subject` granting `access`. It expires after the
   * configured ttl or at `notAfter` (ms since the epoch: the expiry of the
   * credential that obtained it), whichever comes first, so a token never
   * outlives its source (one whose `notAfter` has passed is born expired).
   */
  async issue(subject: string, access: AccessEntry[], notAfter?: number): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const ceiling = notAfter === undefined ? Infinity : Math.floor(notAfter / 1000);
    const exp = Math.min(now + this.options.ttl, ceiling);
    const { signer } = this.keys;
    const { SignJWT } = await jose();
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: signer.alg, typ: 'JWT', kid: signer.kid })
      .setIssuer(this.options.issuer)
      .setSubject(subject)
      .setAudience(this.options.service)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(signer.privateKey);
    return { token, expiresIn: exp - now, issuedAt: new Date(now * 1000) };
  }

  /** Verifies signature, key, algorithm, issuer, audience and times. Throws {@link TokenError}. */
  async verify(token: string): Promise<TokenClaims> {
    const now = Date.now() / 1000;
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.exp + this.leeway > now) return cached;
      this.cache.delete(token);
    }
    const getKey = (header: JWTHeaderParameters): JoseKey => {
      const entry = header.kid === undefined ? undefined : this.keys.verifiers.get(header.kid);
      if (!entry) throw new TokenError(`token signed by an unknown key ${JSON.stringify(header.kid ?? null)}`);
      if (entry.alg !== header.alg) throw new TokenError(`token algorithm ${header.alg} does not match its key (${entry.alg})`);
      return entry.key;
    };
    const { errors: joseErrors, jwtVerify } = await jose();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms: ['ES256', 'RS256'],
        issuer: this.options.issuer,
        audience: this.options.service,
        clockTolerance: this.leeway,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (err instanceof TokenError) throw err;
      const reason = err instanceof joseErrors.JOSEError ? err.message : 'malformed token';
      throw new TokenError(`invalid token: ${reason}`, { cause: err });
    }
    // Only the key holder can sign odd claims, but they are still input: a malformed one is an invalid token.
    if (typeof payload.sub !== 'string') throw new TokenError('invalid token: the sub claim must be a string');
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) throw new TokenError('invalid token: the exp claim must be a number');
    if (payload.access !== undefined && !(Array.isArray(payload.access) && (payload.access as unknown[]).every(isAccessEntry))) {
      throw new TokenError('invalid token: the access claim must be a list of {type, name, actions}');
    }
    const access = (payload.access as AccessEntry[] | undefined)?.map((e) => ({ type: e.type, name: e.name, actions: [...e.actions] })) ?? [];
    const claims: TokenClaims = { sub: payload.sub, access, exp: payload.exp };
    if (this.cache.size >= this.cacheSize) {
      // Drop the oldest tenth: insertion order is issue order, roughly.
      let n = Math.ceil(this.cacheSize / 10);
      for (const key of this.cache.keys()) {
        this.cache.delete(key);
        if (--n === 0) break;
      }
    }
    this.cache.set(token, claims);
    return claims;
  }
}

function isAccessEntry(v: unknown): v is AccessEntry {
  const e = v as AccessEntry;
  return typeof e === 'object' && e !== null && typeof e.type === 'string' && typeof e.name === 'string' && Array.isArray(e.actions) && e.actions.every((a) => typeof a === 'string');
}
