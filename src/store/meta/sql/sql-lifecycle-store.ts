/** The lifecycle roles over SQL (tables of migrations 0001 and 0003): see ../lifecycle-store.ts. */
import { sql, type Kysely, type Transaction } from 'kysely';
import type {
  AttemptRecord,
  DeliveryRow,
  LifecycleStore,
  ManifestEdge,
  NewDelivery,
  RepositoryDigest,
  RepositoryUsage,
  RetentionTag,
  TagEventRow,
  TagHistoryRow,
} from '../lifecycle-store.js';
import { dialectOf, transact } from './dialect.js';
import type { Database, WebhookDeliveriesTable } from './schema.js';
import { namespaceBytes } from './sql-quota-ledger.js';

const BATCH = 500;
const CURSOR = 'webhook_cursor';
/** PostgreSQL: the transaction id half of the commit-order cursor (see fanOut). */
const CURSOR_XID = 'webhook_cursor_xid';
/** PostgreSQL: ids up to this were written before the first start (not replayed). */
const FLOOR = 'webhook_floor';

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The one writer of the webhook outbox: queues `deliveries` as pending, in
 * batches, inside the caller's transaction; an (endpoint, event id) already
 * queued is skipped, so a re-run of the same fan-out queues nothing twice.
 * Used by the tag-event fan-out here and by the scanner's scan_complete
 * events (sql-supply-store.ts).
 */
export async function enqueueDeliveries(tx: Transaction<Database>, deliveries: NewDelivery[]): Promise<void> {
  const now = Date.now();
  const rows = deliveries.map((d) => ({
    endpoint: d.endpoint,
    event_id: d.eventId,
    event_type: d.eventType,
    payload: d.payload,
    status: 'pending' as const,
    attempts: 0,
    next_at: now,
    created_at: now,
    finished_at: null,
    last_error: null,
  }));
  for (const batch of chunks(rows, BATCH)) {
    await tx
      .insertInto('webhook_deliveries')
      .values(batch)
      .onConflict((oc) => oc.columns(['endpoint', 'event_id']).doNothing())
      .execute();
  }
}

function toDelivery(r: Omit<WebhookDeliveriesTable, 'id'> & { id: number }): DeliveryRow {
  return {
    id: Number(r.id),
    endpoint: r.endpoint,
    eventId: r.event_id,
    eventType: r.event_type,
    payload: r.payload,
    status: r.status,
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    createdAt: Number(r.created_at),
    finishedAt: r.finished_at === null ? undefined : Number(r.finished_at),
    lastError: r.last_error ?? undefined,
  };
}

export class SqlLifecycleStore implements LifecycleStore {
  constructor(private readonly db: Kysely<Database>) {}

  // ---- GC

  /**
   * SQLite (one writer: ids commit in order): the highest id. PostgreSQL:
   * ids are handed out at insert, not at commit, so a lower id can commit
   * after a higher one was read; the watermark is instead the oldest
   * transaction still running (`pg_snapshot_xmin`). Every transaction below
   * it has ended, so the mark, which reads after it, sees its rows; a row
   * of a transaction at or above it may be unseen, and counts as after the
   * mark (the commit-order rule of the webhook outbox, decision 0076).
   */
  async historyWatermark(): Promise<number> {
    if (dialectOf(this.db) === 'postgres') {
      const { rows } = await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(this.db);
      return Number(rows[0]!.xmin);
    }
    return Number((await this.db.selectFrom('tag_history').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst())?.m ?? 0);
  }

  async tags(): Promise<{ repositoryId: number; name: string; digest: string }[]> {
    return (await this.db.selectFrom('tags').select(['repository_id', 'name', 'manifest_digest']).execute()).map((t) => ({ repositoryId: Number(t.repository_id), name: t.name, digest: t.manifest_digest }));
  }

  async tagHistoryRows(): Promise<TagHistoryRow[]> {
    const rows = await this.db
      .selectFrom('tag_history')
      .select(['repository_id', 'tag', 'action', 'new_digest', 'at'])
      .orderBy('repository_id')
      .orderBy('tag')
      .orderBy('id', 'desc')
      .execute();
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), tag: r.tag, action: r.action, newDigest: r.new_digest, at: Number(r.at) }));
  }

  private async edges(kind: 'blob' | 'manifest'): Promise<ManifestEdge[]> {
    const rows = await this.db.selectFrom('manifest_references').select(['repository_id', 'manifest_digest', 'child_digest']).where('kind', '=', kind).execute();
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), parent: r.manifest_digest, child: r.child_digest }));
  }

  indexChildren(): Promise<ManifestEdge[]> {
    return this.edges('manifest');
  }

  blobReferences(): Promise<ManifestEdge[]> {
    return this.edges('blob');
  }

  async referrers(): Promise<ManifestEdge[]> {
    const rows = await this.db.selectFrom('manifests').select(['repository_id', 'digest', 'subject_digest']).where('subject_digest', 'is not', null).execute();
    return rows.map((m) => ({ repositoryId: Number(m.repository_id), parent: m.subject_digest!, child: m.digest }));
  }

  async manifests(): Promise<RepositoryDigest[]> {
    const rows = await this.db.selectFrom('manifests').select(['repository_id', 'digest', 'created_at']).execute();
    return rows.map((m) => ({ repositoryId: Number(m.repository_id), digest: m.digest, createdAt: Number(m.created_at) }));
  }

  async links(): Promise<RepositoryDigest[]> {
    const rows = await this.db.selectFrom('repository_blobs').select(['repository_id', 'digest', 'created_at']).execute();
    return rows.map((l) => ({ repositoryId: Number(l.repository_id), digest: l.digest, createdAt: Number(l.created_at) }));
  }

  async linkedDigests(digests?: string[]): Promise<Set<string>> {
    if (digests === undefined) return new Set((await this.db.selectFrom('repository_blobs').select('digest').distinct().execute()).map((l) => l.digest));
    const out = new Set<string>();
    for (const chunk of chunks(digests, BATCH)) {
      for (const r of await this.db.selectFrom('repository_blobs').select('digest').where('digest', 'in', chunk).execute()) out.add(r.digest);
    }
    return out;
  }

  async deleteUnreachableManifests(groups: [number, string[]][], watermark: number, cutoff: number): Promise<[number, string[]][]> {
    if (groups.length === 0) return [];
    // SERIALIZABLE: what makes a manifest unreachable (no tag, no newer history, no parent) must still hold at commit.
    return transact(this.db, 'serializable', async (tx) => {
      const out: [number, string[]][] = [];
      for (const [repositoryId, digests] of groups) out.push([repositoryId, await deleteManifestsIn(tx, repositoryId, digests, watermark, cutoff)]);
      return out;
    });
  }

  async deleteUnreferencedLinks(links: { repositoryId: number; digest: string }[], cutoff: number): Promise<number> {
    if (links.length === 0) return 0;
    const pairs = links.map((l) => sql`(cast(${l.repositoryId} as bigint), cast(${l.digest} as text))`);
    // One statement; its WHERE re-checks age and references at delete time. SERIALIZABLE on PostgreSQL:
    // a manifest commit that checked this link and adds a reference to it must not slip past the NOT EXISTS.
    const result = await transact(this.db, 'serializable', (tx) =>
      tx
      .deleteFrom('repository_blobs as b')
      .where(sql<boolean>`(b.repository_id, b.digest) in (values ${sql.join(pairs)})`)
      .where('b.created_at', '<', cutoff)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('manifest_references as r')
              .select('r.child_digest')
              .whereRef('r.repository_id', '=', 'b.repository_id')
              .whereRef('r.child_digest', '=', 'b.digest'),
          ),
        ),
      )
      .executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  async uploadsInProgress(): Promise<number> {
    return Number((await this.db.selectFrom('uploads').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst())?.n ?? 0);
  }

  // ---- usage

  namespaceBytes(namespace: string): Promise<number> {
    // The quota ledger counts the same way inside its reservation transactions: one query, one rule.
    return namespaceBytes(this.db, namespace);
  }

  async repositoryUsage(): Promise<RepositoryUsage[]> {
    const blobRows = await this.db
      .selectFrom('repository_blobs as b')
      .innerJoin('repositories as r', 'r.id', 'b.repository_id')
      .select(['r.name', (eb) => eb.fn.sum<number>('b.size').as('bytes'), (eb) => eb.fn.countAll<number>().as('n')])
      .where('b.generated', '=', 0)
      .groupBy('r.name')
      .execute();
    const manifestRows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['r.name', (eb) => eb.fn.sum<number>('m.size').as('bytes'), (eb) => eb.fn.countAll<number>().as('n')])
      .where('m.generated', '=', 0)
      .groupBy('r.name')
      .execute();
    const byName = new Map<string, RepositoryUsage>();
    const get = (name: string) => {
      let u = byName.get(name);
      if (!u) byName.set(name, (u = { repository: name, bytes: 0, blobs: 0, manifests: 0 }));
      return u;
    };
    for (const r of blobRows) {
      const u = get(r.name);
      u.bytes += Number(r.bytes ?? 0);
      u.blobs = Number(r.n);
    }
    for (const r of manifestRows) {
      const u = get(r.name);
      u.bytes += Number(r.bytes ?? 0);
      u.manifests = Number(r.n);
    }
    return [...byName.values()].sort((a, b) => (a.repository < b.repository ? -1 : 1));
  }

  async totalBytes(): Promise<number> {
    const distinct = await this.db
      .selectFrom((eb) => eb.selectFrom('repository_blobs').select(['digest', (e) => e.fn.max('size').as('size')]).groupBy('digest').as('d'))
      .select((eb) => eb.fn.sum<number>('d.size').as('bytes'))
      .executeTakeFirst();
    const manifests = await this.db.selectFrom('manifests').select((eb) => eb.fn.sum<number>('size').as('bytes')).executeTakeFirst();
    return Number(distinct?.bytes ?? 0) + Number(manifests?.bytes ?? 0);
  }

  // ---- retention and pulls

  async repositoryNames(): Promise<string[]> {
    return (await this.db.selectFrom('repositories').select('name').orderBy('name').execute()).map((r) => r.name);
  }

  async tagsByAge(repository: string): Promise<RetentionTag[]> {
    const rows = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .leftJoin('tag_pulls as p', (j) => j.onRef('p.repository_id', '=', 't.repository_id').onRef('p.tag', '=', 't.name'))
      .select(['t.name', 't.manifest_digest', 't.updated_at', 'p.pulled_at'])
      .where('r.name', '=', repository)
      .orderBy('t.updated_at', 'desc')
      .orderBy('t.name')
      .execute();
    return rows.map((t) => ({ name: t.name, digest: t.manifest_digest, updatedAt: Number(t.updated_at), pulledAt: t.pulled_at === null ? undefined : Number(t.pulled_at) }));
  }

  async recordPulls(pulls: { repository: string; tag: string; at: number }[]): Promise<void> {
    if (pulls.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const p of pulls) {
        const repo = await tx.selectFrom('repositories').select('id').where('name', '=', p.repository).executeTakeFirst();
        if (!repo) continue;
        await tx
          .insertInto('tag_pulls')
          .values({ repository_id: Number(repo.id), tag: p.tag, pulled_at: p.at })
          .onConflict((oc) => oc.columns(['repository_id', 'tag']).doUpdateSet({ pulled_at: p.at }))
          .execute();
      }
    });
  }

  // ---- webhook outbox

  async initCursor(): Promise<void> {
    if (dialectOf(this.db) === 'postgres') return this.initCommitCursor();
    const cursor = await this.db.selectFrom('lifecycle_state').select('value').where('key', '=', CURSOR).executeTakeFirst();
    if (cursor) return;
    const max = await this.db.selectFrom('tag_history').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
    await this.db
      .insertInto('lifecycle_state')
      .values({ key: CURSOR, value: Number(max?.m ?? 0) })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
  }

  /**
   * PostgreSQL: the cursor is a position in commit order, (xid, id) of the
   * last row fanned out (migration 0007). At first start it is placed just
   * before the oldest transaction still running: every row written before
   * is old history, every row after is new.
   */
  private async initCommitCursor(): Promise<void> {
    await transact(this.db, 'read committed', async (tx) => {
      const { rows } = await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(tx);
      const inserted = await tx
        .insertInto('lifecycle_state')
        .values({ key: CURSOR_XID, value: Number(rows[0]!.xmin) - 1 })
        .onConflict((oc) => oc.column('key').doNothing())
        .returning('key')
        .executeTakeFirst();
      if (!inserted) return;
      await tx
        .insertInto('lifecycle_state')
        .values({ key: CURSOR, value: Number.MAX_SAFE_INTEGER })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: Number.MAX_SAFE_INTEGER }))
        .execute();
      // Rows already written (committed, or in flight now) up to the newest id are old history too.
      const max = await tx.selectFrom('tag_history').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
      await tx
        .insertInto('lifecycle_state')
        .values({ key: FLOOR, value: Number(max?.m ?? 0) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: Number(max?.m ?? 0) }))
        .execute();
    });
  }

  async fanOut(limit: number, plan: (events: TagEventRow[]) => NewDelivery[]): Promise<number> {
    const postgres = dialectOf(this.db) === 'postgres';
    // Fan-outs run one at a time (every replica nudges): the cursor rows' lock (SQLite: its one writer).
    return transact(this.db, 'read committed', async (tx) => {
      const state = await tx.selectFrom('lifecycle_state').select(['key', 'value']).where('key', 'in', [CURSOR, CURSOR_XID, FLOOR]).$if(postgres, (q) => q.forUpdate()).execute();
      const cursor = Number(state.find((r) => r.key === CURSOR)?.value ?? 0);
      const rows = postgres ? await commitOrderedAfter(tx, Number(state.find((r) => r.key === CURSOR_XID)?.value ?? 0), cursor, Number(state.find((r) => r.key === FLOOR)?.value ?? 0), limit) : await idOrderedAfter(tx, cursor, limit);
      if (rows.length === 0) return 0;
      const events: TagEventRow[] = rows.map((r) => ({
        id: Number(r.id),
        repository: r.name,
        tag: r.tag,
        action: r.action,
        oldDigest: r.old_digest,
        newDigest: r.new_digest,
        actor: r.actor,
        at: Number(r.at),
      }));
      await enqueueDeliveries(tx, plan(events));
      const last = rows[rows.length - 1]!;
      await tx.updateTable('lifecycle_state').set({ value: Number(last.id) }).where('key', '=', CURSOR).execute();
      if (last.xid !== undefined) await tx.updateTable('lifecycle_state').set({ value: Number(last.xid) }).where('key', '=', CURSOR_XID).execute();
      return rows.length;
    });
  }

  async nextPending(endpoint: string): Promise<DeliveryRow | undefined> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('endpoint', '=', endpoint)
      .where('status', '=', 'pending')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return row ? toDelivery(row) : undefined;
  }

  async recordAttempt(delivery: DeliveryRow, attempt: AttemptRecord, update: { status: DeliveryRow['status']; attempts: number; nextAt: number; finishedAt: number | undefined; lastError: string | undefined }): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await insertAttempt(tx, delivery.id, delivery.endpoint, attempt);
      await tx
        .updateTable('webhook_deliveries')
        .set({ attempts: update.attempts, status: update.status, next_at: update.nextAt, finished_at: update.finishedAt ?? null, last_error: update.lastError ?? null })
        .where('id', '=', delivery.id)
        .execute();
    });
  }

  async recordSent(delivery: NewDelivery & { status: 'delivered' | 'failed'; createdAt: number; finishedAt: number; lastError: string | undefined }, attempt: AttemptRecord): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .insertInto('webhook_deliveries')
        .values({
          endpoint: delivery.endpoint,
          event_id: delivery.eventId,
          event_type: delivery.eventType,
          payload: delivery.payload,
          status: delivery.status,
          attempts: 1,
          next_at: delivery.createdAt,
          created_at: delivery.createdAt,
          finished_at: delivery.finishedAt,
          last_error: delivery.lastError ?? null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await insertAttempt(tx, Number(row.id), delivery.endpoint, attempt);
    });
  }

  async deliveryCounts(endpoint: string): Promise<{ pending: number; failed: number; delivered: number }> {
    const counts = await this.db
      .selectFrom('webhook_deliveries')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('endpoint', '=', endpoint)
      .groupBy('status')
      .execute();
    const count = (s: string) => Number(counts.find((c) => c.status === s)?.n ?? 0);
    return { pending: count('pending'), failed: count('failed'), delivered: count('delivered') };
  }

  async recentDeliveries(endpoint: string, limit: number): Promise<DeliveryRow[]> {
    const rows = await this.db.selectFrom('webhook_deliveries').selectAll().where('endpoint', '=', endpoint).orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toDelivery);
  }
}

async function insertAttempt(tx: Transaction<Database>, deliveryId: number, endpoint: string, attempt: AttemptRecord): Promise<void> {
  await tx
    .insertInto('webhook_attempts')
    .values({ delivery_id: deliveryId, endpoint, at: attempt.at, status_code: attempt.statusCode ?? null, error: attempt.error ?? null, ms: attempt.ms })
    .execute();
}

/** The tag_history rows the GC mark may not have seen: see {@link SqlLifecycleStore.historyWatermark}. */
function afterWatermark(tx: Transaction<Database>, watermark: number) {
  return dialectOf(tx) === 'postgres' ? sql<boolean>`xid >= cast(${String(watermark)} as xid8)` : sql<boolean>`id > ${watermark}`;
}

async function deleteManifestsIn(tx: Transaction<Database>, repositoryId: number, digests: string[], watermark: number, cutoff: number): Promise<string[]> {
  const doomed = new Set(digests);
  const initial = new Set(digests);
  const refs: [string, string][] = [];
  const subjects: [string, string][] = [];
  for (const chunk of chunks(digests, BATCH)) {
    for (const r of await tx.selectFrom('tags').select('manifest_digest').where('repository_id', '=', repositoryId).where('manifest_digest', 'in', chunk).execute()) doomed.delete(r.manifest_digest);
    for (const r of await tx
      .selectFrom('tag_history')
      .select('new_digest')
      .where('repository_id', '=', repositoryId)
      .where(afterWatermark(tx, watermark))
      .where('new_digest', 'in', chunk)
      .execute()) {
      if (r.new_digest) doomed.delete(r.new_digest);
    }
    for (const r of await tx.selectFrom('manifests').select(['digest', 'created_at', 'subject_digest']).where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute()) {
      if (Number(r.created_at) >= cutoff) doomed.delete(r.digest);
      if (r.subject_digest) subjects.push([r.digest, r.subject_digest]);
    }
    for (const r of await tx
      .selectFrom('manifest_references')
      .select(['manifest_digest', 'child_digest'])
      .where('repository_id', '=', repositoryId)
      .where('kind', '=', 'manifest')
      .where('child_digest', 'in', chunk)
      .execute()) {
      refs.push([r.manifest_digest, r.child_digest]);
    }
  }
  const outsideSubjects = [...new Set(subjects.map(([, s]) => s).filter((s) => !initial.has(s)))];
  const existingSubjects = new Set<string>();
  for (const chunk of chunks(outsideSubjects, BATCH)) {
    for (const r of await tx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute()) existingSubjects.add(r.digest);
  }
  // A candidate listed by a surviving index, or referring to a surviving subject, survives too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [parent, child] of refs) {
      if (doomed.has(child) && !doomed.has(parent)) changed = doomed.delete(child) || changed;
    }
    for (const [referrer, subject] of subjects) {
      if (doomed.has(referrer) && !doomed.has(subject) && (initial.has(subject) || existingSubjects.has(subject))) changed = doomed.delete(referrer) || changed;
    }
  }
  const list = [...doomed];
  for (const chunk of chunks(list, BATCH)) {
    await tx.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute();
    await tx.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', 'in', chunk).execute();
  }
  return list;
}

interface HistoryRow {
  id: number;
  /** The writing transaction (PostgreSQL), as text. */
  xid?: string;
  name: string;
  tag: string;
  action: TagEventRow['action'];
  old_digest: string | null;
  new_digest: string | null;
  actor: string;
  at: number;
}

/** SQLite: one writer, so ids commit in order and the cursor is an id. */
async function idOrderedAfter(tx: Transaction<Database>, cursor: number, limit: number): Promise<HistoryRow[]> {
  return tx
    .selectFrom('tag_history as h')
    .innerJoin('repositories as r', 'r.id', 'h.repository_id')
    .select(['h.id', 'r.name', 'h.tag', 'h.action', 'h.old_digest', 'h.new_digest', 'h.actor', 'h.at'])
    .where('h.id', '>', cursor)
    .orderBy('h.id')
    .limit(limit)
    .execute();
}

/**
 * PostgreSQL: rows after the (xid, id) cursor, in (xid, id) order, written
 * only by transactions older than every transaction still running
 * (`xid < pg_snapshot_xmin`). Those have all ended, so no row can later
 * appear before the cursor: none is skipped, however ids interleave
 * across writers. Two moves of one tag commit one after the other (the
 * second sees the first, or fails serialization and retries), so the later
 * has the larger xid: each tag's changes stay in order.
 */
async function commitOrderedAfter(tx: Transaction<Database>, cursorXid: number, cursorId: number, floor: number, limit: number): Promise<HistoryRow[]> {
  const { rows } = await sql<HistoryRow>`
    select h.id, h.xid::text as xid, r.name, h.tag, h.action, h.old_digest, h.new_digest, h.actor, h.at
    from tag_history h join repositories r on r.id = h.repository_id
    where h.xid < pg_snapshot_xmin(pg_current_snapshot())
      and (h.xid, h.id) > (cast(${String(cursorXid)} as xid8), cast(${cursorId} as bigint))
      and h.id > ${floor}
    order by h.xid, h.id
    limit ${limit}`.execute(tx);
  return rows;
}
