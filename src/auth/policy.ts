/**
 * Authorization: rules grant actions on repository name patterns to
 * subjects, and {@link rightsOn} answers what an identity may do on one
 * repository. Pure: the rules and identities come from the config and the
 * account store.
 *
 * Subjects: `user:NAME`, `group:NAME`, `token:NAME`, `authenticated` (any
 * user or token), `anonymous` (everyone, signed in or not). Patterns are
 * globs where `*` matches any run of characters, slashes included
 * (`team/*` covers `team/app` and `team/app/cache`); `*` alone is every
 * repository. Admins may do everything.
 */
import type { Action } from './access.js';
import { ACTIONS, isAction, type AccessEntry } from './scope.js';
import { PierError } from '../oci/pier-error.js';
import { ALL_NAMES, type NamePatterns, matchesGlob } from '../shared/name-patterns.js';

export interface Rule {
  subject: string;
  /** A repository name pattern. */
  repositories: string;
  actions: Action[];
  /** Where it comes from: `config`, or the id of a `pier policy` rule. */
  origin: string;
}

export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'user'; name: string; admin: boolean; groups: string[] }
  | {
      kind: 'token';
      name: string;
      /** The scopes the token was created with (repository names may be patterns). */
      scopes: AccessEntry[];
      /** A token owned by a user never exceeds that user's rights. */
      owner: Extract<Identity, { kind: 'user' }> | undefined;
      /** When the token expires (ms since the epoch); nothing it obtains may outlive it. */
      expiresAt?: number | undefined;
    };

export const ANONYMOUS_IDENTITY: Identity = { kind: 'anonymous' };

/** The name logs, tag history and the `sub` claim use for an identity. */
export function identityName(identity: Identity): string {
  switch (identity.kind) {
    case 'anonymous':
      return 'anonymous';
    case 'user':
      return identity.name;
    case 'token':
      return `token:${identity.name}`;
  }
}

export class PolicyError extends PierError {
  readonly code = 'ERR_POLICY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

const SUBJECT = /^(?:anonymous|authenticated|(?:user|group|token):[A-Za-z0-9][A-Za-z0-9._@-]*)$/;
const PATTERN = /^[a-z0-9*][a-z0-9._/*-]*$/;

/** Checks one rule's fields, as given in the config or on the command line. */
export function validateRule(subject: string, repositories: string, actions: string[], origin: string): Rule {
  if (!SUBJECT.test(subject)) throw new PolicyError(`subject ${JSON.stringify(subject)} must be user:NAME, group:NAME, token:NAME, authenticated or anonymous`);
  if (!PATTERN.test(repositories)) throw new PolicyError(`repository pattern ${JSON.stringify(repositories)} must be a repository name, optionally with * wildcards`);
  const expanded = actions.includes('*') ? [...ACTIONS] : actions;
  const bad = expanded.find((a) => !isAction(a));
  if (bad !== undefined || expanded.length === 0) throw new PolicyError(`actions must be some of pull, push, delete (got ${JSON.stringify(bad ?? actions)})`);
  return { subject, repositories, actions: [...new Set(expanded)] as Action[], origin };
}

/** Whether the glob `pattern` matches the whole of `name` (src/shared/name-patterns.ts). */
export function matchesPattern(pattern: string, name: string): boolean {
  return matchesGlob(pattern, name);
}

/** The subjects an identity answers to, most specific last. */
function subjectsOf(identity: Identity): string[] {
  switch (identity.kind) {
    case 'anonymous':
      return ['anonymous'];
    case 'user':
      return ['anonymous', 'authenticated', `user:${identity.name}`, ...identity.groups.map((g) => `group:${g}`)];
    case 'token':
      return ['anonymous', 'authenticated', `token:${identity.name}`];
  }
}

function granted(rules: readonly Rule[], subjects: string[], repository: string, into: Set<Action>): void {
  for (const rule of rules) {
    if (!subjects.includes(rule.subject) || !matchesPattern(rule.repositories, repository)) continue;
    for (const a of rule.actions) into.add(a);
  }
}

/** Everything `identity` may do on `repository` under `rules`. */
export function rightsOn(rules: readonly Rule[], identity: Identity, repository: string): Set<Action> {
  const out = new Set<Action>();
  if (identity.kind === 'user' && identity.admin) return new Set(ACTIONS);
  if (identity.kind === 'token') {
    // A token may do what its scopes say (within its owner's rights), plus what rules grant it by name.
    const ceiling = identity.owner ? rightsOn(rules, identity.owner, repository) : new Set(ACTIONS);
    for (const scope of identity.scopes) {
      if (scope.type !== 'repository' || !matchesPattern(scope.name, repository)) continue;
      for (const a of scope.actions) if (isAction(a) && ceiling.has(a)) out.add(a);
    }
  }
  granted(rules, subjectsOf(identity), repository, out);
  return out;
}

/**
 * What a token request gets: for each scope asked, the actions both asked
 * and granted (the spec's intersection). `registry:catalog:*` is granted to
 * any signed-in identity; the catalog itself is filtered by pull rights.
 */
export function grantScopes(rules: readonly Rule[], identity: Identity, asked: AccessEntry[]): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const entry of asked) {
    let actions: string[] = [];
    if (entry.type === 'repository') {
      const rights = rightsOn(rules, identity, entry.name);
      actions = entry.actions.filter((a) => isAction(a) && rights.has(a));
    } else if (entry.type === 'registry' && entry.name === 'catalog' && identity.kind !== 'anonymous') {
      actions = entry.actions.filter((a) => a === '*');
    }
    const existing = out.find((e) => e.type === entry.type && e.name === entry.name);
    if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
    else out.push({ type: entry.type, name: entry.name, actions });
  }
  return out;
}

/**
 * Every repository `identity` may pull under `rules`, as glob patterns
 * (the same answer as `rightsOn(...).has('pull')` for each name; the
 * browse queries filter by it in the database).
 */
export function pullPatterns(rules: readonly Rule[], identity: Identity): NamePatterns {
  if (identity.kind === 'user' && identity.admin) return ALL_NAMES;
  const subjects = subjectsOf(identity);
  const granted = rules.filter((r) => subjects.includes(r.subject) && r.actions.includes('pull')).map((r) => [r.repositories]);
  if (identity.kind === 'token') {
    // A token's own scopes, each within its owner's rights.
    const ceiling = identity.owner ? pullPatterns(rules, identity.owner) : ALL_NAMES;
    for (const scope of identity.scopes) {
      if (scope.type !== 'repository' || !scope.actions.includes('pull')) continue;
      if ('all' in ceiling) granted.push([scope.name]);
      else for (const owner of ceiling.anyOf) granted.push([scope.name, ...owner]);
    }
  }
  return granted.some((g) => g.length === 1 && g[0] === '*') ? ALL_NAMES : { anyOf: granted };
}
