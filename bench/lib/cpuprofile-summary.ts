/**
 * `node dist/bench/lib/cpuprofile-summary.js FILE.cpuprofile [TOP]`
 *
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and
 * by where the code lives (Pier's src/, each npm package, node internals,
 * GC, idle), so a bench run can say where a registry's CPU goes without a
 * flame-graph viewer. Inclusive time per Pier function is listed too.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'native (program)';
  if (url === '') return 'native';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm?.[1]) return `npm:${nm[1]}`;
  if (url.startsWith('node:')) return 'node internals';
  const src = /\/dist\/(src\/[^/]+(?:\/[^/]+)?)/.exec(url);
  if (src?.[1]) return src[1].replace(/\.js$/, '');
  return url;
}

function frameName(f: CallFrame): string {
  const file = f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
  return `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
}

export function summarize(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;

  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    byFn.set(frameName(f), (byFn.get(frameName(f)) ?? 0) + t);
    byArea.set(area(f.url, f.functionName), (byArea.get(area(f.url, f.functionName)) ?? 0) + t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (!cf.url.includes('/dist/src/')) continue;
      const name = frameName(cf);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + t);
    }
  }
  const pct = (t: number): string => `${((100 * t) / Math.max(busy, 1)).toFixed(1).padStart(5)}%`;
  const ms = (t: number): string => `${(t / 1000).toFixed(0).padStart(7)} ms`;
  const list = (m: Map<string, number>, skipIdle: boolean): string[] =>
    [...m.entries()]
      .filter(([k]) => !skipIdle || (k !== 'idle' && !k.startsWith('(idle)')))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, t]) => `  ${ms(t)} ${pct(t)}  ${k}`);
  return [
    `profile: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy on the main thread (percentages are of busy time)`,
    'self time by area:',
    ...list(byArea, true),
    'self time by function:',
    ...list(byFn, true),
    'inclusive time of Pier functions (dist/src):',
    ...list(inclusive, true),
  ].join('\n');
}

if (process.argv[1]?.endsWith('cpuprofile-summary.js')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/lib/cpuprofile-summary.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(summarize(profile, Number(process.argv[3] ?? 25)) + '\n');
}
