/** The supply-chain roles over SQL (tables of migration 0010): see ../supply-store.ts. */
import type { Kysely } from 'kysely';
import type { NewDelivery } from '../lifecycle-store.js';
import type { ScanRecord, ScanWork, SupplyStore, VulnDbImport, VulnerabilityRecord } from '../supply-store.js';
import type { Database, ImageScansTable } from './schema.js';
import { enqueueDeliveries } from './sql-lifecycle-store.js';

const BATCH = 200;

function toScan(repository: string, r: ImageScansTable): ScanRecord {
  return {
    repository,
    digest: r.digest,
    status: r.status,
    source: r.source ?? undefined,
    inventory: r.inventory ?? undefined,
    findings: r.findings ?? undefined,
    error: r.error ?? undefined,
    dbGeneration: Number(r.db_generation),
    sbomDigest: r.sbom_digest ?? undefined,
    scannedAt: Number(r.scanned_at),
    matchedAt: r.matched_at === null ? undefined : Number(r.matched_at),
  };
}

export class SqlSupplyStore implements SupplyStore {
  constructor(private readonly db: Kysely<Database>) {}

  // ---- inventories

  async layerInventory(digest: string, format: number): Promise<string | undefined> {
    const row = await this.db.selectFrom('layer_inventories').select(['format', 'inventory']).where('digest', '=', digest).executeTakeFirst();
    return row && Number(row.format) === format ? row.inventory : undefined;
  }

  async putLayerInventory(digest: string, format: number, inventory: string): Promise<void> {
    await this.db
      .insertInto('layer_inventories')
      .values({ digest, format, inventory, created_at: Date.now() })
      .onConflict((oc) => oc.column('digest').doUpdateSet({ format, inventory }))
      .execute();
  }

  // ---- scans

  async nextScans(generation: number, limit: number): Promise<ScanWork[]> {
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .leftJoin('image_scans as s', (j) => j.onRef('s.repository_id', '=', 'm.repository_id').onRef('s.digest', '=', 'm.digest'))
      .select(['r.name', 'm.digest', 'm.media_type', 'm.content', 'm.created_at'])
      .select(['s.status', 's.source', 's.inventory', 's.findings', 's.error', 's.db_generation', 's.sbom_digest', 's.scanned_at', 's.matched_at'])
      .where('m.subject_digest', 'is', null)
      .where((eb) => eb.or([eb('s.digest', 'is', null), eb('s.status', '=', 'pending'), eb.and([eb('s.status', '=', 'done'), eb('s.db_generation', '<', generation)])]))
      .orderBy('m.created_at')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      repository: r.name,
      digest: r.digest,
      mediaType: r.media_type,
      content: Buffer.from(r.content),
      previous:
        r.status === null || r.status === undefined
          ? undefined
          : toScan(r.name, {
              repository_id: 0,
              digest: r.digest,
              status: r.status,
              source: r.source ?? null,
              inventory: r.inventory ?? null,
              findings: r.findings ?? null,
              error: r.error ?? null,
              db_generation: Number(r.db_generation ?? 0),
              sbom_digest: r.sbom_digest ?? null,
              scanned_at: Number(r.scanned_at ?? 0),
              matched_at: r.matched_at ?? null,
            }),
    }));
  }

  async saveScan(scan: ScanRecord, deliveries: NewDelivery[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const repo = await tx.selectFrom('repositories').select('id').where('name', '=', scan.repository).executeTakeFirst();
      if (!repo) return;
      const repositoryId = Number(repo.id);
      const exists = await tx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', '=', scan.digest).executeTakeFirst();
      if (!exists) return;
      const values = {
        status: scan.status,
        source: scan.source ?? null,
        inventory: scan.inventory ?? null,
        findings: scan.findings ?? null,
        error: scan.error ?? null,
        db_generation: scan.dbGeneration,
        sbom_digest: scan.sbomDigest ?? null,
        scanned_at: scan.scannedAt,
        matched_at: scan.matchedAt ?? null,
      };
      await tx
        .insertInto('image_scans')
        .values({ repository_id: repositoryId, digest: scan.digest, ...values })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet(values))
        .execute();
      await enqueueDeliveries(tx, deliveries);
    });
  }

  async getScan(repository: string, digest: string): Promise<ScanRecord | undefined> {
    const row = await this.db
      .selectFrom('image_scans as s')
      .innerJoin('repositories as r', 'r.id', 's.repository_id')
      .selectAll('s')
      .where('r.name', '=', repository)
      .where('s.digest', '=', digest)
      .executeTakeFirst();
    return row ? toScan(repository, row) : undefined;
  }

  async pendingScans(): Promise<number> {
    const row = await this.db
      .selectFrom('manifests as m')
      .leftJoin('image_scans as s', (j) => j.onRef('s.repository_id', '=', 'm.repository_id').onRef('s.digest', '=', 'm.digest'))
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('m.subject_digest', 'is', null)
      .where((eb) => eb.or([eb('s.digest', 'is', null), eb('s.status', '=', 'pending')]))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  // ---- the vulnerability database

  async putVulnerabilities(records: VulnerabilityRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (let i = 0; i < records.length; i += BATCH) {
        const batch = records.slice(i, i + BATCH);
        const ids = batch.map((r) => r.id);
        await tx.deleteFrom('vulnerability_packages').where('vulnerability_id', 'in', ids).execute();
        await tx
          .insertInto('vulnerabilities')
          .values(batch.map((r) => ({ id: r.id, modified: r.modified, record: r.record })))
          .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ modified: eb.ref('excluded.modified'), record: eb.ref('excluded.record') })))
          .execute();
        const keys = new Map<string, { ecosystem: string; name: string; vulnerability_id: string }>();
        for (const r of batch) for (const p of r.packages) keys.set(`${p.ecosystem}\0${p.name}\0${r.id}`, { ecosystem: p.ecosystem, name: p.name, vulnerability_id: r.id });
        const rows = [...keys.values()];
        for (let j = 0; j < rows.length; j += BATCH) await tx.insertInto('vulnerability_packages').values(rows.slice(j, j + BATCH)).execute();
      }
    });
  }

  async recordImport(entry: Omit<VulnDbImport, 'generation'>): Promise<VulnDbImport> {
    const row = await this.db
      .insertInto('vulndb_imports')
      .values({ imported_at: entry.importedAt, database_date: entry.databaseDate, records: entry.records, actor: entry.actor })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { ...entry, generation: Number(row.id) };
  }

  async latestImport(): Promise<VulnDbImport | undefined> {
    const r = await this.db.selectFrom('vulndb_imports').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r ? { generation: Number(r.id), importedAt: Number(r.imported_at), databaseDate: Number(r.database_date), records: Number(r.records), actor: r.actor } : undefined;
  }

  async vulnerabilitiesFor(keys: { ecosystem: string; name: string }[]): Promise<string[]> {
    const out = new Map<string, string>();
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      const rows = await this.db
        .selectFrom('vulnerability_packages as p')
        .innerJoin('vulnerabilities as v', 'v.id', 'p.vulnerability_id')
        .select(['v.id', 'v.record'])
        .where((eb) => eb.or(batch.map((k) => eb.and([eb('p.ecosystem', '=', k.ecosystem), eb('p.name', '=', k.name)]))))
        .execute();
      for (const r of rows) out.set(r.id, r.record);
    }
    return [...out.values()];
  }

  async vulnerabilityCount(): Promise<number> {
    const row = await this.db.selectFrom('vulnerabilities').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
