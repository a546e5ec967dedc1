/**
 * The behaviour every implementation of the lifecycle store roles must
 * have: usage (quotas, `pier usage`), retention's queries and the pull
 * log. The data is written through MetaStore, as the registry writes it.
 * SQLite runs it today; PostgreSQL runs the same suite when it lands.
 *
 * Not yet covered here: GcQueries and WebhookOutbox (exercised end to end
 * by test/lifecycle/gc-*.test.ts and webhooks.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import type { PullLog, RetentionQueries, UsageQueries } from '../../src/store/meta/lifecycle-store.js';
import type { MetaStore, NewManifest } from '../../src/store/meta/meta-store.js';

export interface LifecycleStoreFixture {
  meta: MetaStore;
  store: UsageQueries & RetentionQueries & PullLog;
  close(): Promise<void>;
}

const repo = parseRepositoryName;

function manifest(label: string, blobs: Digest[]): NewManifest {
  const content = Buffer.from(JSON.stringify({ label, blobs: blobs.map(String) }));
  return { digest: Digest.of(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, artifactType: undefined, subject: undefined, annotations: undefined, blobs, manifests: [] };
}

export function lifecycleStoreSuite(name: string, open: () => Promise<LifecycleStoreFixture>): void {
  const withStore = (fn: (f: LifecycleStoreFixture) => Promise<void>) => async () => {
    const fixture = await open();
    try {
      await fn(fixture);
    } finally {
      await fixture.close();
    }
  };

  describe(`Lifecycle store: ${name}`, () => {
    test(
      'usage counts a blob once per namespace and registry, and per repository where it is linked',
      withStore(async ({ meta, store }) => {
        const [b1, b2, b3] = ['one', 'two', 'three'].map((s) => Digest.of(Buffer.from(s))) as [Digest, Digest, Digest];
        await meta.linkBlob(repo('team/app'), b1, 100);
        await meta.linkBlob(repo('team/app'), b2, 50);
        await meta.linkBlob(repo('team/web'), b1, 100);
        await meta.linkBlob(repo('teammate/x'), b3, 7);
        const m = manifest('app', [b1, b2]);
        await meta.putManifest(repo('team/app'), m, [parseTag('v1')], 'alice');
        const size = m.content.length;

        assert.equal(await store.namespaceBytes('team'), 150 + size, 'b1 once, b2, the manifest; not teammate/');
        assert.equal(await store.namespaceBytes('team/web'), 100);
        assert.equal(await store.namespaceBytes('nobody'), 0);
        assert.equal(await store.totalBytes(), 157 + size);
        assert.deepEqual(await store.repositoryUsage(), [
          { repository: 'team/app', bytes: 150 + size, blobs: 2, manifests: 1 },
          { repository: 'team/web', bytes: 100, blobs: 1, manifests: 0 },
          { repository: 'teammate/x', bytes: 7, blobs: 1, manifests: 0 },
        ]);
      }),
    );

    test(
      'retention sees tags newest first with their last pull; pulls of unknown repositories are skipped',
      withStore(async ({ meta, store }) => {
        const a = manifest('a', []);
        const b = manifest('b', []);
        await meta.putManifest(repo('team/app'), a, [parseTag('old')], 'alice');
        await meta.putManifest(repo('team/app'), b, [parseTag('new')], 'alice');
        await meta.putManifest(repo('other'), a, [], 'alice');
        assert.deepEqual(await store.repositoryNames(), ['other', 'team/app']);

        await store.recordPulls([
          { repository: 'team/app', tag: 'old', at: 1000 },
          { repository: 'team/app', tag: 'old', at: 5000 },
          { repository: 'nowhere', tag: 'x', at: 2000 },
        ]);
        const tags = await store.tagsByAge('team/app');
        assert.deepEqual(
          tags.map((t) => [t.name, t.digest, t.pulledAt]),
          [
            ['new', b.digest.toString(), undefined],
            ['old', a.digest.toString(), 5000],
          ],
        );
        assert.ok(tags[0]!.updatedAt >= tags[1]!.updatedAt, 'most recently moved first');
        assert.deepEqual(await store.tagsByAge('other'), []);
        assert.deepEqual(await store.tagsByAge('nowhere'), []);
      }),
    );
  });
}
