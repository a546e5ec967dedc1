/**
 * Processes the harness starts, and what the kernel says they cost.
 *
 * Every daemon is started in its own process group (`detached`), its PID is
 * appended to `$PIER_BENCH_PIDS` so that `bench/run` can kill it even if this
 * process dies, and {@link stopAll} ends every one still running (Ctrl-C
 * included). Nothing here waits without a deadline.
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** A daemon started by the harness. */
export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

const running = new Map<number, { daemon: Daemon; child: ChildProcess }>();

/** Starts `cmd args` in its own process group, output to `logFile`. */
export function startDaemon(
  name: string,
  cmd: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Daemon {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  const pidFile = process.env.PIER_BENCH_PIDS;
  if (pidFile) appendFileSync(pidFile, `${pid}\n`);
  let done = false;
  const gone = (): void => {
    done = true;
    running.delete(pid);
    // Keep only live PIDs in the file, so that bench/run never signals a reused one.
    if (pidFile) writeFileSync(pidFile, [...running.keys()].map((p) => `${p}\n`).join(''));
  };
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      gone();
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', () => {
      gone();
      resolve('spawn-error');
    });
  });
  const daemon: Daemon = { name, pid, logFile, exited, hasExited: () => done };
  running.set(pid, { daemon, child });
  return daemon;
}

/** SIGTERM to the process group, SIGKILL after `graceMs`. Never throws. */
export async function stopDaemon(daemon: Daemon, graceMs = 5000): Promise<void> {
  if (daemon.hasExited()) return;
  signalGroup(daemon.pid, 'SIGTERM');
  const t = await Promise.race([daemon.exited.then(() => 'exited'), sleep(graceMs, 'timeout')]);
  if (t === 'timeout') {
    signalGroup(daemon.pid, 'SIGKILL');
    await Promise.race([daemon.exited, sleep(2000)]);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Stops every daemon still running (in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running.values()].map(({ daemon }) => stopDaemon(daemon, 3000)));
}

/** Synchronous last resort for process exit handlers. */
export function killAllNow(): void {
  for (const pid of running.keys()) signalGroup(pid, 'SIGKILL');
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a command to completion (bounded by `timeoutMs`); never rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, env: env ?? process.env },
      (err, stdout, stderr) => {
        const ms = performance.now() - start;
        let code = 0;
        if (err) code = typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr, ms });
      },
    );
  });
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux x86_64/arm64

/** CPU seconds in user space and in the kernel (all threads) the process has used so far. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start with the state.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]) / CLK_TCK, sys: Number(rest[12]) / CLK_TCK };
}

/** CPU seconds (user + system, all threads) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

function statusKb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m?.[1] ? Number(m[1]) : NaN;
}

/** Resident set size now, in bytes. */
export function rssBytes(pid: number): number {
  return statusKb(pid, 'VmRSS') * 1024;
}

/**
 * Measures a process's peak resident memory over an interval: resets the
 * kernel's high-water mark (`clear_refs` 5, needs root; falls back to
 * sampling) and samples VmRSS every 50 ms as a cross-check.
 */
export class PeakRss {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly hwmReset: boolean;

  constructor(private readonly pid: number) {
    let reset = false;
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      reset = true;
    } catch {
      reset = false;
    }
    this.hwmReset = reset;
    this.sample();
    this.timer = setInterval(() => this.sample(), 50);
  }

  private sample(): void {
    try {
      this.peak = Math.max(this.peak, rssBytes(this.pid));
    } catch {
      /* process gone */
    }
  }

  /** Stops sampling; returns the peak in bytes. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    let hwm = NaN;
    if (this.hwmReset) {
      try {
        hwm = statusKb(this.pid, 'VmHWM') * 1024;
      } catch {
        hwm = NaN;
      }
    }
    return Number.isFinite(hwm) ? Math.max(hwm, this.peak) : this.peak;
  }
}

/** Waits until `probe` returns true, polling every `everyMs`, for at most `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Flushes dirty pages so that one run's writeback does not land in the next run's time. */
export async function syncDisks(): Promise<void> {
  await run('sync', [], 120_000);
}

/** The host's CPU model from /proc/cpuinfo, or `unknown`. */
export function cpuModel(): string {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The first line a tool prints for its version flags (stdout or stderr), for the report header. */
export async function versionOf(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, 10_000);
  return (r.stdout + r.stderr).trim().split('\n')[0] ?? '';
}
