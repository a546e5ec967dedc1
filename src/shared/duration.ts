/**
 * The one duration grammar, for the registry's config (`uploads.maxAge:
 * 2h`), the CLI (`pier token create --expires 30d`) and anything else a
 * person types: a non-negative number and an optional unit, `s` (the
 * default), `m`, `h`, `d` or `w`; decimals allowed (`1.5h`).
 */

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };
const GRAMMAR = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/;

/** What a message says the grammar is. */
export const DURATION_HINT = 'a duration like 30s, 10m, 24h, 7d or 2w';

/** `text` in seconds; a finite non-negative number passes as seconds; undefined if it is not a duration. */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : undefined;
  if (typeof text !== 'string') return undefined;
  const m = GRAMMAR.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2] || 's']! : undefined;
}
