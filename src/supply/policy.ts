/**
 * The vulnerability policy: per repository pattern, refuse to serve (a
 * pull by tag) an image whose scan has findings at or above a severity,
 * except allowlisted IDs (each with an optional expiry). The refusal
 * names the blocking findings. The first rule whose pattern matches the
 * repository applies; no rule, no check.
 *
 * While the image's scan is pending or failed, `pending: allow` (the
 * default) serves it and records that it did; `pending: deny` refuses.
 * Implements the service's ServePolicy hook (src/service/serve-policy.ts).
 */
import type { ScanQueue } from '../store/meta/supply-store.js';
import type { Finding } from './matcher.js';
import { severityRank, type Severity } from './osv.js';

export interface RepositoryMatcher {
  matches(name: string): boolean;
  readonly source: string;
}

export interface VulnerabilityRule {
  repositories: RepositoryMatcher;
  /** Refuse images with a finding at or above this. */
  severity: Exclude<Severity, 'unknown'>;
  /** IDs (or aliases) that do not block, until `expires` (epoch ms) if set. */
  allow: { id: string; expires: number | undefined }[];
  /** What a pull gets while the scan is pending or failed. */
  pending: 'allow' | 'deny';
}

/** How a pull the policy let through unchecked is recorded (the audit log). */
export type PolicyRecorder = (entry: { repository: string; reference: string; digest: string; outcome: 'ok' | 'denied'; note: string }) => void;

export type Decision = { allow: true } | { allow: false; reason: string };

const SHOWN = 5;

export class VulnerabilityPolicy {
  constructor(
    private readonly rules: readonly VulnerabilityRule[],
    private readonly scans: Pick<ScanQueue, 'getScan'>,
    private readonly record: PolicyRecorder,
    private readonly now: () => number = Date.now,
  ) {}

  async check(repository: string, reference: string, digest: string): Promise<Decision> {
    const rule = this.rules.find((r) => r.repositories.matches(repository));
    if (!rule) return { allow: true };
    const scan = await this.scans.getScan(repository, digest);
    if (!scan || scan.status === 'pending' || scan.status === 'failed') {
      const state = scan?.status === 'failed' ? `failed (${scan.error ?? 'unknown error'})` : 'pending';
      if (rule.pending === 'deny') {
        const reason = `vulnerability policy (${rule.repositories.source}): ${repository}:${reference} is not served while its scan is ${state}`;
        this.record({ repository, reference, digest, outcome: 'denied', note: `scan ${state}` });
        return { allow: false, reason };
      }
      this.record({ repository, reference, digest, outcome: 'ok', note: `served unchecked: scan ${state}` });
      return { allow: true };
    }
    if (scan.status === 'skipped') return { allow: true };
    const findings = JSON.parse(scan.findings ?? '[]') as Finding[];
    const now = this.now();
    const allowed = (f: Finding) => rule.allow.some((a) => (a.id === f.id || f.aliases.includes(a.id)) && (a.expires === undefined || a.expires > now));
    const blocking = findings.filter((f) => severityRank(f.severity) >= severityRank(rule.severity) && !allowed(f));
    if (blocking.length === 0) return { allow: true };
    const shown = blocking.slice(0, SHOWN).map((f) => `${f.id} (${f.severity}, ${f.package} ${f.installed}${f.fixed ? `, fixed in ${f.fixed}` : ''})`);
    const more = blocking.length > SHOWN ? ` and ${blocking.length - SHOWN} more` : '';
    return { allow: false, reason: `vulnerability policy (${rule.repositories.source}, ${rule.severity} and above): ${repository}:${reference} has ${blocking.length} blocking finding(s): ${shown.join('; ')}${more}` };
  }
}

/** Parses `scanning.policies` (a YAML list); `pattern` compiles a repository glob, `fail` reports a bad value at a path. */
export function parseVulnerabilityRules(raw: unknown, pattern: (source: unknown, at: string) => RepositoryMatcher, fail: (at: string, message: string) => Error): VulnerabilityRule[] {
  if (!Array.isArray(raw)) throw fail('', 'must be a list of rules');
  return raw.map((r: unknown, i) => {
    const at = `[${i}]`;
    if (typeof r !== 'object' || r === null) throw fail(at, 'must be a mapping');
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['repositories', 'severity', 'allow', 'pending'].includes(k)) throw fail(`${at}.${k}`, 'unknown key (repositories, severity, allow, pending)');
    const severity = o.severity;
    if (severity !== 'critical' && severity !== 'high' && severity !== 'medium' && severity !== 'low') throw fail(`${at}.severity`, 'must be critical, high, medium or low');
    const pending = o.pending ?? 'allow';
    if (pending !== 'allow' && pending !== 'deny') throw fail(`${at}.pending`, 'must be allow or deny');
    const allowRaw = o.allow ?? [];
    if (!Array.isArray(allowRaw)) throw fail(`${at}.allow`, 'must be a list');
    const allow = allowRaw.map((a: unknown, j) => {
      const aat = `${at}.allow[${j}]`;
      if (typeof a === 'string' && a !== '') return { id: a, expires: undefined };
      if (typeof a !== 'object' || a === null || typeof (a as { id?: unknown }).id !== 'string') throw fail(aat, 'must be an ID or { id, expires }');
      const { id, expires } = a as { id: string; expires?: unknown };
      if (expires === undefined) return { id, expires: undefined };
      const t = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : NaN;
      if (Number.isNaN(t)) throw fail(`${aat}.expires`, 'must be a date (2025-12-31 or an ISO 8601 time)');
      return { id, expires: t };
    });
    return { repositories: pattern(o.repositories ?? '**', `${at}.repositories`), severity, allow, pending };
  });
}
