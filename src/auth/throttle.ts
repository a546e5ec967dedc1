/**
 * Slows down password guessing without locking out the innocent: failed
 * logins are counted per (account, address) pair. After `failures` failed
 * logins for one account from one address within `window` seconds, further
 * logins for that account from that address are refused (429 with
 * Retry-After) until the window since the first of them has passed.
 * Another account behind the same address (a NAT, loopback in CI) is not
 * affected, nor is the same account from another address. A successful
 * login clears the pair (the gate calls {@link LoginThrottle.succeeded}
 * for every success, including one answered from its credential cache).
 *
 * The account is the user name as given (for an access token, which works
 * with any user name, that name too): varying it buys an attacker nothing
 * against a 256-bit token, and each guess of a password still costs the
 * slow hash. See docs/decisions/0065-login-throttle-per-account.md.
 *
 * In memory, per replica: an attacker spread over replicas gets
 * replicas × failures tries per window and account, which is still slow.
 */
export interface LoginThrottle {
  /** Seconds until `account` may try again from `ip`, or 0 when it may now. */
  retryAfter(account: string, ip: string): number;
  /** Counts a failed login of `account` from `ip`. */
  failed(account: string, ip: string): void;
  /** Clears the count of `account` from `ip`. */
  succeeded(account: string, ip: string): void;
}

/** The in-process {@link LoginThrottle}: one entry per (account, address) with failures in the window. */
export class MemoryLoginThrottle implements LoginThrottle {
  private readonly entries = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly failures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 100_000,
  ) {}

  retryAfter(account: string, ip: string): number {
    const key = keyOf(account, ip);
    const e = this.entries.get(key);
    if (!e) return 0;
    const elapsed = this.now() - e.since;
    if (elapsed >= this.windowMs) {
      this.entries.delete(key);
      return 0;
    }
    return e.count >= this.failures ? Math.ceil((this.windowMs - elapsed) / 1000) : 0;
  }

  failed(account: string, ip: string): void {
    const now = this.now();
    const key = keyOf(account, ip);
    const e = this.entries.get(key);
    if (!e || now - e.since >= this.windowMs) {
      if (this.entries.size >= this.maxEntries) this.sweep(now);
      this.entries.set(key, { count: 1, since: now });
    } else {
      e.count++;
    }
  }

  succeeded(account: string, ip: string): void {
    this.entries.delete(keyOf(account, ip));
  }

  private sweep(now: number): void {
    for (const [key, e] of this.entries) if (now - e.since >= this.windowMs) this.entries.delete(key);
    // Still full of live entries: drop the oldest (insertion order) rather than grow without bound.
    for (const key of this.entries.keys()) {
      if (this.entries.size < this.maxEntries) break;
      this.entries.delete(key);
    }
  }
}

function keyOf(account: string, ip: string): string {
  return `${ip}\0${account.slice(0, 200)}`;
}
