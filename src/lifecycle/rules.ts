/**
 * Lifecycle rules as configured in the YAML file: immutable tags, retention,
 * quotas, webhook endpoints. Pure: parsing and matching only, no I/O. The
 * config loader (src/registry/config.ts) calls the `parse*` functions and
 * turns their {@link RuleError} into one line naming the key.
 *
 * Patterns are globs matched against the whole name: `*` matches within
 * one path segment (no `/`), `**` matches across segments, `?` one
 * character. `app/*` matches `app/web` but not `app/web/api`; `**` matches
 * every repository.
 */
import { PierError } from '../oci/pier-error.js';

export class RuleError extends PierError {
  readonly code = 'ERR_RULE_INVALID';
  constructor(
    /** Where in the list: `[2].keepLast`. */
    readonly at: string,
    message: string,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

export class Pattern {
  private readonly re: RegExp;
  private constructor(readonly source: string) {
    let body = '';
    for (let i = 0; i < source.length; i++) {
      const c = source[i]!;
      if (c === '*' && source[i + 1] === '*') {
        body += '.*';
        i++;
      } else if (c === '*') body += '[^/]*';
      else if (c === '?') body += '[^/]';
      else body += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    this.re = new RegExp(`^${body}$`);
  }

  static parse(source: unknown, at: string): Pattern {
    if (typeof source !== 'string' || source === '') throw new RuleError(at, 'must be a non-empty pattern string');
    return new Pattern(source);
  }

  matches(name: string): boolean {
    return this.re.test(name);
  }

  toJSON(): string {
    return this.source;
  }
}

export const ANY = Pattern.parse('**', '');

/** Tags matching `tags` (and not `except`) in repositories matching `repository` cannot be moved or deleted. */
export interface ImmutableTagRule {
  repository: Pattern;
  tags: Pattern[];
  except: Pattern[];
}

/**
 * Which tags retention keeps in repositories matching `repository`: the
 * `keepLast` most recently pushed, those pushed or pulled within
 * `keepDays`, and every tag matching `keep`. A tag any criterion keeps is
 * kept; a rule with neither `keepLast` nor `keepDays` deletes nothing.
 */
export interface RetentionRule {
  repository: Pattern;
  keepLast: number | undefined;
  keepDays: number | undefined;
  keep: Pattern[];
}

/** Each namespace (first path segment of a repository name) matching `namespace` may use at most `limit` bytes. */
export interface QuotaRule {
  namespace: Pattern;
  limit: number;
}

export const WEBHOOK_EVENTS = ['push', 'tag_move', 'delete', 'rollback', 'scan_complete'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];
/** An endpoint without `events` gets the tag changes; `scan_complete` only when asked for. */
const DEFAULT_WEBHOOK_EVENTS: WebhookEventType[] = ['push', 'tag_move', 'delete', 'rollback'];

export interface WebhookEndpoint {
  name: string;
  url: string;
  events: WebhookEventType[];
  repository: Pattern;
  /** HMAC-SHA256 key for the `X-Pier-Signature-256` header; undefined sends no signature. */
  secret: string | undefined;
}

type Obj = Record<string, unknown>;

function list(raw: unknown, what: string): Obj[] {
  let value = raw;
  // From an environment variable: JSON text.
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw new RuleError('', `must be a list of ${what} (YAML, or JSON in the environment variable)`);
    }
  }
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new RuleError('', `must be a list of ${what}`);
  return value.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new RuleError(`[${i}]`, `must be a mapping describing one ${what.replace(/s$/, '')}`);
    return item as Obj;
  });
}

function only(item: Obj, i: number, keys: string[]): void {
  for (const k of Object.keys(item)) if (!keys.includes(k)) throw new RuleError(`[${i}].${k}`, `unknown key (expected one of ${keys.join(', ')})`);
}

function patterns(raw: unknown, at: string, fallback: Pattern[] = []): Pattern[] {
  if (raw === undefined) return fallback;
  const items = Array.isArray(raw) ? raw : [raw];
  return items.map((p, j) => Pattern.parse(p, Array.isArray(raw) ? `${at}[${j}]` : at));
}

function count(raw: unknown, at: string): number | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) throw new RuleError(at, `must be a non-negative integer (got ${JSON.stringify(raw)})`);
  return raw;
}

export function parseImmutableTagRules(raw: unknown): ImmutableTagRule[] {
  return list(raw, 'immutable-tag rules').map((item, i) => {
    only(item, i, ['repository', 'tags', 'except']);
    if (item.tags === undefined) throw new RuleError(`[${i}].tags`, 'is required (a pattern or list of patterns, e.g. "v*")');
    return { repository: item.repository === undefined ? ANY : Pattern.parse(item.repository, `[${i}].repository`), tags: patterns(item.tags, `[${i}].tags`), except: patterns(item.except, `[${i}].except`) };
  });
}

export function parseRetentionRules(raw: unknown): RetentionRule[] {
  return list(raw, 'retention rules').map((item, i) => {
    only(item, i, ['repository', 'keepLast', 'keepDays', 'keep']);
    return {
      repository: item.repository === undefined ? ANY : Pattern.parse(item.repository, `[${i}].repository`),
      keepLast: count(item.keepLast, `[${i}].keepLast`),
      keepDays: count(item.keepDays, `[${i}].keepDays`),
      keep: patterns(item.keep, `[${i}].keep`),
    };
  });
}

/** `parseSize` is the config loader's size parser (`10GiB`), passed in to keep one grammar. */
export function parseQuotaRules(raw: unknown, parseSize: (at: string, raw: unknown) => number): QuotaRule[] {
  return list(raw, 'quota rules').map((item, i) => {
    only(item, i, ['namespace', 'limit']);
    if (item.limit === undefined) throw new RuleError(`[${i}].limit`, 'is required (a size like 10GiB)');
    return { namespace: item.namespace === undefined ? ANY : Pattern.parse(item.namespace, `[${i}].namespace`), limit: parseSize(`[${i}].limit`, item.limit) };
  });
}

export function parseWebhookEndpoints(raw: unknown, env: NodeJS.ProcessEnv): WebhookEndpoint[] {
  const names = new Set<string>();
  return list(raw, 'webhook endpoints').map((item, i) => {
    only(item, i, ['name', 'url', 'events', 'repository', 'secret', 'secretEnv']);
    const name = item.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new RuleError(`[${i}].name`, 'must be a name of letters, digits, ".", "_" or "-"');
    if (names.has(name)) throw new RuleError(`[${i}].name`, `duplicate webhook name ${JSON.stringify(name)}`);
    names.add(name);
    let url: URL;
    try {
      url = new URL(String(item.url));
    } catch {
      throw new RuleError(`[${i}].url`, `must be an http(s) URL (got ${JSON.stringify(item.url)})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RuleError(`[${i}].url`, 'must be an http(s) URL');
    const events = item.events === undefined ? [...DEFAULT_WEBHOOK_EVENTS] : Array.isArray(item.events) ? item.events : [item.events];
    for (const [j, e] of events.entries()) {
      if (!(WEBHOOK_EVENTS as readonly unknown[]).includes(e)) throw new RuleError(`[${i}].events[${j}]`, `must be one of ${WEBHOOK_EVENTS.join(', ')} (got ${JSON.stringify(e)})`);
    }
    let secret: string | undefined;
    if (item.secret !== undefined) {
      if (typeof item.secret !== 'string' || item.secret === '') throw new RuleError(`[${i}].secret`, 'must be a non-empty string');
      secret = item.secret;
    } else if (item.secretEnv !== undefined) {
      const v = typeof item.secretEnv === 'string' ? env[item.secretEnv] : undefined;
      if (!v) throw new RuleError(`[${i}].secretEnv`, `environment variable ${JSON.stringify(item.secretEnv)} is not set`);
      secret = v;
    }
    return { name, url: url.toString(), events: events as WebhookEventType[], repository: item.repository === undefined ? ANY : Pattern.parse(item.repository, `[${i}].repository`), secret };
  });
}

export function parseNameList(raw: unknown): string[] {
  let value = raw;
  if (typeof value === 'string') value = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new RuleError('', 'must be a list of names');
  return value as string[];
}

/** The namespace a repository belongs to: its first path segment. */
export function namespaceOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash === -1 ? repository : repository.slice(0, slash);
}

/** The immutable-tag rule that protects `tag` in `repository`, if any. */
export function immutableRule(rules: ImmutableTagRule[], repository: string, tag: string): ImmutableTagRule | undefined {
  return rules.find((r) => r.repository.matches(repository) && r.tags.some((p) => p.matches(tag)) && !r.except.some((p) => p.matches(tag)));
}
