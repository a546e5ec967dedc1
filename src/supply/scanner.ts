/**
 * The scanner: turns stored manifests into inventories, findings and SBOM
 * referrers, from a durable queue.
 *
 * The queue is the metadata itself (SupplyStore.nextScans): a manifest
 * that is stored and has no finished scan is work, and so is a finished
 * scan matched against an older vulnerability database. Nothing is kept
 * in memory across a crash; a manifest pushed just before one is scanned
 * after the restart. `manifest-pushed` events only wake the loop early.
 * One replica scans at a time (the `scanner` lease).
 *
 * A first scan reads the image's inventory — from an SBOM referrer others
 * wrote, from the BuildKit attestations of an index (for the index, and
 * for each platform image an index of the repository attests), or from
 * the layers
 * (each layer read once, then cached per digest) — then matches it. A
 * re-match after a database import uses the stored inventory: no layer
 * is read. Pier's own SBOM (CycloneDX 1.5) is written once per image as a
 * referrer, through the repository service, as `system:scanner`.
 *
 * Scanning runs after the push has answered and one image at a time, so a
 * push never waits for it.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { Digest } from '../oci/digest.js';
import { MediaTypes } from '../oci/media-types.js';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.js';
import type { NewDelivery } from '../store/meta/lifecycle-store.js';
import type { Referrer } from '../store/meta/meta-store.js';
import type { ScanRecord, ScanWork, SupplyStore } from '../store/meta/supply-store.js';
import { INVENTORY_FORMAT, mergeLayers, readAll, readLayer, type ImageInventory, type LayerInventory, type Package } from './inventory.js';
import { countSeverities, matchInventory, type Finding, type SeverityCounts } from './matcher.js';
import type { Vulnerability } from './osv.js';
import { CYCLONEDX_MEDIA_TYPE, cycloneDx, GENERATOR_ANNOTATION, packagesFromSbom, SPDX_MEDIA_TYPE } from './sbom.js';

/** The actor Pier's own writes (SBOM referrers) are recorded under. */
export const SCANNER_ACTOR = 'system:scanner';

const TICK_MS = 1000;
const LEASE_MS = 30_000;
const BATCH = 20;

const LAYER_TYPES: Record<string, 'gzip' | 'none' | 'zstd'> = {
  [MediaTypes.ociLayer]: 'none',
  [MediaTypes.ociLayerGzip]: 'gzip',
  [MediaTypes.ociLayerZstd]: 'zstd',
  [MediaTypes.dockerLayerGzip]: 'gzip',
  [MediaTypes.dockerForeignLayerGzip]: 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
};
const IMAGE_CONFIGS = new Set<string>([MediaTypes.ociConfig, MediaTypes.dockerConfig]);

/** What the scanner reads of the registry and writes through the repository service. */
export interface ScannerRegistry {
  openBlob(digest: Digest): Promise<Readable>;
  manifest(repository: string, digest: Digest): Promise<{ mediaType: string; content: Buffer } | undefined>;
  referrers(repository: string, subject: Digest): Promise<Referrer[]>;
  /** The indexes of the repository that list `digest` (where a BuildKit attestation of it may be). */
  indexesOf(repository: string, digest: Digest): Promise<Digest[]>;
  /** Stores `document` as an SBOM referrer of `subject` (not counted against quotas, as {@link SCANNER_ACTOR}); returns its digest. */
  writeSbom(repository: string, subject: Descriptor, document: Buffer): Promise<Digest>;
}

export interface ScanCompletedEvent {
  id: string;
  type: 'scan_complete';
  repository: string;
  digest: string;
  status: 'done' | 'failed';
  counts: SeverityCounts;
  /** Critical findings the previous scan of this manifest did not have. */
  newCritical: Finding[];
  error?: string;
  at: string;
}

export interface ScannerOptions {
  store: SupplyStore;
  registry: ScannerRegistry;
  coordinator: { acquireLease(name: string, ttlMs: number): Promise<boolean> };
  /** The webhook deliveries announcing a finished scan (written with the scan), and a wake-up for their queue. */
  webhooks: { plan(type: 'scan_complete', repository: string, eventId: string, payload: string): NewDelivery[]; nudge(): void };
  settings: { enabled: boolean; sbom: boolean };
  version: string;
  log: Logger;
  /** Called for every layer read from the blob store (a metric). */
  onLayerRead?: () => void;
}

export interface ScanResult {
  record: ScanRecord;
  findings: Finding[];
  inventory: ImageInventory | undefined;
}

function notImage(parsed: ParsedManifest): string | undefined {
  if (parsed.kind === 'index') return parsed.manifests.length === 0 ? 'an empty index' : undefined;
  if (!parsed.config || !IMAGE_CONFIGS.has(parsed.config.mediaType)) return `not an image (config ${parsed.config?.mediaType ?? 'none'})`;
  const other = parsed.layers.find((l) => LAYER_TYPES[l.mediaType] === undefined);
  if (other) return `not an image (layer ${other.mediaType})`;
  return undefined;
}

export class Scanner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(private readonly o: ScannerOptions) {}

  start(): void {
    if (!this.o.settings.enabled) return;
    this.timer = setInterval(() => this.nudge(), TICK_MS);
    this.timer.unref();
    this.nudge();
  }

  /** Looks for work now (after a push, an import). */
  nudge(): void {
    if (this.closed || !this.o.settings.enabled) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        if (!(await this.o.coordinator.acquireLease('scanner', LEASE_MS))) return;
        const generation = (await this.o.store.latestImport())?.generation ?? 0;
        for (;;) {
          if (this.closed) return;
          const work = await this.o.store.nextScans(generation, BATCH);
          for (const w of work) {
            if (this.closed) return;
            await this.process(w, generation);
          }
          if (work.length < BATCH) break;
          await this.o.coordinator.acquireLease('scanner', LEASE_MS);
        }
      } while (this.again && !this.closed);
    })()
      .catch((err: unknown) => this.o.log.error({ err }, 'scanner failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Scans one manifest now (`pier scan`): reads its inventory again (layers from the cache), matches, saves. */
  async scanNow(repository: string, digest: Digest): Promise<ScanResult | undefined> {
    const m = await this.o.registry.manifest(repository, digest);
    if (!m) return undefined;
    const generation = (await this.o.store.latestImport())?.generation ?? 0;
    const previous = await this.o.store.getScan(repository, digest.toString());
    return this.process({ repository, digest: digest.toString(), mediaType: m.mediaType, content: m.content, previous: previous && { ...previous, status: 'pending' } }, generation);
  }

  private async process(work: ScanWork, generation: number): Promise<ScanResult> {
    const { store, log } = this.o;
    const now = Date.now();
    const previous = work.previous;
    let inventory: ImageInventory | undefined;
    let source: string | undefined;
    let sbomDigest = previous?.sbomDigest;
    let record: ScanRecord;
    let findings: Finding[] = [];
    try {
      const parsed = parseManifest(work.content, work.mediaType);
      const skip = notImage(parsed);
      if (skip) {
        record = { repository: work.repository, digest: work.digest, status: 'skipped', source: undefined, inventory: undefined, findings: undefined, error: skip, dbGeneration: generation, sbomDigest: undefined, scannedAt: now, matchedAt: undefined };
        await store.saveScan(record, []);
        return { record, findings, inventory };
      }
      if (previous?.status === 'done' && previous.inventory !== undefined) {
        // A re-match: the stored inventory, no layer read.
        inventory = JSON.parse(previous.inventory) as ImageInventory;
        source = previous.source;
      } else {
        ({ inventory, source } = await this.inventoryOf(work.repository, Digest.parse(work.digest), parsed));
      }
      findings = await matchInventory(inventory, (keys) => this.lookup(keys));
      if (this.o.settings.sbom && sbomDigest === undefined && source !== 'sbom') {
        const doc = Buffer.from(JSON.stringify(cycloneDx(inventory, { repository: work.repository, digest: work.digest }, this.o.version)));
        const subject: Descriptor = { mediaType: parsed.mediaType, digest: Digest.parse(work.digest), size: work.content.length };
        sbomDigest = (await this.o.registry.writeSbom(work.repository, subject, doc)).toString();
      }
      record = {
        repository: work.repository,
        digest: work.digest,
        status: 'done',
        source,
        inventory: JSON.stringify(inventory),
        findings: JSON.stringify(findings),
        error: undefined,
        dbGeneration: generation,
        sbomDigest,
        scannedAt: previous?.status === 'done' ? previous.scannedAt : now,
        matchedAt: now,
      };
    } catch (err) {
      log.warn({ err, repository: work.repository, digest: work.digest }, 'scan failed');
      record = { repository: work.repository, digest: work.digest, status: 'failed', source, inventory: undefined, findings: undefined, error: (err as Error).message, dbGeneration: generation, sbomDigest, scannedAt: now, matchedAt: undefined };
    }
    const event = this.event(record, findings, previous);
    const deliveries = this.o.webhooks.plan('scan_complete', work.repository, event.id, JSON.stringify(event));
    await store.saveScan(record, deliveries);
    if (deliveries.length) this.o.webhooks.nudge();
    return { record, findings, inventory };
  }

  private event(record: ScanRecord, findings: Finding[], previous: ScanRecord | undefined): ScanCompletedEvent {
    const before = new Set<string>();
    if (previous?.findings) for (const f of JSON.parse(previous.findings) as Finding[]) if (f.severity === 'critical') before.add(`${f.id}\0${f.package}`);
    return {
      id: `scan-${record.repository}@${record.digest}-${record.dbGeneration}-${record.matchedAt ?? record.scannedAt}`,
      type: 'scan_complete',
      repository: record.repository,
      digest: record.digest,
      status: record.status === 'failed' ? 'failed' : 'done',
      counts: countSeverities(findings),
      newCritical: findings.filter((f) => f.severity === 'critical' && !before.has(`${f.id}\0${f.package}`)),
      ...(record.error ? { error: record.error } : {}),
      at: new Date(record.matchedAt ?? record.scannedAt).toISOString(),
    };
  }

  private async lookup(keys: { ecosystem: string; name: string }[]): Promise<Vulnerability[]> {
    return (await this.o.store.vulnerabilitiesFor(keys)).map((r) => JSON.parse(r) as Vulnerability);
  }

  /** An image's inventory: an SBOM referrer others wrote, BuildKit attestations of an index, or the layers. */
  private async inventoryOf(repository: string, digest: Digest, parsed: ParsedManifest): Promise<{ inventory: ImageInventory; source: string }> {
    const fromReferrer = await this.sbomReferrer(repository, digest);
    if (fromReferrer) return { inventory: fromReferrer, source: 'sbom' };
    if (parsed.kind === 'index') return this.indexInventory(repository, parsed);
    const attested = await this.attestationOfChild(repository, digest);
    if (attested) return { inventory: attested, source: 'attestation' };
    const layers: LayerInventory[] = [];
    for (const layer of parsed.layers) layers.push(await this.layer(layer));
    return { inventory: mergeLayers(layers), source: 'layers' };
  }

  private async layer(layer: Descriptor): Promise<LayerInventory> {
    const { store } = this.o;
    const key = layer.digest.toString();
    const cached = await store.layerInventory(key, INVENTORY_FORMAT);
    if (cached !== undefined) return JSON.parse(cached) as LayerInventory;
    const compression = LAYER_TYPES[layer.mediaType] ?? 'gzip';
    this.o.onLayerRead?.();
    let inventory: LayerInventory;
    try {
      inventory = await readLayer(await this.o.registry.openBlob(layer.digest), compression);
    } catch (err) {
      throw new Error(`reading layer ${key} (${compression === 'none' ? 'tar' : compression}): ${(err as Error).message}`, { cause: err });
    }
    await store.putLayerInventory(key, INVENTORY_FORMAT, JSON.stringify(inventory));
    return inventory;
  }

  /** An SBOM referrer of the image not written by Pier (syft, Trivy, cosign attach sbom), read as packages. */
  private async sbomReferrer(repository: string, digest: Digest): Promise<ImageInventory | undefined> {
    const referrers = await this.o.registry.referrers(repository, digest);
    for (const r of referrers) {
      if (r.artifactType !== CYCLONEDX_MEDIA_TYPE && r.artifactType !== SPDX_MEDIA_TYPE) continue;
      if (r.annotations?.[GENERATOR_ANNOTATION] !== undefined) continue;
      const m = await this.o.registry.manifest(repository, r.digest);
      if (!m) continue;
      const parsed = parseManifest(m.content, m.mediaType);
      for (const layer of parsed.layers) {
        const inventory = packagesFromSbom(JSON.parse((await readAll(await this.o.registry.openBlob(layer.digest))).toString('utf8')));
        if (inventory) return inventory;
      }
    }
    return undefined;
  }

  /**
   * An index: each platform's inventory, from its BuildKit attestation
   * manifest (an SPDX or CycloneDX in-toto statement) when the index has
   * one, else from the child's layers; packages merged.
   */
  private async indexInventory(repository: string, index: ParsedManifest): Promise<{ inventory: ImageInventory; source: string }> {
    const attestations = new Map<string, Descriptor>();
    for (const d of index.manifests) {
      const target = d.annotations?.['vnd.docker.reference.digest'];
      if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' && target) attestations.set(target, d);
    }
    const packages: Package[] = [];
    const seen = new Set<string>();
    let os: ImageInventory['os'];
    const errors: string[] = [];
    let fromAttestations = 0;
    let children = 0;
    for (const child of index.manifests) {
      if (child.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
      children++;
      let inventory: ImageInventory | undefined;
      const att = attestations.get(child.digest.toString());
      if (att) {
        inventory = await this.attestationInventory(repository, att.digest);
        if (inventory) fromAttestations++;
      }
      if (!inventory) {
        const m = await this.o.registry.manifest(repository, child.digest);
        if (!m) continue;
        const parsed = parseManifest(m.content, m.mediaType);
        if (notImage(parsed) || parsed.kind === 'index') continue;
        inventory = (await this.inventoryOf(repository, child.digest, parsed)).inventory;
      }
      os ??= inventory.os;
      for (const e of inventory.errors ?? []) errors.push(`${child.digest.toString()}: ${e}`);
      for (const p of inventory.packages) {
        const k = `${p.type}\0${p.name}\0${p.version}`;
        if (!seen.has(k)) {
          seen.add(k);
          packages.push(p);
        }
      }
    }
    return { inventory: { os, packages, ...(errors.length ? { errors } : {}) }, source: fromAttestations > 0 && fromAttestations === children ? 'attestation' : 'index' };
  }

  /** A platform image's BuildKit attestation, from an index of the repository that lists both. */
  private async attestationOfChild(repository: string, digest: Digest): Promise<ImageInventory | undefined> {
    for (const parent of await this.o.registry.indexesOf(repository, digest)) {
      const m = await this.o.registry.manifest(repository, parent);
      if (!m) continue;
      const index = parseManifest(m.content, m.mediaType);
      const att = index.manifests.find((d) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' && d.annotations['vnd.docker.reference.digest'] === digest.toString());
      const inventory = att && (await this.attestationInventory(repository, att.digest));
      if (inventory) return inventory;
    }
    return undefined;
  }

  private async attestationInventory(repository: string, digest: Digest): Promise<ImageInventory | undefined> {
    const m = await this.o.registry.manifest(repository, digest);
    if (!m) return undefined;
    const parsed = parseManifest(m.content, m.mediaType);
    for (const layer of parsed.layers) {
      const predicate = layer.annotations?.['in-toto.io/predicate-type'] ?? '';
      if (!/spdx|cyclonedx/i.test(predicate)) continue;
      const inventory = packagesFromSbom(JSON.parse((await readAll(await this.o.registry.openBlob(layer.digest))).toString('utf8')));
      if (inventory) return inventory;
    }
    return undefined;
  }
}
