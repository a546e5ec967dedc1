/**
 * The one byte grammar and formatter, for the registry's config
 * (`manifests.maxSize: 4MiB`, quotas), the CLI (`--chunk-size 4M`) and the
 * messages either prints.
 */

/** Binary multiples: `k`, `kb` and `kib` all mean 1024 (as Docker's and our flags always have). */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** What a message says the grammar is. */
export const BYTES_HINT = 'a size like 4MiB, 512k or 1G';

/** A byte count: a non-negative integer and an optional unit (any case); a safe integer passes as is; undefined if it is not one. */
export function parseBytes(text: unknown): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * A byte count for people. `iec` (messages, the default): binary units,
 * one decimal, `512 B`, `1.5 MiB`. `docker`: what Docker's progress bars
 * print, decimal units and no space, `512B`, `12.3MB` (the push progress
 * keeps it so its lines read like `docker push`'s).
 */
export function formatBytes(n: number, style: 'iec' | 'docker' = 'iec'): string {
  const [base, units, space] = style === 'docker' ? [1000, ['B', 'kB', 'MB', 'GB', 'TB'], ''] : [1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB'], ' '];
  let v = n;
  let u = 0;
  while (v >= base && u < units.length - 1) {
    v /= base;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)}${space}${units[u]}`;
}
