/**
 * The SQL {@link QuotaLedger}. `reserve` reads what the namespace stores
 * and reserves, and writes the holder's row, in one transaction. On the
 * embedded SQLite store every transaction runs alone (one connection,
 * Kysely's connection lock), so two reservations never interleave; on
 * PostgreSQL the transaction takes `pg_advisory_xact_lock` on the
 * namespace first (decision 0067), so they run one at a time per namespace.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { QuotaLedger, QuotaReservation, ReserveResult } from '../quota-ledger.js';
import { lockKey, transact } from './dialect.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export class SqlQuotaLedger implements QuotaLedger {
  constructor(private readonly db: Kysely<Database>) {}

  async reserve(request: QuotaReservation): Promise<ReserveResult> {
    return transact(this.db, 'read committed', async (tx) => {
      const { namespace, holder, total, limit } = request;
      // Reservations in one namespace run one at a time; each statement after the lock sees the others' commits.
      await lockKey(tx, `pier:quota:${namespace}`);
      const stale = request.staleBefore.getTime();
      const used = await namespaceBytes(tx, namespace);
      if (request.digest !== undefined && (await namespaceStores(tx, namespace, request.digest))) return { ok: true, free: limit - used };
      const rows = await tx.selectFrom('quota_reservations').select(['holder', 'bytes']).where('namespace', '=', namespace).where('updated_at', '>=', stale).execute();
      const reserved = rows.reduce((n, r) => n + Number(r.bytes), 0);
      const mine = Number(rows.find((r) => r.holder === holder)?.bytes ?? 0);
      const extra = Math.max(0, total - mine);
      if (extra > 0 && used + reserved + extra > limit) return { ok: false, used, reserved, needed: extra };
      const now = Date.now();
      const bytes = Math.max(total, mine);
      await tx
        .insertInto('quota_reservations')
        .values({ holder, namespace, bytes, updated_at: now })
        .onConflict((oc) => oc.column('holder').doUpdateSet({ bytes, namespace, updated_at: now }))
        .execute();
      return { ok: true, free: limit - used - reserved - extra };
    });
  }

  async release(holder: string): Promise<void> {
    await this.db.deleteFrom('quota_reservations').where('holder', '=', holder).execute();
  }

  namespaceBytes(namespace: string): Promise<number> {
    return namespaceBytes(this.db, namespace);
  }

  async sweep(staleBefore: Date): Promise<number> {
    const r = await this.db.deleteFrom('quota_reservations').where('updated_at', '<', staleBefore.getTime()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

function inNamespace(namespace: string) {
  return sql<boolean>`(r.name = ${namespace} or substr(r.name, 1, ${namespace.length + 1}) = ${`${namespace}/`})`;
}

async function namespaceStores(db: Db, namespace: string, digest: string): Promise<boolean> {
  const row = await db
    .selectFrom('repository_blobs as b')
    .innerJoin('repositories as r', 'r.id', 'b.repository_id')
    .select('b.digest')
    .where('b.digest', '=', digest)
    .where('b.generated', '=', 0)
    .where(inNamespace(namespace))
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Bytes a namespace stores against its quota: each distinct blob its
 * repositories link once, plus their manifests; what the registry
 * generated itself (SBOM referrers and their blobs, decision 0120) is not
 * counted.
 */
export async function namespaceBytes(db: Db, namespace: string): Promise<number> {
  const blobs = await db
    .selectFrom((eb) =>
      eb
        .selectFrom('repository_blobs as b')
        .innerJoin('repositories as r', 'r.id', 'b.repository_id')
        .select(['b.digest', (e) => e.fn.max('b.size').as('size')])
        .where('b.generated', '=', 0)
        .where(inNamespace(namespace))
        .groupBy('b.digest')
        .as('d'),
    )
    .select((eb) => eb.fn.sum<number>('d.size').as('bytes'))
    .executeTakeFirst();
  const manifests = await db
    .selectFrom('manifests as m')
    .innerJoin('repositories as r', 'r.id', 'm.repository_id')
    .select((eb) => eb.fn.sum<number>('m.size').as('bytes'))
    .where('m.generated', '=', 0)
    .where(inNamespace(namespace))
    .executeTakeFirst();
  return Number(blobs?.bytes ?? 0) + Number(manifests?.bytes ?? 0);
}
