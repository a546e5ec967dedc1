/** Column types that differ between SQLite and PostgreSQL. */
import { sql } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

export function columnTypes(dialect: Dialect) {
  return {
    id: dialect === 'sqlite' ? sql`integer primary key autoincrement` : sql`bigint generated always as identity primary key`,
    bytes: dialect === 'sqlite' ? sql`blob` : sql`bytea`,
    // Tags and repository names sort bytewise, as the spec's "lexical order" means.
    text: dialect === 'sqlite' ? sql`text` : sql`text collate "C"`,
  };
}
