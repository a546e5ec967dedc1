/**
 * Version ordering per package ecosystem, for matching installed versions
 * against OSV ranges. Debian (dpkg), Alpine (apk-tools) and RPM
 * (rpmvercmp) are written here and test-vectored
 * (test/supply/versions.test.ts); semver (npm, Go) and PEP 440 (PyPI) use
 * the maintained libraries. Each comparator returns <0, 0 or >0 and never
 * throws; {@link compareFor} returns undefined for an ecosystem it cannot
 * order (such ranges are not matched, and the scan says so).
 */
import { createRequire } from 'node:module';
import type Semver from 'semver';
import type * as Pep440 from '@renovatebot/pep440';

// semver and PEP 440 load at the first comparison that needs them, not when
// the registry starts (decision 0133): both are CommonJS, so a synchronous
// require keeps the comparators synchronous.
const requireLazily = createRequire(import.meta.url);
let semverModule: typeof Semver | undefined;
let pep440Module: typeof Pep440 | undefined;
const semverLib = (): typeof Semver => (semverModule ??= requireLazily('semver') as typeof Semver);
const pep440Lib = (): typeof Pep440 => (pep440Module ??= requireLazily('@renovatebot/pep440') as typeof Pep440);

export type Comparator = (a: string, b: string) => number;

// ---- Debian (dpkg lib/dpkg/version.c)

function debOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c >= '0' && c <= '9') return 0;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const ac = debOrder(i < a.length && !/\d/.test(a[i]!) ? a[i] : undefined);
      const bc = debOrder(j < b.length && !/\d/.test(b[j]!) ? b[j] : undefined);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (i < a.length && /\d/.test(a[i]!) && j < b.length && /\d/.test(b[j]!)) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && /\d/.test(a[i]!)) return 1;
    if (j < b.length && /\d/.test(b[j]!)) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** `[epoch:]upstream[-revision]` (Debian) or `[epoch:]version[-release]` (RPM): a missing epoch is 0, a missing last part ''. */
function splitEpochRelease(v: string): [number, string, string] {
  let rest = v.trim();
  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? [epoch, rest.slice(0, dash), rest.slice(dash + 1)] : [epoch, rest, ''];
}

/** dpkg's ordering: epoch, then upstream version, then Debian revision, with `~` sorting before everything. */
export function compareDebian(a: string, b: string): number {
  const [ea, ua, ra] = splitEpochRelease(a);
  const [eb, ub, rb] = splitEpochRelease(b);
  if (ea !== eb) return ea - eb;
  return verrevcmp(ua, ub) || verrevcmp(ra, rb);
}

// ---- RPM (rpmio/rpmvercmp.c)

/** rpmvercmp: alternating alphabetic and numeric segments; `~` sorts first, `^` after the end but before more. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const alnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
  while (i < a.length || j < b.length) {
    while (i < a.length && !alnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !alnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;
    const numeric = /\d/.test(a[i]!);
    const re = numeric ? /\d/ : /[A-Za-z]/;
    const si = i;
    const sj = j;
    while (i < a.length && re.test(a[i]!)) i++;
    while (j < b.length && re.test(b[j]!)) j++;
    let sa = a.slice(si, i);
    let sb = b.slice(sj, j);
    // The segments differ in kind: numeric is newer.
    if (sb.length === 0) return numeric ? 1 : -1;
    if (numeric) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1;
  }
  const restA = i < a.length;
  const restB = j < b.length;
  if (!restA && !restB) return 0;
  return restA ? 1 : -1;
}

/** RPM [epoch:]version[-release], each part by rpmvercmp (a missing epoch is 0). */
export function compareRpm(a: string, b: string): number {
  const [ea, va, ra] = splitEpochRelease(a);
  const [eb, vb, rb] = splitEpochRelease(b);
  if (ea !== eb) return ea < eb ? -1 : 1;
  const v = rpmvercmp(va, vb);
  if (v !== 0) return v;
  if (ra === '' || rb === '') return 0;
  return rpmvercmp(ra, rb);
}

// ---- Alpine (apk-tools src/version.c)

/** Pre-release suffixes sort before the bare version, post-release ones after. */
const APK_SUFFIXES: Record<string, number> = { alpha: -4, beta: -3, pre: -2, rc: -1, cvs: 1, svn: 2, git: 3, hg: 4, p: 5 };

interface ApkVersion {
  numbers: string[];
  letter: string;
  suffixes: [number, bigint][];
  revision: bigint;
}

function parseApk(v: string): ApkVersion | undefined {
  const m = /^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:~[0-9a-f]+)?(?:-r(\d+))?$/.exec(v.trim());
  if (!m) return undefined;
  const suffixes: [number, bigint][] = [];
  for (const s of m[3]!.split('_').slice(1)) {
    const sm = /^([a-z]+)(\d*)$/.exec(s)!;
    suffixes.push([APK_SUFFIXES[sm[1]!]!, BigInt(sm[2] || '0')]);
  }
  return { numbers: m[1]!.split('.'), letter: m[2]!, suffixes, revision: BigInt(m[4] ?? '0') };
}

/**
 * apk's ordering: dotted numbers (after the first, a component with a
 * leading zero compares as a decimal fraction), a letter, suffixes
 * (`_alpha` < `_beta` < `_pre` < `_rc` < none < `_cvs` < `_svn` < `_git`
 * < `_hg` < `_p`), then `-rN`. An unparsable version falls back to a
 * string comparison.
 */
export function compareApk(a: string, b: string): number {
  const pa = parseApk(a);
  const pb = parseApk(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  const n = Math.max(pa.numbers.length, pb.numbers.length);
  for (let k = 0; k < n; k++) {
    const x = pa.numbers[k];
    const y = pb.numbers[k];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    let c: number;
    if (k > 0 && (x.startsWith('0') || y.startsWith('0'))) {
      // Fractional comparison: compare as strings padded on the right.
      const len = Math.max(x.length, y.length);
      const xs = x.padEnd(len, '0');
      const ys = y.padEnd(len, '0');
      c = xs < ys ? -1 : xs > ys ? 1 : 0;
    } else {
      const bx = BigInt(x);
      const by = BigInt(y);
      c = bx < by ? -1 : bx > by ? 1 : 0;
    }
    if (c !== 0) return c;
  }
  if (pa.letter !== pb.letter) {
    if (pa.letter === '') return -1;
    if (pb.letter === '') return 1;
    return pa.letter < pb.letter ? -1 : 1;
  }
  const m = Math.max(pa.suffixes.length, pb.suffixes.length);
  for (let k = 0; k < m; k++) {
    const [ta, na] = pa.suffixes[k] ?? [0, 0n];
    const [tb, nb] = pb.suffixes[k] ?? [0, 0n];
    if (ta !== tb) return ta - tb;
    if (na !== nb) return na < nb ? -1 : 1;
  }
  return pa.revision < pb.revision ? -1 : pa.revision > pb.revision ? 1 : 0;
}

// ---- language ecosystems

function compareSemver(a: string, b: string): number {
  const semver = semverLib();
  const x = semver.valid(a.replace(/^v/, ''), { loose: true });
  const y = semver.valid(b.replace(/^v/, ''), { loose: true });
  if (x && y) return semver.compare(x, y, { loose: true });
  // Unparsable on either side: fall back to coerced versions (Go pseudo-versions parse; `0` as an OSV start does too).
  const cx = semver.coerce(a, { loose: true });
  const cy = semver.coerce(b, { loose: true });
  if (cx && cy) return semver.compare(cx, cy);
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePep440(a: string, b: string): number {
  const pep440 = pep440Lib();
  if (pep440.valid(a) && pep440.valid(b)) return pep440.compare(a, b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The ordering for an OSV ecosystem (`Debian:12`, `Alpine:v3.19`, `npm`, `PyPI`, `Go`, `Red Hat`, ...); undefined if unknown. */
export function compareFor(ecosystem: string): Comparator | undefined {
  const base = ecosystem.split(':')[0]!;
  switch (base) {
    case 'Debian':
    case 'Ubuntu':
      return compareDebian;
    case 'Alpine':
    case 'Wolfi':
    case 'Chainguard':
      return compareApk;
    case 'Red Hat':
    case 'Rocky Linux':
    case 'AlmaLinux':
    case 'openSUSE':
    case 'SUSE':
    case 'Mageia':
      return compareRpm;
    case 'npm':
    case 'Go':
    case 'crates.io':
    case 'NuGet':
    case 'Packagist':
    case 'RubyGems':
      return compareSemver;
    case 'PyPI':
      return comparePep440;
    default:
      return undefined;
  }
}

/** Semver ordering for OSV `SEMVER` ranges, whatever the ecosystem. */
export const compareSemverRange: Comparator = compareSemver;
