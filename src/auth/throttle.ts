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
 * The counts live in the coordinator's counters (src/store/coordinator):
 * in this process for the embedded registry, shared by replicas once the
 * coordinator is.
 */
import type { Counters } from '../store/coordinator/coordinator.js';

export interface LoginThrottle {
  /** Seconds until `account` may try again from `ip`, or 0 when it may now. */
  retryAfter(account: string, ip: string): Promise<number>;
  /** Counts a failed login of `account` from `ip`. */
  failed(account: string, ip: string): Promise<void>;
  /** Clears the count of `account` from `ip`. */
  succeeded(account: string, ip: string): Promise<void>;
}

/** The {@link LoginThrottle} over fixed-window counters, one per (account, address). */
export class CountingLoginThrottle implements LoginThrottle {
  constructor(
    private readonly counters: Counters,
    private readonly failures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async retryAfter(account: string, ip: string): Promise<number> {
    const c = await this.counters.read(keyOf(account, ip), this.windowMs);
    if (!c || c.count < this.failures) return 0;
    return Math.max(1, Math.ceil((this.windowMs - (this.now() - c.since)) / 1000));
  }

  async failed(account: string, ip: string): Promise<void> {
    await this.counters.increment(keyOf(account, ip), this.windowMs);
  }

  async succeeded(account: string, ip: string): Promise<void> {
    await this.counters.reset(keyOf(account, ip));
  }
}

/** Unambiguous and free of NUL bytes (PostgreSQL text refuses them), whatever the account name holds. */
function keyOf(account: string, ip: string): string {
  return `login:${JSON.stringify([ip, account.slice(0, 200)])}`;
}
