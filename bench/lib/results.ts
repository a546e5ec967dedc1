/**
 * Metrics collected per registry per round, their medians and spread, the
 * targets from issue 5, the printed table and the JSON record.
 */
import type { RegistryKind } from './registries.js';

/**
 * A target from the issue. `ratio`: Pier / distribution compared with
 * `bound`. `pier`: Pier's own value compared with `bound` (absolute memory
 * limits, growth factors).
 */
export interface Target {
  readonly on: 'ratio' | 'pier';
  readonly op: '<=' | '>=';
  readonly bound: number;
  /** As printed, e.g. `≥ 3x`, `≤ 150 MB`. */
  readonly text: string;
}

export interface Metric {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly target?: Target;
  readonly samples: Record<RegistryKind, number[]>;
  /** Anything wrong seen while measuring (errors, wrong answers), per registry. */
  readonly problems: Record<RegistryKind, string[]>;
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function summarize(xs: readonly number[]): Summary | undefined {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** Percentile (0..100) of an unsorted list, nearest-rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const v = [...xs].sort((a, b) => a - b);
  const rank = Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1));
  return v[rank]!;
}

export class Results {
  readonly metrics: Metric[] = [];
  readonly notes: string[] = [];

  metric(id: string, label: string, unit: string, target?: Target): Metric {
    let m = this.metrics.find((x) => x.id === id);
    if (!m) {
      m = { id, label, unit, samples: { pier: [], distribution: [] }, problems: { pier: [], distribution: [] } };
      if (target) m = { ...m, target };
      this.metrics.push(m);
    }
    return m;
  }

  add(id: string, kind: RegistryKind, value: number): void {
    const m = this.metrics.find((x) => x.id === id);
    if (!m) throw new Error(`unknown metric ${id}`);
    m.samples[kind].push(value);
  }

  problem(id: string, kind: RegistryKind, text: string): void {
    const m = this.metrics.find((x) => x.id === id);
    if (!m) throw new Error(`unknown metric ${id}`);
    if (!m.problems[kind].includes(text) && m.problems[kind].length < 5) m.problems[kind].push(text);
  }

  note(text: string): void {
    this.notes.push(text);
  }
}

export interface Evaluated {
  readonly pier?: Summary;
  readonly distribution?: Summary;
  readonly ratio?: number;
  readonly met?: boolean;
}

export function evaluate(m: Metric): Evaluated {
  const pier = summarize(m.samples.pier);
  const distribution = summarize(m.samples.distribution);
  const ratio = pier && distribution && distribution.median !== 0 ? pier.median / distribution.median : undefined;
  let met: boolean | undefined;
  if (m.target) {
    const v = m.target.on === 'ratio' ? ratio : pier?.median;
    if (v !== undefined && Number.isFinite(v)) met = m.target.op === '<=' ? v <= m.target.bound : v >= m.target.bound;
  }
  const out: { -readonly [K in keyof Evaluated]: Evaluated[K] } = {};
  if (pier) out.pier = pier;
  if (distribution) out.distribution = distribution;
  if (ratio !== undefined) out.ratio = ratio;
  if (met !== undefined) out.met = met;
  return out;
}

export function fmt(x: number, unit: string): string {
  if (!Number.isFinite(x)) return '—';
  if (x === 0) return '0';
  const abs = Math.abs(x);
  let s: string;
  if (unit === 'req/s' || unit === 'MB' || abs >= 1000) s = Math.round(x).toLocaleString('en-US');
  else if (abs >= 100) s = x.toFixed(0);
  else if (abs >= 10) s = x.toFixed(1);
  else if (abs >= 1) s = x.toFixed(2);
  else s = x.toPrecision(2);
  return s;
}

function cell(s: Summary | undefined, unit: string): string {
  if (!s) return '—';
  const main = `${fmt(s.median, unit)} ${unit}`.trim();
  if (s.n < 2 || s.min === s.max) return main;
  return `${main} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}

/** The table: scenario | Pier | distribution | ratio | target | met? */
export function renderTable(results: Results): string {
  const head = ['scenario', 'Pier', 'distribution', 'ratio P/d', 'target', 'met?'];
  const rows = results.metrics.map((m) => {
    const e = evaluate(m);
    const problems = [...m.problems.pier.map((p) => `Pier: ${p}`), ...m.problems.distribution.map((p) => `distribution: ${p}`)];
    const met = e.met === undefined ? (m.target ? '?' : '') : e.met ? 'yes' : 'NO';
    return [
      m.label + (problems.length ? ' (!)' : ''),
      cell(e.pier, m.unit),
      cell(e.distribution, m.unit),
      e.ratio === undefined ? '—' : `${e.ratio.toFixed(2)}x`,
      m.target ? `${m.target.on === 'pier' ? 'Pier ' : ''}${m.target.text}` : '',
      met,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

export function problemsText(results: Results): string[] {
  const out: string[] = [];
  for (const m of results.metrics) {
    for (const kind of ['pier', 'distribution'] as const) {
      for (const p of m.problems[kind]) out.push(`${m.label} — ${kind}: ${p}`);
    }
  }
  return out;
}
