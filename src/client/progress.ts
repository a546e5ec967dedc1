/**
 * Renders push and pull events:
 * - `tty`: one line per blob (the config too) redrawn in place, like docker
 *   (`Pushing [====>    ] 12.3MB/45.6MB`, `Layer already exists`, `Mounted from x/y`);
 * - `plain`: a line per blob per state change, and a summary every few seconds (CI logs);
 * - `json`: one JSON event per line;
 * - `quiet`: nothing (the command prints the digest).
 */
import type { PushEvent } from './events.js';
import { formatBytes } from '../shared/bytes.js';

export type ProgressFormat = 'tty' | 'plain' | 'json' | 'quiet';

export interface Renderer {
  event(e: PushEvent): void;
  /** Stops timers and draws the final state. */
  close(): void;
}

interface Out {
  write(s: string): unknown;
  columns?: number;
}

/** Sizes as Docker's progress prints them (`12.3MB`), so a push reads like `docker push`. */
function size(n: number): string {
  return formatBytes(n, 'docker');
}

const LABEL: Record<string, string> = {
  preparing: 'Preparing',
  waiting: 'Waiting',
  pushing: 'Pushing',
  exists: 'Layer already exists',
  mounted: 'Mounted from',
  pushed: 'Pushed',
  pulling: 'Downloading',
  pulled: 'Pull complete',
};

function finalLine(e: PushEvent & { type: 'manifest' }): string {
  return `${e.tag ?? e.reference}: digest: ${e.digest} size: ${e.size}`;
}

class JsonRenderer implements Renderer {
  private lastProgress = new Map<string, number>();
  constructor(private readonly out: Out) {}
  event(e: PushEvent): void {
    if (e.type === 'progress') {
      // At most one progress event per layer per 100 ms.
      const now = Date.now();
      if (now - (this.lastProgress.get(e.id) ?? 0) < 100 && e.current !== e.total) return;
      this.lastProgress.set(e.id, now);
    }
    this.out.write(`${JSON.stringify(e)}\n`);
  }
  close(): void {}
}

class PlainRenderer implements Renderer {
  private readonly progress = new Map<string, { current: number; total?: number }>();
  private verb = 'pushing';
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly out: Out,
    intervalMs = 5000,
  ) {
    this.timer = setInterval(() => this.summary(), intervalMs);
    this.timer.unref();
  }
  private summary(): void {
    if (this.progress.size === 0) return;
    let cur = 0;
    let tot = 0;
    for (const p of this.progress.values()) {
      cur += p.current;
      tot += p.total ?? p.current;
    }
    this.out.write(`${this.verb} ${this.progress.size} blob(s): ${size(cur)}/${size(tot)}\n`);
  }
  event(e: PushEvent): void {
    switch (e.type) {
      case 'blob':
        if (e.status === 'pulling') this.verb = 'pulling';
        if (e.status === 'pushed' || e.status === 'exists' || e.status === 'mounted' || e.status === 'pulled') this.progress.delete(e.id);
        this.out.write(`${e.id}: ${LABEL[e.status]}${e.from ? ` ${e.from}` : ''}\n`);
        return;
      case 'progress':
        this.progress.set(e.id, { current: e.current, total: e.total });
        return;
      case 'resume':
        this.out.write(`${e.id}: Resuming at ${size(e.offset)}\n`);
        return;
      case 'retry':
        this.out.write(`${e.id ? `${e.id}: ` : ''}retrying in ${(e.delay / 1000).toFixed(1)}s: ${e.reason}\n`);
        return;
      case 'warning':
        this.out.write(`warning: ${e.message}\n`);
        return;
      case 'manifest':
        this.out.write(`${finalLine(e)}\n`);
        return;
      case 'saved':
        this.out.write(`Saved to ${e.destination}\n`);
        return;
      case 'compress':
        return;
    }
  }
  close(): void {
    clearInterval(this.timer);
  }
}

class TtyRenderer implements Renderer {
  private readonly order: string[] = [];
  private verb = 'Pushing';
  private readonly lines = new Map<string, string>();
  private drawn = 0;
  private readonly timer: NodeJS.Timeout;
  private dirty = false;
  constructor(private readonly out: Out) {
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }
  private set(id: string, text: string): void {
    if (!this.lines.has(id)) this.order.push(id);
    this.lines.set(id, text);
    this.dirty = true;
  }
  private draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const id of this.order) s += `\x1b[2K${`${id}: ${this.lines.get(id)}`.slice(0, width)}\n`;
    this.drawn = this.order.length;
    this.out.write(s);
  }
  event(e: PushEvent): void {
    switch (e.type) {
      case 'blob':
        if (e.status === 'pulling') this.verb = 'Downloading';
        this.set(e.id, `${LABEL[e.status]}${e.from ? ` ${e.from}` : ''}`);
        return;
      case 'progress': {
        const total = e.total;
        const barWidth = 50;
        let bar = '';
        if (total) {
          const filled = Math.min(barWidth, Math.floor((e.current / total) * barWidth));
          bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(barWidth - filled)}] `;
        }
        this.set(e.id, `${this.verb} ${bar}${size(e.current)}${total ? `/${size(total)}` : ''}`);
        return;
      }
      case 'warning':
        this.draw();
        this.out.write(`warning: ${e.message}\n`);
        this.drawn = 0;
        this.dirty = true;
        return;
      case 'manifest':
        this.draw();
        this.out.write(`${finalLine(e)}\n`);
        this.drawn = 0;
        return;
      case 'saved':
        this.draw();
        this.out.write(`Saved to ${e.destination}\n`);
        this.drawn = 0;
        return;
      default:
        return;
    }
  }
  close(): void {
    clearInterval(this.timer);
    this.draw();
  }
}

export function createRenderer(format: ProgressFormat, out: Out): Renderer {
  switch (format) {
    case 'json':
      return new JsonRenderer(out);
    case 'plain':
      return new PlainRenderer(out);
    case 'tty':
      return new TtyRenderer(out);
    case 'quiet':
      return { event: () => {}, close: () => {} };
  }
}
