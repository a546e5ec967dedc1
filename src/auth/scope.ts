/**
 * Scopes of the Docker token spec (docs/content/spec/auth/scope.md):
 * `repository:team/app:pull,push`, `registry:catalog:*`. Parsed once where
 * they enter (query string, token, CLI) into {@link AccessEntry} values.
 */
import type { Action } from './access.js';
import { PierError } from '../oci/pier-error.js';

export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

/** One resource and the actions on it, as in a token's `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export class ScopeError extends PierError {
  readonly code = 'ERR_SCOPE_INVALID';
  constructor(scope: string) {
    super(`invalid scope ${JSON.stringify(scope.slice(0, 200))}: expected TYPE:NAME:ACTIONS such as repository:team/app:pull,push`);
    this.name = 'ScopeError';
  }
}

/**
 * Parses one scope. The name may itself hold colons (`host:5000/x`), so the
 * type is the first field and the actions the last. `*` as the action of a
 * repository scope means every action.
 */
export function parseScope(scope: string): AccessEntry {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first || last === scope.length - 1) throw new ScopeError(scope);
  const rawType = scope.slice(0, first);
  // `repository(plugin):name:pull` is the spec's resource class: the class is ignored.
  const type = rawType.replace(/\([a-z0-9]+\)$/, '');
  const name = scope.slice(first + 1, last);
  const actions = [...new Set(scope.slice(last + 1).split(',').map((a) => a.trim()).filter(Boolean))];
  if (name === '' || actions.length === 0 || !/^[a-z0-9]+$/.test(type)) throw new ScopeError(scope);
  if (type === 'repository') {
    const expanded = actions.includes('*') ? [...ACTIONS] : actions;
    return { type, name, actions: expanded };
  }
  return { type, name, actions };
}

/** Parses every scope in a list of `scope` parameters, each possibly space-separated (OAuth form). */
export function parseScopes(values: string[]): AccessEntry[] {
  return values.flatMap((v) => v.split(' ')).filter((s) => s !== '').map(parseScope);
}

export function formatScope(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(',')}`;
}

export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}
