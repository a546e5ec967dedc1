/**
 * Group commit for small independent writes (docs/decisions/0130): the
 * writes of one kind that requests ask for in the same turn of the event
 * loop (upload session rows, blob links, audit entries) go to the
 * database as one statement, and each caller's promise settles when that
 * statement has committed. A caller therefore sees exactly what it saw
 * when it wrote alone — its row is durable (as durable as a commit is)
 * before it answers its client — and pays a share of one statement
 * instead of a statement of its own: with many pushes at once, Kysely's
 * compile and better-sqlite3's step per statement were most of the
 * metadata path's cost on the event loop (docs/performance.md).
 *
 * Failure stays per caller: when a batch fails (a constraint, a full
 * disk), its writes are retried one by one, so each caller gets its own
 * error and the others succeed.
 */

/** The most writes in one statement (SQLite and PostgreSQL bind limits are far above this times the columns). */
const MAX_BATCH = 200;

interface Waiting<T> {
  item: T;
  resolve(): void;
  reject(err: unknown): void;
}

export class GroupCommit<T> {
  private queue: Waiting<T>[] = [];
  private scheduled = false;
  private readonly running = new Set<Promise<void>>();

  /**
   * `write` stores `items` (at least one) in one statement or
   * transaction, or throws; it must be correct for any mix of the items
   * one turn collects (duplicates included).
   */
  constructor(private readonly write: (items: T[]) => Promise<void>) {}

  /** Queues `item` for the next group commit; settles once it is written (or failed alone). */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // After the I/O callbacks of this turn: everything they asked for goes in one batch.
      setImmediate(() => {
        this.scheduled = false;
        this.start();
      });
    });
  }

  /** Writes everything queued so far, and waits for every write in progress (before closing the database). */
  async flush(): Promise<void> {
    this.start();
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private start(): void {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const run = this.commit(batch).finally(() => this.running.delete(run));
      this.running.add(run);
    }
  }

  private async commit(batch: Waiting<T>[]): Promise<void> {
    try {
      await this.write(batch.map((w) => w.item));
      for (const w of batch) w.resolve();
      return;
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
    }
    // One bad write must not fail its neighbours: each on its own, with its own error.
    for (const w of batch) {
      try {
        await this.write([w.item]);
        w.resolve();
      } catch (err) {
        w.reject(err);
      }
    }
  }
}
