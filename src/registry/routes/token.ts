/**
 * The token endpoint of the Docker token spec, `/auth/token`:
 *
 * - `GET ?service=&scope=&offline_token=` with Basic credentials (a user's
 *   password or an access token) or none (anonymous): token.md.
 * - `POST` form with `grant_type=password` (username, password) or
 *   `grant_type=refresh_token`, `scope` space-separated, and
 *   `access_type=offline` for a refresh token: oauth.md.
 *
 * The token grants the intersection of what was asked and what the policy
 * allows; asking for more than allowed is not an error (the registry then
 * answers 401/403), and a repository name the registry would reject is
 * granted nothing. A token expires after `auth.tokenTtl` or with the access
 * token that obtained it, whichever is first. Failed logins count towards
 * the per-account-and-address throttle.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hashSecret, type AuthGate } from '../../auth/gate.js';
import { ANONYMOUS_IDENTITY, identityName, type Identity } from '../../auth/policy.js';
import { parseScopes } from '../../auth/scope.js';
import { AuthError } from '../../auth/errors.js';
import { RequestError } from '../request-errors.js';
import { readBody } from '../http.js';

export interface TokenRouteOptions {
  /** Lifetime of refresh tokens, seconds. */
  refreshTtl: number;
}

export function registerTokenRoute(app: FastifyInstance, gate: AuthGate, options: TokenRouteOptions): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.url.indexOf('?');
    const params = new URLSearchParams(q === -1 ? '' : req.url.slice(q + 1));
    let form = params;
    if (req.method === 'POST') {
      const body = await readBody(req.raw, 64 * 1024, () => new RequestError('ERR_FORM_TOO_LARGE', 'token request body too large'));
      form = new URLSearchParams(body.toString('utf8'));
    }
    const service = form.get('service');
    if (service !== null && service !== gate.tokens.service) {
      throw new RequestError('ERR_BAD_REQUEST', `unknown service ${JSON.stringify(service.slice(0, 100))}: this issuer serves ${JSON.stringify(gate.tokens.service)}`);
    }
    const asked = parseScopes(form.getAll('scope'));

    let identity: Identity;
    let offline: boolean;
    let refreshToken: string | undefined;
    if (req.method === 'POST') {
      const grantType = form.get('grant_type');
      offline = form.get('access_type') === 'offline';
      if (grantType === 'password') {
        identity = await gate.login(form.get('username') ?? '', form.get('password') ?? '', req.ip);
      } else if (grantType === 'refresh_token') {
        const subject = await gate.store.findRefreshToken(hashSecret(form.get('refresh_token') ?? ''));
        const found = subject === undefined ? undefined : await gate.identityOf(subject);
        if (!found) throw new AuthError('ERR_TOKEN_INVALID', 'invalid or expired refresh token');
        identity = found;
        refreshToken = form.get('refresh_token') ?? undefined;
        offline = false;
      } else {
        throw new RequestError('ERR_BAD_REQUEST', `unsupported grant_type ${JSON.stringify((grantType ?? '').slice(0, 50))}: use password or refresh_token`);
      }
    } else {
      offline = form.get('offline_token') === 'true';
      const authz = req.headers.authorization;
      if (authz !== undefined && /^basic /i.test(authz)) {
        const decoded = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon === -1) throw new AuthError('ERR_CREDENTIALS_INVALID', 'malformed Basic credentials');
        identity = await gate.login(decoded.slice(0, colon), decoded.slice(colon + 1), req.ip);
      } else {
        identity = ANONYMOUS_IDENTITY;
      }
    }

    const access = gate.grant(identity, asked);
    const subject = identity.kind === 'anonymous' ? '' : identityName(identity);
    // Neither the token nor a refresh token outlives the credential that obtained them.
    const notAfter = gate.notAfter(identity);
    if (notAfter !== undefined && notAfter - Date.now() < 1000) throw new AuthError('ERR_TOKEN_INVALID', 'the access token has expired');
    const issued = await gate.tokens.issue(subject, access.filter((a) => a.actions.length > 0), notAfter);
    if (offline && identity.kind !== 'anonymous') {
      refreshToken = randomBytes(32).toString('base64url');
      await gate.store.addRefreshToken(hashSecret(refreshToken), subject, new Date(Math.min(Date.now() + options.refreshTtl * 1000, notAfter ?? Infinity)));
    }
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    if (req.method === 'POST') body.scope = access.filter((a) => a.actions.length > 0).map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ');
    if (refreshToken !== undefined) body.refresh_token = refreshToken;
    return reply.code(200).header('content-type', 'application/json').header('cache-control', 'no-store').send(JSON.stringify(body));
  };
  app.route({ method: ['GET', 'POST'], url: '/auth/token', handler });
}
