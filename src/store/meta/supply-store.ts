/**
 * The metadata roles behind the supply-chain module (src/supply): layer
 * inventories cached per digest, each manifest's scan (a durable queue:
 * a stored manifest without a finished scan is work), and the imported
 * OSV database. One SQL implementation (sql/sql-supply-store.ts);
 * test/store/supply-store-suite.ts is the shared suite.
 *
 * Documents (inventories, findings, OSV records) are stored as JSON text:
 * the store does not look inside them.
 */
import type { NewDelivery } from './lifecycle-store.js';

/** The inventory of each layer, read once: JSON of src/supply/inventory.ts's LayerInventory. */
export interface InventoryCache {
  /** The cached inventory if it was read with this `format`. */
  layerInventory(digest: string, format: number): Promise<string | undefined>;
  putLayerInventory(digest: string, format: number, inventory: string): Promise<void>;
}

export type ScanStatus = 'pending' | 'done' | 'failed' | 'skipped';

export interface ScanRecord {
  repository: string;
  digest: string;
  status: ScanStatus;
  /** Where the inventory came from: `layers`, `sbom` (a referrer), `attestation`, `index` (its children). */
  source: string | undefined;
  /** JSON: the image's merged inventory. */
  inventory: string | undefined;
  /** JSON: the findings. */
  findings: string | undefined;
  error: string | undefined;
  /** The vulnerability database import the findings were matched against (0: none). */
  dbGeneration: number;
  sbomDigest: string | undefined;
  scannedAt: number;
  matchedAt: number | undefined;
}

/** A manifest the scanner has work on, with its previous scan if any. */
export interface ScanWork {
  repository: string;
  digest: string;
  mediaType: string;
  content: Buffer;
  previous: ScanRecord | undefined;
}

export interface ScanQueue {
  /**
   * Stored manifests that are not referrers (no subject) and have no
   * finished scan, or whose scan is `done` against an older database
   * generation than `generation`: oldest first.
   */
  nextScans(generation: number, limit: number): Promise<ScanWork[]>;
  /**
   * Writes a manifest's scan (replacing the previous one) and, in the same
   * transaction, the webhook deliveries announcing it (a duplicate
   * endpoint and event id is skipped). A manifest deleted meanwhile is
   * no error: nothing is written.
   */
  saveScan(scan: ScanRecord, deliveries: NewDelivery[]): Promise<void>;
  getScan(repository: string, digest: string): Promise<ScanRecord | undefined>;
  /** How many manifests are waiting for a first scan. */
  pendingScans(): Promise<number>;
}

export interface VulnerabilityRecord {
  id: string;
  modified: string;
  /** JSON: the parsed record (src/supply/osv.ts's Vulnerability). */
  record: string;
  /** The (ecosystem without release, package name) pairs it affects: the lookup index. */
  packages: { ecosystem: string; name: string }[];
}

export interface VulnDbImport {
  /** Increases with each import: scans matched against an older one are matched again. */
  generation: number;
  importedAt: number;
  /** The database's own date (the newest `modified` of its records), epoch ms. */
  databaseDate: number;
  records: number;
  actor: string;
}

export interface VulnerabilityDb {
  /** Inserts or replaces records (by id) with their lookup rows, in one transaction. */
  putVulnerabilities(records: VulnerabilityRecord[]): Promise<void>;
  /** Ends an import: the new generation. */
  recordImport(entry: Omit<VulnDbImport, 'generation'>): Promise<VulnDbImport>;
  latestImport(): Promise<VulnDbImport | undefined>;
  /** Records (JSON) affecting any of the packages. */
  vulnerabilitiesFor(keys: { ecosystem: string; name: string }[]): Promise<string[]>;
  vulnerabilityCount(): Promise<number>;
}

export type SupplyStore = InventoryCache & ScanQueue & VulnerabilityDb;
