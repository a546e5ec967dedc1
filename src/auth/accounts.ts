/**
 * The account operations behind `pier user`, `pier group`, `pier token` and
 * `pier policy`, callable from TypeScript: they work on the data folder's
 * database directly (a running registry picks the change up within a
 * second, see src/store/meta/accounts.ts). The command opens the
 * database (it is a composition root); these take the store.
 */
import { hashSecret, newAccessTokenSecret } from './gate.js';
import { hashPassword, isSupportedHash } from './password.js';
import { validateRule, type Rule } from './policy.js';
import { formatScope, parseScope } from './scope.js';
import { PierError } from '../oci/pier-error.js';
import { DURATION_HINT, parseDuration as parseDurationText } from '../shared/duration.js';
import type { TokenRecord } from '../store/meta/accounts.js';
import type { AuthStore } from './store.js';

export class AccountError extends PierError {
  readonly code = 'ERR_ACCOUNT_INVALID';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;

function checkName(kind: string, name: string): void {
  if (!NAME.test(name)) throw new AccountError(`${kind} name ${JSON.stringify(name.slice(0, 100))} must be letters, digits, '.', '_', '@' or '-' (at most 100)`);
}

export async function addUser(store: AuthStore, name: string, password: string, options: { admin?: boolean } = {}): Promise<void> {
  checkName('user', name);
  if (password.length < 8) throw new AccountError('the password must have at least 8 characters');
  await store.addUser(name, await hashPassword(password), options);
}

export async function changePassword(store: AuthStore, name: string, password: string): Promise<void> {
  if (password.length < 8) throw new AccountError('the password must have at least 8 characters');
  await store.setPassword(name, await hashPassword(password));
}

export interface ImportResult {
  added: string[];
  updated: string[];
  skipped: { user: string; reason: string }[];
}

/**
 * Imports an Apache htpasswd file. bcrypt entries (`htpasswd -B`, what
 * distribution requires) are kept as they are, so the same passwords keep
 * working; other formats (MD5, SHA1, crypt) are skipped and reported.
 * Existing users are skipped unless `update`.
 */
export async function importHtpasswd(store: AuthStore, text: string, options: { update?: boolean } = {}): Promise<ImportResult> {
  const result: ImportResult = { added: [], updated: [], skipped: [] };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const user = colon === -1 ? line : line.slice(0, colon);
    const hash = colon === -1 ? '' : line.slice(colon + 1);
    if (!NAME.test(user)) {
      result.skipped.push({ user, reason: 'invalid user name' });
      continue;
    }
    if (!isSupportedHash(hash)) {
      result.skipped.push({ user, reason: 'not a bcrypt hash (re-create it with htpasswd -B, or set a password with pier user passwd)' });
      continue;
    }
    if (await store.getUser(user)) {
      if (!options.update) {
        result.skipped.push({ user, reason: 'already exists (use --update to replace its password)' });
        continue;
      }
      await store.setPassword(user, hash);
      result.updated.push(user);
      continue;
    }
    await store.addUser(user, hash);
    result.added.push(user);
  }
  return result;
}

/** `30d`, `12h`, `2w` in seconds (the one grammar, src/shared/duration.ts); AccountError if it is not one. */
export function parseDuration(text: string): number {
  const seconds = parseDurationText(text);
  if (seconds === undefined) throw new AccountError(`invalid duration ${JSON.stringify(text)}: use ${DURATION_HINT}`);
  return seconds;
}

/** Creates an access token; returns its secret, which is never stored and cannot be shown again. */
export async function createAccessToken(
  store: AuthStore,
  options: { name: string; scopes: string[]; expiresIn?: number | undefined; owner?: string | undefined },
): Promise<{ secret: string; expiresAt: Date | undefined }> {
  checkName('token', options.name);
  if (options.scopes.length === 0) throw new AccountError('a token needs at least one --scope, such as repository:team/app:pull,push');
  const scopes = options.scopes.map((s) => {
    const entry = parseScope(s);
    if (entry.type !== 'repository') throw new AccountError(`scope ${s}: only repository scopes can be given to a token`);
    validateRule('anonymous', entry.name, entry.actions, 'token');
    return entry;
  });
  const secret = newAccessTokenSecret();
  const expiresAt = options.expiresIn === undefined ? undefined : new Date(Date.now() + options.expiresIn * 1000);
  await store.createToken({ name: options.name, secretHash: hashSecret(secret), owner: options.owner, scopes: scopes.map(formatScope), expiresAt });
  return { secret, expiresAt };
}

export async function addPolicyRule(store: AuthStore, subject: string, repositories: string, actions: string[]): Promise<number> {
  const rule: Rule = validateRule(subject, repositories, actions, 'cli');
  return store.addRule({ subject: rule.subject, repositories: rule.repositories, actions: rule.actions });
}

/** A stored access token as the admin API and `pier token ls` show it (never its secret). */
export function describeToken(t: TokenRecord): { name: string; owner: string | null; scopes: string[]; createdAt: string; expiresAt: string | null; revokedAt: string | null; lastUsedAt: string | null } {
  const iso = (d: Date | undefined) => d?.toISOString() ?? null;
  return {
    name: t.name,
    owner: t.owner ?? null,
    scopes: t.scopes,
    createdAt: t.createdAt.toISOString(),
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    lastUsedAt: iso(t.lastUsedAt),
  };
}
