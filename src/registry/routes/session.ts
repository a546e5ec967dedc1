/**
 * The web UI's session: sign in (POST /pier/v1/session), who is signed in
 * (GET), sign out (DELETE), and the checks every /pier/ request with the
 * session cookie passes through ({@link resolveSession}).
 *
 * The cookie `pier_session` is HttpOnly, SameSite=Strict, Secure when the
 * registry serves TLS, and scoped to `/pier/`: the OCI API under /v2/
 * never sees it and never authenticates by it. A request that carries the
 * cookie and writes (any method but GET and HEAD) must echo the session's
 * CSRF token in `X-Pier-CSRF`, else 403 — signing out included. Signing
 * in needs a JSON body (`Content-Type: application/json`), which a form
 * on another site cannot send without a preflight.
 */
import type { SessionResponse } from '../../api/pier-v1.js';
import { AuthError } from '../../auth/errors.js';
import { RequestError } from '../request-errors.js';
import type { Call } from '../context.js';
import { readBody } from '../http.js';

export const SESSION_COOKIE = 'pier_session';
const CSRF_HEADER = 'x-pier-csrf';

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function cookie(call: Call, value: string, maxAge: number): string {
  const secure = call.deps.config.tls !== undefined ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/pier/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`;
}

/**
 * Resolves the session cookie of a /pier/ request into `call.session`
 * (ignored when the request has an Authorization header, or the registry
 * has no accounts) and refuses a write that carries the cookie without
 * the session's CSRF token.
 */
export async function resolveSession(call: Call, pathname: string): Promise<void> {
  const sessions = call.deps.web.sessions;
  const secret = cookieValue(call.header('cookie'), SESSION_COOKIE);
  if (!sessions || secret === undefined || secret === '' || (call.header('authorization') ?? '') !== '') return;
  const method = call.req.method;
  const signingIn = method === 'POST' && pathname === '/pier/v1/session';
  if (signingIn) return;
  const session = await sessions.find(secret);
  if (method !== 'GET' && method !== 'HEAD' && (!session || call.header(CSRF_HEADER) !== session.csrf)) {
    throw new AuthError('ERR_ACCESS_DENIED', `a write made with the session cookie needs the session's ${CSRF_HEADER} header`);
  }
  call.session = session;
}

/** Handles /pier/v1/session; false for any other path. */
export async function sessionRoute(call: Call, pathname: string): Promise<boolean> {
  if (pathname !== '/pier/v1/session') return false;
  const method = call.req.method;
  let body: SessionResponse;
  if (method === 'GET') body = await describe(call);
  else if (method === 'POST') body = await signIn(call);
  else if (method === 'DELETE') body = await signOut(call);
  else throw new RequestError('ERR_METHOD_NOT_ALLOWED', `${method} is not supported on ${pathname}`);
  const bytes = Buffer.from(JSON.stringify(body));
  call.reply.code(200).header('content-type', 'application/json').header('cache-control', 'no-store').header('content-length', bytes.length);
  await call.reply.send(bytes);
  return true;
}

async function describe(call: Call): Promise<SessionResponse> {
  const deletes = call.deps.config.deletes;
  try {
    const principal = await call.deps.gate.require(call.identity(), { base: true });
    call.principal = principal;
    const open = principal.name === 'anonymous' && principal.admin === true;
    return { user: call.session ? principal.name : open ? null : principal.name, admin: principal.admin === true, csrf: call.session?.csrf ?? null, open, deletes };
  } catch (err) {
    if (err instanceof AuthError && err.code === 'ERR_UNAUTHENTICATED') return { user: null, admin: false, csrf: null, open: false, deletes };
    throw err;
  }
}

async function signIn(call: Call): Promise<SessionResponse> {
  const sessions = call.deps.web.sessions;
  if (!sessions) throw new RequestError('ERR_NO_ACCOUNTS', 'this registry has no accounts to sign in with');
  if (!(call.header('content-type') ?? '').startsWith('application/json')) {
    throw new RequestError('ERR_BAD_REQUEST', 'sign in with a JSON body (Content-Type: application/json)');
  }
  const raw = await readBody(call.req.raw, 16 * 1024, () => new RequestError('ERR_BODY_TOO_LARGE', 'request body too large'));
  call.bytesIn += raw.length;
  let user: unknown;
  let password: unknown;
  try {
    ({ username: user, password } = JSON.parse(raw.toString('utf8')) as { username?: unknown; password?: unknown });
  } catch {
    // answered below
  }
  if (typeof user !== 'string' || typeof password !== 'string' || user === '') {
    throw new RequestError('ERR_BAD_REQUEST', 'the body must be {"username": "...", "password": "..."}');
  }
  const opened = await sessions.signIn(user, password, call.req.ip);
  call.reply.header('set-cookie', cookie(call, opened.secret, Math.floor((opened.expiresAt.getTime() - Date.now()) / 1000)));
  const principal = await call.deps.gate.require({ headers: {}, ip: call.req.ip, session: opened.user }, { base: true });
  call.principal = principal;
  return { user: opened.user, admin: principal.admin === true, csrf: opened.csrf, open: false, deletes: call.deps.config.deletes };
}

async function signOut(call: Call): Promise<SessionResponse> {
  const secret = cookieValue(call.header('cookie'), SESSION_COOKIE);
  if (secret !== undefined && call.session) await call.deps.web.sessions?.signOut(secret);
  call.reply.header('set-cookie', cookie(call, '', 0));
  return { user: null, admin: false, csrf: null, open: false, deletes: call.deps.config.deletes };
}
