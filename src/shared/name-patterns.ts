/**
 * Sets of repository names written with the policy's globs: `*` matches
 * any run of characters, slashes included (`team/*` covers `team/app` and
 * `team/app/cache`); every other character is literal.
 *
 * A {@link NamePatterns} is how the access gate says which repositories a
 * principal may pull, and how the browse queries (src/store/meta/browse.ts)
 * filter a list in the database instead of loading every name: a name is
 * in the set when it matches every pattern of at least one conjunction.
 */

export type NamePatterns = { all: true } | { anyOf: string[][] };

export const ALL_NAMES: NamePatterns = { all: true };

const compiled = new Map<string, RegExp>();

/** Whether the glob `pattern` matches the whole of `name`. */
export function matchesGlob(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*')) return pattern === name;
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(name);
}

/** Whether `name` is in the set. */
export function inNamePatterns(set: NamePatterns, name: string): boolean {
  return 'all' in set || set.anyOf.some((all) => all.every((p) => matchesGlob(p, name)));
}

/**
 * Whether a glob could match some repository name: names are lower case
 * letters, digits and `._/-`, so a pattern with any other character
 * matches none. Used to drop such patterns before they reach SQL, whose
 * LIKE may ignore case (SQLite) where the glob does not.
 */
export function couldMatchAName(pattern: string): boolean {
  return /^[a-z0-9._/*-]*$/.test(pattern);
}

/**
 * The glob as a SQL LIKE pattern with `\` as its escape character
 * (`... LIKE ? ESCAPE '\'`): `%` and `_` are escaped, `*` becomes `%`.
 */
export function globToLike(pattern: string): string {
  return likeLiteral(pattern).replace(/\*/g, '%');
}

/** `text` as a SQL LIKE pattern matching only itself (escape character `\`). */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, '\\$&');
}
