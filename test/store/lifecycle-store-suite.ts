/**
 * The behaviour every implementation of the lifecycle store roles must
 * have: usage (quotas, `pier usage`), retention's queries and the pull
 * log. The data is written through MetaStore, as the registry writes it.
 * SQLite and PostgreSQL both run it.
 *
 * The webhook outbox's fan-out is checked with concurrent writers. Not yet
 * covered here: GcQueries (exercised end to end by test/lifecycle/gc-*.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import type { PullLog, RetentionQueries, TagEventRow, UsageQueries, WebhookOutbox } from '../../src/store/meta/lifecycle-store.js';
import type { MetaStore, NewManifest } from '../../src/store/meta/meta-store.js';

export interface LifecycleStoreFixture {
  meta: MetaStore;
  store: UsageQueries & RetentionQueries & PullLog & WebhookOutbox;
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

    test(
      'the webhook outbox fans out every tag change exactly once, in order per tag, while writers commit concurrently',
      withStore(async ({ meta, store }) => {
        const r = repo('team/app');
        const versions = Array.from({ length: 5 }, (_, i) => manifest(`v${i}`, []));
        await meta.putManifest(r, versions[0]!, [parseTag('old')], 'setup');
        await store.initCursor();
        for (const v of versions) await meta.putManifest(r, v, [], 'setup');
        const tags = ['t0', 't1', 't2'];
        let changes = 0;
        const writer = async (w: number) => {
          for (let i = 0; i < 12; i++) {
            const tag = parseTag(tags[(w + i) % tags.length]!);
            const to = versions[(w * 7 + i * 3) % versions.length]!;
            const made = i % 3 === 0 ? (await meta.putManifest(r, to, [tag], `w${w}`)).length : (await meta.moveTag(r, tag, { to: to.digest.toString(), actor: `w${w}` })) ? 1 : 0;
            changes += made;
          }
        };
        // Deliveries only for the writers' tags (see below for 'old').
        const plan = (events: TagEventRow[]) => events.filter((e) => e.tag !== 'old').map((e) => ({ endpoint: 'e', eventId: `ev-${e.id}`, eventType: e.action, payload: JSON.stringify(e) }));
        let writing = true;
        const fanner = (async () => {
          const deadline = Date.now() + 30_000;
          for (;;) {
            const n = await store.fanOut(4, plan);
            if (!writing && n === 0 && (await store.deliveryCounts('e')).pending >= changes) return;
            if (Date.now() > deadline) return;
            if (n === 0) await new Promise((res) => setTimeout(res, 2));
          }
        })();
        await Promise.all([0, 1, 2, 3].map(writer));
        writing = false;
        await fanner;

        // (On PostgreSQL the first cursor is placed before the oldest transaction running anywhere on the
        // server, so a change committed just before initCursor may be fanned out too: only the writers' count.)
        const delivered = (await store.recentDeliveries('e', 10_000)).reverse().map((d) => JSON.parse(d.payload) as TagEventRow);
        assert.ok(changes > 10, 'the writers changed tags');
        assert.equal(delivered.length, changes, 'every change fanned out (none skipped, none twice)');
        assert.equal(new Set(delivered.map((e) => e.id)).size, changes);
        for (const tag of tags) {
          const mine = delivered.filter((e) => e.tag === tag);
          const history = (await meta.tagHistory(r, parseTag(tag), 1000)).reverse();
          assert.deepEqual(
            mine.map((e) => e.id),
            history.map((h) => h.id),
            `${tag}: delivered in the order the changes were made`,
          );
          for (let k = 1; k < mine.length; k++) assert.equal(mine[k]!.oldDigest, mine[k - 1]!.newDigest, `${tag}: each change starts where the one before ended`);
        }
      }),
    );
  });
}
