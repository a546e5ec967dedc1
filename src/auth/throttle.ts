/**
 * Slows down password guessing: after `failures` failed logins from one
 * address within `window` seconds, further logins from it are refused
 * (429 with Retry-After) until the window since the first of them has
 * passed. A success clears the address. In memory, per replica: a
 * determined attacker spread over replicas gets replicas × failures tries
 * per window, which is still slow.
 */
export class LoginThrottle {
  private readonly entries = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly failures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `ip` may try again, or 0 when it may now. */
  retryAfter(ip: string): number {
    const e = this.entries.get(ip);
    if (!e) return 0;
    const elapsed = this.now() - e.since;
    if (elapsed >= this.windowMs) {
      this.entries.delete(ip);
      return 0;
    }
    return e.count >= this.failures ? Math.ceil((this.windowMs - elapsed) / 1000) : 0;
  }

  failed(ip: string): void {
    const now = this.now();
    const e = this.entries.get(ip);
    if (!e || now - e.since >= this.windowMs) {
      if (this.entries.size > 100_000) this.sweep(now);
      this.entries.set(ip, { count: 1, since: now });
    } else {
      e.count++;
    }
  }

  succeeded(ip: string): void {
    this.entries.delete(ip);
  }

  private sweep(now: number): void {
    for (const [ip, e] of this.entries) if (now - e.since >= this.windowMs) this.entries.delete(ip);
  }
}
