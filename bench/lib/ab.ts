/**
 * HTTP load with ApacheBench (`ab`, apache2-utils): keep-alive, fixed
 * concurrency, fixed duration; `-i` sends HEAD. ab is single-threaded C, so
 * it leaves more of the shared cores to the registry than a JS load generator.
 * (autocannon 8 cannot do HEAD: its http-parser-js client waits for the
 * Content-Length bytes a HEAD response announces but never sends.)
 */
import { run } from './proc.js';

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly completed: number;
  readonly failed: number;
  readonly non2xx: number;
}

export interface LoadOptions {
  readonly url: string;
  readonly method: 'GET' | 'HEAD';
  readonly connections: number;
  readonly seconds: number;
  readonly headers?: Record<string, string>;
}

function num(out: string, re: RegExp): number {
  const m = re.exec(out);
  return m?.[1] ? Number(m[1].replace(/,/g, '')) : NaN;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  // -t before -n: -t implies -n 50000, a later -n lifts that cap.
  const args = ['-q', '-k', '-r', '-c', String(o.connections), '-t', String(o.seconds), '-n', '100000000', '-s', '30'];
  if (o.method === 'HEAD') args.push('-i');
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  const r = await run('ab', args, (o.seconds + 60) * 1000);
  const out = r.stdout;
  if (r.code !== 0 && !/Requests per second/.test(out)) {
    throw new Error(`ab failed (exit ${r.code}): ${r.stderr.slice(0, 500)}${out.slice(-500)}`);
  }
  const non2xx = num(out, /Non-2xx responses:\s+(\d+)/);
  return {
    requestsPerSecond: num(out, /Requests per second:\s+([\d.]+)/),
    p50Ms: num(out, /^\s+50%\s+(\d+)/m),
    p99Ms: num(out, /^\s+99%\s+(\d+)/m),
    completed: num(out, /Complete requests:\s+(\d+)/),
    failed: num(out, /Failed requests:\s+(\d+)/),
    non2xx: Number.isFinite(non2xx) ? non2xx : 0,
  };
}
