/**
 * The behaviour every implementation of the supply-chain store roles must
 * have (src/store/meta/supply-store.ts): the layer inventory cache, the
 * scan queue (what is work, replacing a scan, a deleted manifest), and the
 * vulnerability database (replace by id, lookup by package, generations).
 * SQLite and PostgreSQL run it (sqlite- and postgres-supply-store.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import type { MetaStore, NewManifest } from '../../src/store/meta/meta-store.js';
import type { ScanRecord, SupplyStore } from '../../src/store/meta/supply-store.js';

export interface SupplyStoreFixture {
  meta: MetaStore;
  store: SupplyStore;
  close(): Promise<void>;
}

function manifest(label: string, subject?: Digest): NewManifest {
  const content = Buffer.from(JSON.stringify({ label }));
  return { digest: Digest.of(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, artifactType: undefined, subject, annotations: undefined, blobs: [], manifests: [] };
}

function scan(repository: string, digest: string, over: Partial<ScanRecord> = {}): ScanRecord {
  return { repository, digest, status: 'done', source: 'layers', inventory: '{"packages":[]}', findings: '[]', error: undefined, dbGeneration: 1, sbomDigest: undefined, scannedAt: 1000, matchedAt: 1000, ...over };
}

export function supplyStoreSuite(name: string, open: () => Promise<SupplyStoreFixture>): void {
  const withStore = (fn: (f: SupplyStoreFixture) => Promise<void>) => async () => {
    const fixture = await open();
    try {
      await fn(fixture);
    } finally {
      await fixture.close();
    }
  };

  describe(`Supply store: ${name}`, () => {
    test(
      'layer inventories are cached per digest and format',
      withStore(async ({ store }) => {
        assert.equal(await store.layerInventory('sha256:a', 1), undefined);
        await store.putLayerInventory('sha256:a', 1, '{"files":{}}');
        assert.equal(await store.layerInventory('sha256:a', 1), '{"files":{}}');
        assert.equal(await store.layerInventory('sha256:a', 2), undefined, 'another format is read again');
        await store.putLayerInventory('sha256:a', 2, '{"v":2}');
        assert.equal(await store.layerInventory('sha256:a', 2), '{"v":2}');
      }),
    );

    test(
      'the scan queue: unscanned manifests, not referrers; done scans come back for a newer database; a deleted manifest takes its scan',
      withStore(async ({ meta, store }) => {
        const repo = parseRepositoryName('team/app');
        const image = manifest('image');
        const other = manifest('other');
        await meta.putManifest(repo, image, [parseTag('v1')], 'alice');
        await meta.putManifest(repo, other, [], 'alice');
        await meta.putManifest(repo, manifest('sbom', image.digest), [], 'system:scanner');
        const work = await store.nextScans(0, 10);
        assert.deepEqual(work.map((w) => w.digest).sort(), [image.digest.toString(), other.digest.toString()].sort(), 'the referrer is not work');
        assert.ok(work.every((w) => w.previous === undefined && w.repository === 'team/app' && w.content.length > 0));
        assert.equal(await store.pendingScans(), 2);

        await store.saveScan(scan('team/app', image.digest.toString(), { findings: '[{"id":"X"}]' }), []);
        await store.saveScan(scan('team/app', other.digest.toString(), { status: 'failed', error: 'boom', inventory: undefined, findings: undefined }), []);
        assert.deepEqual(await store.nextScans(1, 10), [], 'done at this generation, failed: no work');
        assert.equal(await store.pendingScans(), 0);
        const again = await store.nextScans(2, 10);
        assert.deepEqual(again.map((w) => w.digest), [image.digest.toString()], 'a newer database: the done scan comes back, with its previous record');
        assert.equal(again[0]!.previous?.findings, '[{"id":"X"}]');
        assert.equal(again[0]!.previous?.inventory, '{"packages":[]}');

        await store.saveScan(scan('team/app', image.digest.toString(), { dbGeneration: 2, findings: '[]', sbomDigest: 'sha256:s' }), []);
        const got = await store.getScan('team/app', image.digest.toString());
        assert.equal(got?.dbGeneration, 2);
        assert.equal(got?.sbomDigest, 'sha256:s');
        assert.equal((await store.getScan('team/app', other.digest.toString()))?.error, 'boom');

        assert.ok(await meta.deleteManifest(repo, other.digest, 'alice', { allowReferenced: true }));
        assert.equal(await store.getScan('team/app', other.digest.toString()), undefined, 'deleted with its manifest');
        await store.saveScan(scan('team/app', other.digest.toString()), []);
        assert.equal(await store.getScan('team/app', other.digest.toString()), undefined, 'a scan of a deleted manifest is not written');
      }),
    );

    test(
      'the vulnerability database: records replaced by id, looked up by ecosystem and package, each import a new generation',
      withStore(async ({ store }) => {
        assert.equal(await store.latestImport(), undefined);
        await store.putVulnerabilities([
          { id: 'A', modified: '1', record: '{"id":"A"}', packages: [{ ecosystem: 'Debian', name: 'openssl' }] },
          { id: 'B', modified: '1', record: '{"id":"B"}', packages: [{ ecosystem: 'npm', name: 'lodash' }, { ecosystem: 'npm', name: 'lodash-es' }] },
        ]);
        assert.deepEqual((await store.vulnerabilitiesFor([{ ecosystem: 'npm', name: 'lodash-es' }])).sort(), ['{"id":"B"}']);
        assert.deepEqual((await store.vulnerabilitiesFor([{ ecosystem: 'Debian', name: 'openssl' }, { ecosystem: 'npm', name: 'lodash' }])).sort(), ['{"id":"A"}', '{"id":"B"}']);
        assert.deepEqual(await store.vulnerabilitiesFor([{ ecosystem: 'PyPI', name: 'openssl' }]), []);
        await store.putVulnerabilities([{ id: 'B', modified: '2', record: '{"id":"B2"}', packages: [{ ecosystem: 'npm', name: 'underscore' }] }]);
        assert.deepEqual(await store.vulnerabilitiesFor([{ ecosystem: 'npm', name: 'lodash' }]), [], 'the old lookup rows went with the old record');
        assert.deepEqual(await store.vulnerabilitiesFor([{ ecosystem: 'npm', name: 'underscore' }]), ['{"id":"B2"}']);
        assert.equal(await store.vulnerabilityCount(), 2);
        const first = await store.recordImport({ importedAt: 10, databaseDate: 5, records: 2, actor: 'admin' });
        const second = await store.recordImport({ importedAt: 20, databaseDate: 6, records: 1, actor: 'admin' });
        assert.ok(second.generation > first.generation);
        assert.deepEqual(await store.latestImport(), second);
      }),
    );
  });
}
