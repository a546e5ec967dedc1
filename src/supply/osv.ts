/**
 * OSV records (https://ossf.github.io/osv-schema/), parsed once at import
 * into what matching needs, and the matching itself: which of an image's
 * packages a record affects, and the version that fixes it.
 *
 * Ranges: `ECOSYSTEM` ranges are ordered by the ecosystem's comparator
 * (versions.ts), `SEMVER` ranges by semver; `GIT` ranges cannot be
 * matched against an installed version and are ignored. Events follow the
 * schema's evaluation: a version is affected when the latest event at or
 * below it is an `introduced` (with `fixed`/`limit` exclusive and
 * `last_affected` inclusive). Explicit `versions` lists match too.
 *
 * Debian and Ubuntu records name the SOURCE package: matching uses each
 * binary package's source name and source version (osv-scanner#1422).
 */
import { SupplyError } from './errors.js';
import { compareFor, compareSemverRange, type Comparator } from './versions.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'unknown';
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'unknown'];

/** Orders severities: critical is highest (4), unknown lowest (0). */
export function severityRank(s: Severity): number {
  return { critical: 4, high: 3, medium: 2, low: 1, unknown: 0 }[s];
}

export interface OsvEvent {
  introduced?: string;
  fixed?: string;
  last_affected?: string;
  limit?: string;
}

export interface OsvAffected {
  ecosystem: string;
  name: string;
  ranges: { type: 'ECOSYSTEM' | 'SEMVER'; events: OsvEvent[] }[];
  versions: string[];
}

/** One OSV record, reduced to what matching and reports use. */
export interface Vulnerability {
  id: string;
  aliases: string[];
  modified: string;
  summary: string | undefined;
  severity: Severity;
  affected: OsvAffected[];
}


function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The severity an OSV record states: a textual rating if it has one, else its CVSS v3 base score. */
export function osvSeverity(raw: Record<string, unknown>): Severity {
  const word = (v: unknown): Severity | undefined => {
    const s = str(v)?.toLowerCase();
    if (s === 'critical' || s === 'high' || s === 'medium' || s === 'low') return s;
    if (s === 'moderate') return 'medium';
    if (s === 'important') return 'high';
    if (s === 'negligible' || s === 'unimportant') return 'low';
    return undefined;
  };
  const db = raw.database_specific as Record<string, unknown> | undefined;
  const fromDb = word(db?.severity);
  if (fromDb) return fromDb;
  for (const a of Array.isArray(raw.affected) ? (raw.affected as Record<string, unknown>[]) : []) {
    const es = a.ecosystem_specific as Record<string, unknown> | undefined;
    const w = word(es?.severity) ?? word((a.database_specific as Record<string, unknown> | undefined)?.severity);
    if (w) return w;
  }
  for (const s of Array.isArray(raw.severity) ? (raw.severity as Record<string, unknown>[]) : []) {
    const score = str(s.score);
    if (score?.startsWith('CVSS:3')) {
      const base = cvss3BaseScore(score);
      if (base !== undefined) return base >= 9 ? 'critical' : base >= 7 ? 'high' : base >= 4 ? 'medium' : base > 0 ? 'low' : 'unknown';
    }
  }
  return 'unknown';
}

/** The CVSS v3.x base score of a vector (`CVSS:3.1/AV:N/AC:L/...`), or undefined if it is incomplete. */
export function cvss3BaseScore(vector: string): number | undefined {
  const m = new Map(vector.split('/').slice(1).map((p) => p.split(':') as [string, string]));
  const scope = m.get('S');
  const table: Record<string, Record<string, number>> = {
    AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
    AC: { L: 0.77, H: 0.44 },
    PR: scope === 'C' ? { N: 0.85, L: 0.68, H: 0.5 } : { N: 0.85, L: 0.62, H: 0.27 },
    UI: { N: 0.85, R: 0.62 },
    C: { H: 0.56, L: 0.22, N: 0 },
    I: { H: 0.56, L: 0.22, N: 0 },
    A: { H: 0.56, L: 0.22, N: 0 },
  };
  const v: Record<string, number> = {};
  for (const k of Object.keys(table)) {
    const x = table[k]![m.get(k) ?? ''];
    if (x === undefined) return undefined;
    v[k] = x;
  }
  if (scope !== 'U' && scope !== 'C') return undefined;
  const iss = 1 - (1 - v.C!) * (1 - v.I!) * (1 - v.A!);
  const impact = scope === 'U' ? 6.42 * iss : 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15;
  const exploitability = 8.22 * v.AV! * v.AC! * v.PR! * v.UI!;
  if (impact <= 0) return 0;
  const roundUp = (x: number) => {
    const i = Math.round(x * 100000);
    return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10;
  };
  return roundUp(Math.min(scope === 'U' ? impact + exploitability : 1.08 * (impact + exploitability), 10));
}

/** Parses one OSV JSON record; throws SupplyError (ERR_OSV_INVALID) naming what is missing. */
export function parseOsv(raw: unknown): Vulnerability {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SupplyError('ERR_OSV_INVALID', 'an OSV record must be a JSON object');
  const r = raw as Record<string, unknown>;
  const id = str(r.id);
  if (!id) throw new SupplyError('ERR_OSV_INVALID', 'an OSV record needs an "id"');
  const affected: OsvAffected[] = [];
  for (const a of Array.isArray(r.affected) ? (r.affected as Record<string, unknown>[]) : []) {
    const pkg = a.package as Record<string, unknown> | undefined;
    const ecosystem = str(pkg?.ecosystem);
    const name = str(pkg?.name);
    if (!ecosystem || !name) continue;
    const ranges: OsvAffected['ranges'] = [];
    for (const range of Array.isArray(a.ranges) ? (a.ranges as Record<string, unknown>[]) : []) {
      if (range.type !== 'ECOSYSTEM' && range.type !== 'SEMVER') continue;
      const events = (Array.isArray(range.events) ? (range.events as Record<string, unknown>[]) : []).map((e) => {
        const out: OsvEvent = {};
        for (const k of ['introduced', 'fixed', 'last_affected', 'limit'] as const) {
          const v = str(e[k]);
          if (v !== undefined) out[k] = v;
        }
        return out;
      });
      ranges.push({ type: range.type, events });
    }
    const versions = (Array.isArray(a.versions) ? a.versions : []).filter((v): v is string => typeof v === 'string');
    affected.push({ ecosystem, name, ranges, versions });
  }
  return {
    id,
    aliases: (Array.isArray(r.aliases) ? r.aliases : []).filter((v): v is string => typeof v === 'string'),
    modified: str(r.modified) ?? '',
    summary: str(r.summary),
    severity: osvSeverity(r),
    affected,
  };
}

/** Whether `version` is in the range, and the first `fixed` above it if one is given. */
export function inRange(version: string, events: OsvEvent[], cmp: Comparator): { affected: boolean; fixed: string | undefined } {
  type Point = { at: string; kind: 'introduced' | 'fixed' | 'last_affected' | 'limit' };
  const points: Point[] = [];
  for (const e of events) for (const kind of ['introduced', 'fixed', 'last_affected', 'limit'] as const) if (e[kind] !== undefined) points.push({ at: e[kind], kind });
  const zero = (p: Point) => p.kind === 'introduced' && p.at === '0';
  points.sort((a, b) => (zero(a) ? (zero(b) ? 0 : -1) : zero(b) ? 1 : cmp(a.at, b.at)));
  let affected = false;
  let fixed: string | undefined;
  let limited = false;
  for (const p of points) {
    const c = zero(p) ? 1 : cmp(version, p.at);
    if (p.kind === 'introduced' && c >= 0) affected = true;
    else if (p.kind === 'fixed' && c >= 0) affected = false;
    else if (p.kind === 'last_affected' && c > 0) affected = false;
    else if (p.kind === 'limit' && c >= 0) limited = true;
  }
  if (affected) fixed = points.find((p) => p.kind === 'fixed' && cmp(version, p.at) < 0)?.at;
  return { affected: affected && !limited, fixed };
}

/** What matching needs of an installed package: the ecosystem and the name and version OSV would use. */
export interface MatchKey {
  ecosystem: string;
  name: string;
  version: string;
}

/**
 * Whether `record` affects the package: its ecosystem (`Debian` matches
 * `Debian:12` for an image on Debian 12; an OSV ecosystem without a
 * release matches any), its name, then its ranges or versions.
 */
export function matchRecord(record: Vulnerability, key: MatchKey): { fixed: string | undefined } | undefined {
  for (const a of record.affected) {
    if (a.name !== key.name || !ecosystemMatches(a.ecosystem, key.ecosystem)) continue;
    if (a.versions.includes(key.version)) return { fixed: undefined };
    for (const range of a.ranges) {
      const cmp = range.type === 'SEMVER' ? compareSemverRange : compareFor(a.ecosystem);
      if (!cmp) continue;
      const r = inRange(key.version, range.events, cmp);
      if (r.affected) return { fixed: r.fixed };
    }
  }
  return undefined;
}

/**
 * `Debian:12` matches a package keyed `Debian:12`; `Alpine:v3.19` matches
 * `Alpine:v3.19`; `npm` matches `npm`. Ubuntu suffixes (`:LTS`) are
 * ignored; a package keyed `Red Hat:enterprise_linux:9` matches records of
 * any `Red Hat:enterprise_linux:9::…` stream.
 */
export function ecosystemMatches(recordEcosystem: string, packageEcosystem: string): boolean {
  if (recordEcosystem === packageEcosystem || recordEcosystem.startsWith(`${packageEcosystem}:`)) return true;
  const [rb, rv] = recordEcosystem.split(':');
  const [pb, pv] = packageEcosystem.split(':');
  if (rb !== pb) return false;
  return rv === undefined || rv === pv;
}
