/** How the UI writes sizes, times and digests. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]!}`;
}

/** An ISO time as `YYYY-MM-DD hh:mm:ss UTC` (the registry sends UTC, so no Date or Intl object per row). */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const utc = iso.endsWith('Z') ? iso : new Date(iso).toISOString();
  return `${utc.slice(0, 10)} ${utc.slice(11, 19)} UTC`;
}

/** The first 12 hex characters of a digest. */
export function short(digest: string | null | undefined): string {
  if (!digest) return '—';
  const hex = digest.slice(digest.indexOf(':') + 1);
  return hex.slice(0, 12);
}
