/**
 * The coordinator over SQL rows, for replicas that share one database
 * (several processes on one SQLite file, or replicas on one PostgreSQL).
 * Tables come from migration 0005-coordination.
 *
 * Every operation is ONE statement, so it is atomic on its own and no
 * transaction stays open across the caller's work (on PostgreSQL a claim or
 * fence statement runs in a short transaction behind the digest's advisory
 * lock, see below):
 *
 * - claim: insert a claim row unless a live fence holds the digest;
 * - fence: per digest, insert (or take over an expired) fence row unless a
 *   live claim or fence holds it;
 * - tryLock / acquireLease: upsert on the key's primary key, taking the row
 *   only if it is free, lapsed, or (leases) already ours;
 * - increment: an upsert that starts a new window or adds one.
 *
 * Isolation each needs (it matters on PostgreSQL; SQLite runs one writer
 * at a time, so every statement there is serializable):
 *
 * - locks, leases and counters touch one row by primary key. READ
 *   COMMITTED is enough: `ON CONFLICT DO UPDATE` locks the conflicting row
 *   and re-evaluates its WHERE on the row's latest version, so two
 *   replicas cannot both take a lock or a lease, nor lose an increment.
 * - claim and fence read one table and write the other: under READ
 *   COMMITTED or REPEATABLE READ a claim and a fence on one digest could
 *   each miss the other's uncommitted row (write skew) and GC would delete
 *   a blob being linked. They need SERIALIZABLE, or (cheaper, what
 *   {@link SqlCoordinator.onDigest} does on PostgreSQL) both take
 *   `pg_advisory_xact_lock(hashtextextended(digest, 0))` in a transaction
 *   around their statement.
 *
 * Rows held for a while (claims, fences, locks) expire `rowTtlMs` after
 * their last renewal; a timer renews this holder's rows every third of
 * that while it holds any, so a replica that dies releases everything
 * within `rowTtlMs`. Leases expire after the caller's ttl (renewed by
 * acquiring again). Expiry compares clocks of different replicas: keep
 * their skew well below the TTLs.
 *
 * Waiting (a claim on a fenced digest, a lock on a held key) polls with
 * backoff up to 250 ms; a release from this same coordinator wakes its
 * own waiters at once.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Coordinator, Release } from '../../coordinator/coordinator.js';
import { dialectOf, lockKey, transact, type Dialect } from './dialect.js';
import type { Database } from './schema.js';

export interface SqlCoordinatorOptions {
  /** This replica's id (default: a random UUID). Two coordinators must never share one. */
  holder?: string;
  /** The clock (epoch ms); tests move it by hand. */
  now?: () => number;
  /** How long a claim, fence or lock outlives a holder that stops renewing it (default 60 s). */
  rowTtlMs?: number;
}

const MAX_PAUSE_MS = 250;

/**
 * A key as stored: PostgreSQL text cannot hold NUL (the login throttle's
 * keys use it as a separator), so `\` and NUL are escaped, one to one.
 */
function stored(key: string): string {
  return key.includes('\0') || key.includes('\\') ? key.replace(/\\/g, '\\\\').replace(/\0/g, '\\0') : key;
}
const SWEEP_EVERY = 256;

export class SqlCoordinator implements Coordinator {
  readonly holder: string;
  private readonly now: () => number;
  private readonly rowTtlMs: number;
  /** Rows this coordinator holds (claim ids, fence and lock tokens): while any, the heartbeat renews. */
  private held = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly wakers = new Set<() => void>();
  private increments = 0;
  private closed = false;
  private readonly dialect: Dialect;

  constructor(
    private readonly db: Kysely<Database>,
    options: SqlCoordinatorOptions = {},
  ) {
    this.dialect = dialectOf(db);
    this.holder = options.holder ?? randomUUID();
    this.now = options.now ?? Date.now;
    this.rowTtlMs = options.rowTtlMs ?? 60_000;
    this.heartbeat = setInterval(() => {
      if (this.held > 0) this.renew().catch(() => undefined);
    }, Math.max(1, Math.floor(this.rowTtlMs / 3)));
    this.heartbeat.unref();
  }

  /**
   * Pushes the expiry of every claim, fence and lock this holder has to
   * now + rowTtlMs. The heartbeat calls it; exposed for tests.
   */
  async renew(): Promise<void> {
    const until = this.now() + this.rowTtlMs;
    await this.db.updateTable('coordinator_claims').set({ expires_at: until }).where('holder', '=', this.holder).execute();
    await this.db.updateTable('coordinator_fences').set({ expires_at: until }).where('holder', '=', this.holder).execute();
    await this.db.updateTable('coordinator_locks').set({ expires_at: until }).where('holder', '=', this.holder).execute();
  }

  /**
   * Stops the heartbeat and gives back everything this holder has (claims,
   * fences, locks, leases), so another replica need not wait for expiry.
   * Does not close the database.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    await this.db.deleteFrom('coordinator_claims').where('holder', '=', this.holder).execute();
    await this.db.deleteFrom('coordinator_fences').where('holder', '=', this.holder).execute();
    await this.db.deleteFrom('coordinator_locks').where('holder', '=', this.holder).execute();
    await this.db.deleteFrom('coordinator_leases').where('holder', '=', this.holder).execute();
    this.wake();
  }

  /**
   * Runs the statement that decides a claim or a fence on `digest`. SQLite:
   * as is (one writer). PostgreSQL: in a READ COMMITTED transaction that
   * first takes the digest's advisory lock, so a claim and a fence on one
   * digest run one after the other and the second sees the first's row
   * (its statement's snapshot is taken after the lock is granted).
   */
  private async onDigest<T>(digest: string, run: (db: Kysely<Database> | Transaction<Database>) => Promise<T>): Promise<T> {
    if (this.dialect !== 'postgres') return run(this.db);
    return transact(this.db, 'read committed', async (tx) => {
      await lockKey(tx, `pier:digest:${digest}`);
      return run(tx);
    });
  }

  async claim(digest: string): Promise<Release> {
    const id = randomUUID();
    for (let attempt = 0; ; attempt++) {
      const now = this.now();
      const inserted = await this.onDigest(digest, (db) =>
        sql`insert into coordinator_claims (id, digest, holder, expires_at)
            select ${id}, ${digest}, ${this.holder}, ${now + this.rowTtlMs}
            where not exists (select 1 from coordinator_fences where digest = ${digest} and expires_at > ${now})`.execute(db),
      );
      if (Number(inserted.numAffectedRows ?? 0) === 1) break;
      await this.pause(attempt);
    }
    return this.holding(async () => {
      await this.db.deleteFrom('coordinator_claims').where('id', '=', id).execute();
    });
  }

  async fence(digests: Iterable<string>): Promise<{ fenced: string[]; lift: Release }> {
    const token = randomUUID();
    const now = this.now();
    // Claims of replicas that died: gone, so they no longer hold GC off (expired ones are ignored below anyway).
    await this.db.deleteFrom('coordinator_claims').where('expires_at', '<=', now).execute();
    const fenced: string[] = [];
    this.held++;
    try {
      for (const digest of new Set(digests)) {
        const taken = await this.onDigest(digest, (db) =>
          sql<{ digest: string }>`insert into coordinator_fences (digest, token, holder, expires_at)
              select ${digest}, ${token}, ${this.holder}, ${now + this.rowTtlMs}
              where not exists (select 1 from coordinator_claims where digest = ${digest} and expires_at > ${now})
              on conflict (digest) do update
                set token = excluded.token, holder = excluded.holder, expires_at = excluded.expires_at
                where coordinator_fences.expires_at <= ${now}
              returning digest`.execute(db),
        );
        if (taken.rows.length === 1) fenced.push(digest);
      }
    } catch (err) {
      await this.db.deleteFrom('coordinator_fences').where('token', '=', token).execute();
      this.held--;
      throw err;
    }
    this.held--;
    return {
      fenced,
      lift: this.holding(async () => {
        await this.db.deleteFrom('coordinator_fences').where('token', '=', token).execute();
      }),
    };
  }

  async lock(keys: string[]): Promise<Release> {
    const releases: Release[] = [];
    try {
      for (const key of [...new Set(keys)].sort()) {
        for (let attempt = 0; ; attempt++) {
          const release = await this.tryLock(key);
          if (release) {
            releases.push(release);
            break;
          }
          await this.pause(attempt);
        }
      }
    } catch (err) {
      for (const r of releases) await r();
      throw err;
    }
    return async () => {
      for (const r of releases) await r();
    };
  }

  async tryLock(name: string): Promise<Release | undefined> {
    const key = stored(name);
    const token = randomUUID();
    const now = this.now();
    const taken = await this.db
      .insertInto('coordinator_locks')
      .values({ key, token, holder: this.holder, expires_at: now + this.rowTtlMs })
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet((eb) => ({ token: eb.ref('excluded.token'), holder: eb.ref('excluded.holder'), expires_at: eb.ref('excluded.expires_at') }))
          .where('coordinator_locks.expires_at', '<=', now),
      )
      .returning('key')
      .executeTakeFirst();
    if (!taken) return undefined;
    return this.holding(async () => {
      await this.db.deleteFrom('coordinator_locks').where('key', '=', key).where('token', '=', token).execute();
    });
  }

  async acquireLease(lease: string, ttlMs: number): Promise<boolean> {
    const name = stored(lease);
    const now = this.now();
    const taken = await this.db
      .insertInto('coordinator_leases')
      .values({ name, holder: this.holder, expires_at: now + ttlMs })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet((eb) => ({ holder: eb.ref('excluded.holder'), expires_at: eb.ref('excluded.expires_at') }))
          .where((eb) => eb.or([eb('coordinator_leases.holder', '=', this.holder), eb('coordinator_leases.expires_at', '<=', now)])),
      )
      .returning('name')
      .executeTakeFirst();
    return taken !== undefined;
  }

  async releaseLease(name: string): Promise<void> {
    await this.db.deleteFrom('coordinator_leases').where('name', '=', stored(name)).where('holder', '=', this.holder).execute();
  }

  async increment(counter: string, windowMs: number): Promise<{ count: number; since: number }> {
    const key = stored(counter);
    const now = this.now();
    const stale = now - windowMs;
    if (++this.increments % SWEEP_EVERY === 0) await this.db.deleteFrom('coordinator_counters').where('since', '<=', stale).execute();
    const row = await this.db
      .insertInto('coordinator_counters')
      .values({ key, count: 1, since: now })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          // SET sees the old row in both expressions: a passed window starts over at one.
          count: sql<number>`case when coordinator_counters.since <= ${stale} then 1 else coordinator_counters.count + 1 end`,
          since: sql<number>`case when coordinator_counters.since <= ${stale} then ${now} else coordinator_counters.since end`,
        }),
      )
      .returning(['count', 'since'])
      .executeTakeFirstOrThrow();
    // Number(): PostgreSQL's driver returns bigint columns as strings.
    return { count: Number(row.count), since: Number(row.since) };
  }

  async read(counter: string, windowMs: number): Promise<{ count: number; since: number } | undefined> {
    const key = stored(counter);
    const now = this.now();
    const row = await this.db.selectFrom('coordinator_counters').select(['count', 'since']).where('key', '=', key).executeTakeFirst();
    if (!row) return undefined;
    const since = Number(row.since);
    if (since <= now - windowMs) {
      // Only the window we looked at: an increment that started a new one meanwhile stays.
      await this.db.deleteFrom('coordinator_counters').where('key', '=', key).where('since', '=', since).execute();
      return undefined;
    }
    return { count: Number(row.count), since };
  }

  async reset(counter: string): Promise<void> {
    await this.db.deleteFrom('coordinator_counters').where('key', '=', stored(counter)).execute();
  }

  /** A release for a held row: counted for the heartbeat, given back once, waking this coordinator's waiters. */
  private holding(give: () => Promise<void>): Release {
    this.held++;
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      this.held--;
      try {
        await give();
      } finally {
        this.wake();
      }
    };
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Waits before retrying: backoff up to MAX_PAUSE_MS, cut short by a release here. */
  private pause(attempt: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(MAX_PAUSE_MS, 2 ** attempt));
      this.wakers.add(done);
    });
  }
}
