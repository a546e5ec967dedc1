/**
 * The coordinator of one process: the embedded default (one registry over
 * SQLite, GC inside it). State lives in memory and ends with the process,
 * which is all it must outlive: claims, fences and locks belong to requests
 * in flight, leases to this process's schedules, counters to a throttle
 * window. A scale-out deployment uses the SQL coordinator instead.
 */
import { randomUUID } from 'node:crypto';
import type { Coordinator, Release } from './coordinator.js';

function once(fn: () => void): Release {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    fn();
  };
}

export class InProcessCoordinator implements Coordinator {
  readonly holder: string;
  private readonly claims = new Map<string, number>();
  private readonly fences = new Map<string, Promise<void>>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly leases = new Map<string, { holder: string; until: number }>();
  private readonly counters = new Map<string, { count: number; since: number }>();

  constructor(options: { holder?: string; now?: () => number; maxCounters?: number } = {}) {
    this.holder = options.holder ?? randomUUID();
    this.now = options.now ?? Date.now;
    this.maxCounters = options.maxCounters ?? 100_000;
  }

  private readonly now: () => number;
  private readonly maxCounters: number;

  async claim(digest: string): Promise<Release> {
    for (let fence = this.fences.get(digest); fence; fence = this.fences.get(digest)) await fence;
    this.claims.set(digest, (this.claims.get(digest) ?? 0) + 1);
    return once(() => {
      const n = (this.claims.get(digest) ?? 1) - 1;
      if (n <= 0) this.claims.delete(digest);
      else this.claims.set(digest, n);
    });
  }

  async fence(digests: Iterable<string>): Promise<{ fenced: string[]; lift: Release }> {
    const fenced: string[] = [];
    let open!: () => void;
    const lifted = new Promise<void>((resolve) => (open = resolve));
    for (const d of digests) {
      if (this.claims.has(d) || this.fences.has(d)) continue;
      this.fences.set(d, lifted);
      fenced.push(d);
    }
    return {
      fenced,
      lift: once(() => {
        for (const d of fenced) this.fences.delete(d);
        open();
      }),
    };
  }

  private take(key: string): Release {
    let open!: () => void;
    this.locks.set(key, new Promise<void>((resolve) => (open = resolve)));
    return once(() => {
      this.locks.delete(key);
      open();
    });
  }

  async lock(keys: string[]): Promise<Release> {
    const releases: Release[] = [];
    for (const k of [...new Set(keys)].sort()) {
      while (this.locks.has(k)) await this.locks.get(k);
      releases.push(this.take(k));
    }
    return async () => {
      for (const r of releases) await r();
    };
  }

  async tryLock(key: string): Promise<Release | undefined> {
    return this.locks.has(key) ? undefined : this.take(key);
  }

  async acquireLease(name: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const lease = this.leases.get(name);
    if (lease && lease.holder !== this.holder && lease.until > now) return false;
    this.leases.set(name, { holder: this.holder, until: now + ttlMs });
    return true;
  }

  async releaseLease(name: string): Promise<void> {
    if (this.leases.get(name)?.holder === this.holder) this.leases.delete(name);
  }

  async increment(key: string, windowMs: number): Promise<{ count: number; since: number }> {
    const now = this.now();
    const e = this.counters.get(key);
    if (!e || now - e.since >= windowMs) {
      if (this.counters.size >= this.maxCounters) this.sweep(now, windowMs);
      const fresh = { count: 1, since: now };
      this.counters.set(key, fresh);
      return { ...fresh };
    }
    e.count++;
    return { ...e };
  }

  async read(key: string, windowMs: number): Promise<{ count: number; since: number } | undefined> {
    const e = this.counters.get(key);
    if (!e) return undefined;
    if (this.now() - e.since >= windowMs) {
      this.counters.delete(key);
      return undefined;
    }
    return { ...e };
  }

  async reset(key: string): Promise<void> {
    this.counters.delete(key);
  }

  private sweep(now: number, windowMs: number): void {
    for (const [k, e] of this.counters) if (now - e.since >= windowMs) this.counters.delete(k);
  }
}
