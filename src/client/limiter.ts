/** A counting semaphore: at most `n` tasks run at once, in arrival order. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/**
 * A semaphore that admits tasks in ticket order: ticket k starts only after
 * every lower ticket has started or been skipped. Uploads thus begin in
 * manifest order (bottom layer first, like docker), whatever order their
 * existence checks finish in.
 */
export class OrderedLimiter {
  private active = 0;
  private next = 0;
  private issued = 0;
  private readonly waiting = new Map<number, () => void>();
  private readonly skipped = new Set<number>();
  constructor(private readonly n: number) {}

  /** A place in line; every ticket must end in `run` or `skip`. */
  ticket(): number {
    return this.issued++;
  }

  skip(ticket: number): void {
    this.skipped.add(ticket);
    this.pump();
  }

  async run<T>(ticket: number, task: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => {
      this.waiting.set(ticket, resolve);
      this.pump();
    });
    try {
      return await task();
    } finally {
      this.active--;
      this.pump();
    }
  }

  private pump(): void {
    for (;;) {
      if (this.skipped.delete(this.next)) {
        this.next++;
        continue;
      }
      const start = this.waiting.get(this.next);
      if (!start || this.active >= this.n) return;
      this.waiting.delete(this.next);
      this.next++;
      this.active++;
      start();
    }
  }
}
