/**
 * Records when each tag was last pulled, for retention's "pulled within D
 * days". Pulls are counted in memory and written in one transaction every
 * few seconds (and on close), so a pull costs no database write.
 */
import type { Logger } from 'pino';
import type { PullLog } from '../store/meta/lifecycle-store.js';

const FLUSH_EVERY_MS = 5_000;

export class PullRecorder {
  private pending = new Map<string, { repository: string; tag: string; at: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: PullLog,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => {
      this.flush().catch((err: unknown) => this.log.error({ err }, 'recording pulls failed'));
    }, FLUSH_EVERY_MS);
    this.timer.unref();
  }

  pulled(repository: string, tag: string): void {
    this.pending.set(`${repository}:${tag}`, { repository, tag, at: Date.now() });
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await this.db.recordPulls(batch);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
