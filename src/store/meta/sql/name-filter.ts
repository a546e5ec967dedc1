/**
 * A {@link NamePatterns} set as a SQL condition on a name column: each glob
 * a LIKE (`*` → `%`, `%` and `_` escaped with `\`). Patterns no repository
 * name can match (upper case, say) are dropped first, so SQLite's
 * case-blind LIKE cannot let them match.
 */
import { sql, type RawBuilder } from 'kysely';
import { couldMatchAName, globToLike, type NamePatterns } from '../../../shared/name-patterns.js';

export function namesIn(column: RawBuilder<unknown>, set: NamePatterns): RawBuilder<boolean> {
  if ('all' in set) return sql<boolean>`1 = 1`;
  const conjunctions = set.anyOf.filter((all) => all.length > 0 && all.every(couldMatchAName));
  if (conjunctions.length === 0) return sql<boolean>`1 = 0`;
  return sql<boolean>`(${sql.join(
    conjunctions.map((all) => sql`(${sql.join(all.map((p) => sql`${column} like ${globToLike(p)} escape '\\'`), sql` and `)})`),
    sql` or `,
  )})`;
}
