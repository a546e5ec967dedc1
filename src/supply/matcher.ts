/**
 * Matching an image's inventory against the imported OSV records: which
 * ecosystem, name and version OSV uses for each installed package
 * ({@link matchKey}), and the findings.
 */
import type { ImageInventory, OsInfo, Package } from './inventory.js';
import { matchRecord, SEVERITIES, severityRank, type MatchKey, type Severity, type Vulnerability } from './osv.js';

export interface Finding {
  /** The OSV id (DSA-…, GHSA-…, CVE-…). */
  id: string;
  aliases: string[];
  severity: Severity;
  summary?: string;
  /** The installed package, as the image names it. */
  package: string;
  type: Package['type'];
  installed: string;
  /** The first version that fixes it, if one is known. */
  fixed?: string;
  /** For a Debian/Alpine binary package matched through its source package. */
  source?: string;
}

export type SeverityCounts = Record<Severity, number>;

/**
 * The OSV ecosystem of an OS release: `Debian:12`, `Ubuntu:22.04`,
 * `Alpine:v3.19`, `Rocky Linux:9`, `AlmaLinux:9`, `Red Hat:enterprise_linux:9`
 * (a prefix of Red Hat's `Red Hat:enterprise_linux:9::appstream`);
 * undefined if OSV has none.
 */
export function osEcosystem(os: OsInfo | undefined, type: 'deb' | 'apk' | 'rpm'): string | undefined {
  if (!os) return type === 'deb' ? 'Debian' : type === 'apk' ? 'Alpine' : undefined;
  const v = os.versionId;
  const major = v.split('.')[0] ?? v;
  switch (os.id) {
    case 'rocky':
      return `Rocky Linux:${major}`;
    case 'almalinux':
      return `AlmaLinux:${major}`;
    case 'rhel':
      return `Red Hat:enterprise_linux:${major}`;
    case 'debian':
      return `Debian:${v.split('.')[0] ?? v}`;
    case 'ubuntu':
      return `Ubuntu:${v}`;
    case 'alpine':
      return `Alpine:v${v.split('.').slice(0, 2).join('.')}`;
    default:
      return undefined;
  }
}

/** How OSV names an installed package: Debian and Alpine by source package and its version, RPM by binary package. */
export function matchKey(pkg: Package, os: OsInfo | undefined): MatchKey | undefined {
  switch (pkg.type) {
    case 'deb':
    case 'apk': {
      const ecosystem = osEcosystem(os, pkg.type);
      return ecosystem ? { ecosystem, name: pkg.source ?? pkg.name, version: pkg.sourceVersion ?? pkg.version } : undefined;
    }
    case 'rpm': {
      // Red Hat, Rocky and Alma advisories list binary packages, versions as [epoch:]version-release.
      const ecosystem = osEcosystem(os, 'rpm');
      return ecosystem ? { ecosystem, name: pkg.name, version: pkg.version } : undefined;
    }
    case 'npm':
      return { ecosystem: 'npm', name: pkg.name, version: pkg.version };
    case 'pypi':
      return { ecosystem: 'PyPI', name: pkg.name, version: pkg.version };
    case 'golang':
      return { ecosystem: 'Go', name: pkg.name, version: pkg.version.replace(/^v/, '') };
  }
}

/** The records that could affect a package: looked up by ecosystem (without its release) and name. */
export type RecordLookup = (keys: { ecosystem: string; name: string }[]) => Promise<Vulnerability[]>;

export async function matchInventory(inventory: ImageInventory, lookup: RecordLookup): Promise<Finding[]> {
  const keyed: [Package, MatchKey][] = [];
  for (const pkg of inventory.packages) {
    const key = matchKey(pkg, inventory.os);
    if (key) keyed.push([pkg, key]);
  }
  const wanted = new Map<string, { ecosystem: string; name: string }>();
  for (const [, k] of keyed) {
    const base = k.ecosystem.split(':')[0]!;
    wanted.set(`${base}\0${k.name}`, { ecosystem: base, name: k.name });
  }
  const records = await lookup([...wanted.values()]);
  const byKey = new Map<string, Vulnerability[]>();
  for (const r of records) {
    for (const a of r.affected) {
      const k = `${a.ecosystem.split(':')[0]!}\0${a.name}`;
      const list = byKey.get(k) ?? [];
      if (!list.includes(r)) list.push(r);
      byKey.set(k, list);
    }
  }
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const [pkg, key] of keyed) {
    for (const r of byKey.get(`${key.ecosystem.split(':')[0]!}\0${key.name}`) ?? []) {
      const hit = matchRecord(r, key);
      if (!hit) continue;
      const dedupe = `${r.id}\0${pkg.type}\0${pkg.name}\0${pkg.version}`;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      findings.push({
        id: r.id,
        aliases: r.aliases,
        severity: r.severity,
        ...(r.summary ? { summary: r.summary } : {}),
        package: pkg.name,
        type: pkg.type,
        installed: pkg.version,
        ...(hit.fixed !== undefined ? { fixed: hit.fixed } : {}),
        ...(key.name !== pkg.name ? { source: key.name } : {}),
      });
    }
  }
  findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.id.localeCompare(b.id) || a.package.localeCompare(b.package));
  return findings;
}

export function countSeverities(findings: Finding[]): SeverityCounts {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as SeverityCounts;
  for (const f of findings) counts[f.severity]++;
  return counts;
}
