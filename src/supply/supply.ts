/**
 * The supply-chain module's face to the registry: its configuration
 * section (`scanning`), the vulnerability database import, and scan
 * results as /pier/v1 reports them. Built by the composition root
 * (src/registry/server.ts) over the SupplyStore and the Scanner.
 */
import type { Digest } from '../oci/digest.js';
import type { SupplyStore, VulnDbImport } from '../store/meta/supply-store.js';
import { SupplyError } from './errors.js';
import type { ImageInventory } from './inventory.js';
import { countSeverities, type Finding, type SeverityCounts } from './matcher.js';
import { parseOsv } from './osv.js';
import type { Scanner } from './scanner.js';
import type { VulnerabilityRule } from './policy.js';

export interface ScanningConfig {
  /** Scan images after each push and after a database import (`pier scan` works either way). */
  enabled: boolean;
  /** Write a CycloneDX SBOM referrer for each scanned image. */
  sbom: boolean;
  /** Seconds: an imported database older than this is reported as stale (import, `pier scan`, the log). */
  maxDatabaseAge: number;
  policies: VulnerabilityRule[];
}

export interface ImportBatchResult {
  accepted: number;
  rejected: { index: number; id?: string; error: string }[];
}

export interface VulnDbState {
  generation: number;
  importedAt: number | undefined;
  databaseDate: number | undefined;
  records: number;
  /** The database is older than scanning.maxDatabaseAge (or there is none). */
  stale: boolean;
}

export interface ScanReport {
  repository: string;
  digest: string;
  status: 'pending' | 'done' | 'failed' | 'skipped';
  source: string | undefined;
  error: string | undefined;
  counts: SeverityCounts;
  findings: Finding[];
  packages: number;
  /** Files of the image the inventory reads but could not parse (`path: reason`); their packages are not in `packages`. */
  inventoryErrors: string[];
  os: ImageInventory['os'];
  sbom: string | undefined;
  scannedAt: number | undefined;
  matchedAt: number | undefined;
  databaseGeneration: number;
}

export class Supply {
  constructor(
    readonly store: SupplyStore,
    readonly scanner: Scanner,
    readonly config: ScanningConfig,
  ) {}

  /** Parses and stores a batch of OSV records; a bad record is reported, not fatal. */
  async importRecords(raw: unknown[]): Promise<ImportBatchResult> {
    const rejected: ImportBatchResult['rejected'] = [];
    const records = [];
    for (const [index, r] of raw.entries()) {
      try {
        const v = parseOsv(r);
        const packages = new Map<string, { ecosystem: string; name: string }>();
        for (const a of v.affected) packages.set(`${a.ecosystem.split(':')[0]!}\0${a.name}`, { ecosystem: a.ecosystem.split(':')[0]!, name: a.name });
        records.push({ id: v.id, modified: v.modified, record: JSON.stringify(v), packages: [...packages.values()] });
      } catch (err) {
        const id = (r as { id?: unknown } | null)?.id;
        rejected.push({ index, ...(typeof id === 'string' ? { id } : {}), error: (err as Error).message });
      }
    }
    await this.store.putVulnerabilities(records);
    return { accepted: records.length, rejected };
  }

  /** Ends an import: a new database generation; every stored image is matched again from its stored inventory. */
  async finishImport(entry: { databaseDate: number; records: number; actor: string }): Promise<VulnDbState> {
    if (!Number.isFinite(entry.databaseDate) || entry.databaseDate <= 0) throw new SupplyError('ERR_OSV_INVALID', 'the import needs the database date');
    await this.store.recordImport({ importedAt: Date.now(), databaseDate: entry.databaseDate, records: entry.records, actor: entry.actor });
    this.scanner.nudge();
    return this.state();
  }

  async state(): Promise<VulnDbState> {
    const last: VulnDbImport | undefined = await this.store.latestImport();
    const records = await this.store.vulnerabilityCount();
    const stale = !last || Date.now() - last.databaseDate > this.config.maxDatabaseAge * 1000;
    return { generation: last?.generation ?? 0, importedAt: last?.importedAt, databaseDate: last?.databaseDate, records, stale };
  }

  /** The scan of a manifest as /pier/v1 reports it; `pending` when it has none yet. */
  async report(repository: string, digest: string): Promise<ScanReport> {
    const s = await this.store.getScan(repository, digest);
    const findings = s?.findings ? (JSON.parse(s.findings) as Finding[]) : [];
    const inventory = s?.inventory ? (JSON.parse(s.inventory) as ImageInventory) : undefined;
    return {
      repository,
      digest,
      status: s?.status ?? 'pending',
      source: s?.source,
      error: s?.error,
      counts: countSeverities(findings),
      findings,
      packages: inventory?.packages.length ?? 0,
      inventoryErrors: inventory?.errors ?? [],
      os: inventory?.os,
      sbom: s?.sbomDigest,
      scannedAt: s?.scannedAt,
      matchedAt: s?.matchedAt,
      databaseGeneration: s?.dbGeneration ?? 0,
    };
  }

  /** Scans now (on demand) and reports; undefined if the manifest is not stored. */
  async scanNow(repository: string, digest: Digest): Promise<ScanReport | undefined> {
    const r = await this.scanner.scanNow(repository, digest);
    return r ? this.report(repository, digest.toString()) : undefined;
  }
}
