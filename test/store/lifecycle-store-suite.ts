/**
 * The behaviour every implementation of the lifecycle store roles must
 * have: usage (quotas, `pier usage`), retention's queries, the pull log,
 * online GC's reads and re-checking deletes, and the webhook outbox (each
 * tag change fanned out exactly once per endpoint, even by concurrent
 * fan-outs; deliveries handed out in tag-change order). The data is written
 * through MetaStore, as the registry writes it. SQLite and PostgreSQL
 * both run it; the fan-out is also checked with concurrent writers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import type { LifecycleStore, NewDelivery, TagEventRow } from '../../src/store/meta/lifecycle-store.js';
import type { MetaStore, NewManifest } from '../../src/store/meta/meta-store.js';

export interface LifecycleStoreFixture {
  meta: MetaStore;
  store: LifecycleStore;
  close(): Promise<void>;
}

const repo = parseRepositoryName;

function manifest(label: string, blobs: Digest[], children: Digest[] = [], subject?: Digest): NewManifest {
  const content = Buffer.from(JSON.stringify({ label, blobs: blobs.map(String), children: children.map(String) }));
  const mediaType = children.length > 0 ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
  return { digest: Digest.of(content), mediaType, content, artifactType: undefined, subject, annotations: undefined, blobs, manifests: children };
}

/** One delivery per event for each endpoint, the way the webhook queue plans them. */
const everyEvent =
  (...endpoints: string[]) =>
  (events: TagEventRow[]): NewDelivery[] =>
    events.flatMap((e) => endpoints.map((endpoint) => ({ endpoint, eventId: String(e.id), eventType: e.action, payload: JSON.stringify({ repository: e.repository, tag: e.tag, digest: e.newDigest }) })));

/**
 * Fans out until `expected` changes were read (or 10 s pass): on PostgreSQL
 * a change becomes visible to the fan-out only once every older transaction
 * on the server has ended (decision 0076), so another session may delay it.
 */
async function fanOutUntil(store: LifecycleStore, limit: number, plan: (events: TagEventRow[]) => NewDelivery[], expected: number): Promise<number> {
  let total = 0;
  const deadline = Date.now() + 10_000;
  while (total < expected && Date.now() < deadline) {
    const n = await store.fanOut(limit, plan);
    total += n;
    if (n === 0) await new Promise((r) => setTimeout(r, 10));
  }
  return total;
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
      'what the registry generated (an SBOM referrer) is outside usage and quotas until a user links the same digest',
      withStore(async ({ meta, store }) => {
        const [own, doc] = ['own', 'sbom'].map((s) => Digest.of(Buffer.from(s))) as [Digest, Digest];
        await meta.linkBlob(repo('gen/app'), own, 100);
        const image = manifest('image', [own]);
        await meta.putManifest(repo('gen/app'), image, [parseTag('v1')], 'alice');
        await meta.linkBlob(repo('gen/app'), doc, 40, { generated: true });
        const sbom = { ...manifest('sbom', [doc], [], image.digest), generated: true };
        await meta.putManifest(repo('gen/app'), sbom, [], 'system:scanner');
        // A generated link does not turn a user's link into a generated one.
        await meta.linkBlob(repo('gen/app'), own, 100, { generated: true });
        const imageBytes = 100 + image.content.length;
        assert.equal(await store.namespaceBytes('gen'), imageBytes);
        assert.deepEqual(await store.repositoryUsage(), [{ repository: 'gen/app', bytes: imageBytes, blobs: 1, manifests: 1 }]);
        assert.equal(await store.totalBytes(), imageBytes + 40 + sbom.content.length, 'the store holds it all the same');
        // A user's push of the same blob and manifest makes them the user's.
        await meta.linkBlob(repo('gen/app'), doc, 40);
        await meta.putManifest(repo('gen/app'), manifest('sbom', [doc], [], image.digest), [], 'alice');
        assert.equal(await store.namespaceBytes('gen'), imageBytes + 40 + sbom.content.length);
      }),
    );

    test(
      'links asked for together (one group commit) are each stored, and one blob linked twice at once keeps the user\'s mark',
      withStore(async ({ meta, store }) => {
        const digests = Array.from({ length: 30 }, (_, i) => Digest.of(Buffer.from(`together-${i}`)));
        const both = Digest.of(Buffer.from('linked twice at once'));
        // Started in one turn of the event loop: these share statements.
        await Promise.all([
          ...digests.map((d, i) => meta.linkBlob(repo(`grp/r${i % 3}`), d, 10 + i)),
          meta.linkBlob(repo('grp/r0'), both, 7, { generated: true }),
          meta.linkBlob(repo('grp/r0'), both, 7),
          meta.linkBlob(repo('grp/r0'), both, 7, { generated: true }),
        ]);
        for (const [i, d] of digests.entries()) assert.deepEqual(await meta.linkedBlob(repo(`grp/r${i % 3}`), d), { size: 10 + i });
        assert.equal((await store.links()).length, 31);
        // The user's link counts (a generated one would not).
        assert.equal(await store.namespaceBytes('grp'), digests.reduce((n, _, i) => n + 10 + i, 0) + 7);
      }),
    );

    test(
      'an upload session that cannot be written fails alone: the others started with it are stored',
      withStore(async ({ meta }) => {
        await meta.createUpload('dup', repo('grp/u'));
        const outcomes = await Promise.allSettled([meta.createUpload('fresh-1', repo('grp/u')), meta.createUpload('dup', repo('grp/v')), meta.createUpload('fresh-2', repo('grp/v'))]);
        assert.deepEqual(
          outcomes.map((o) => o.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        assert.equal(await meta.uploadRepository('fresh-1'), 'grp/u');
        assert.equal(await meta.uploadRepository('fresh-2'), 'grp/v');
        assert.equal(await meta.uploadRepository('dup'), 'grp/u', 'the first session keeps its repository');
        assert.deepEqual((await meta.uploadsStartedBefore(new Date(Date.now() + 1000))).sort(), ['dup', 'fresh-1', 'fresh-2'], 'in the database, not only remembered');
        await Promise.all(['dup', 'fresh-1', 'fresh-2'].map((id) => meta.deleteUpload(id)));
        for (const id of ['dup', 'fresh-1', 'fresh-2']) assert.equal(await meta.uploadRepository(id), undefined);
        assert.deepEqual(await meta.uploadsStartedBefore(new Date(Date.now() + 1000)), []);
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

    test(
      'GC reads: tags, history newest first per tag, edges, links; the watermark never goes back',
      withStore(async ({ meta, store }) => {
        const [b1, b2] = ['gc-one', 'gc-two'].map((x) => Digest.of(Buffer.from(x))) as [Digest, Digest];
        await meta.linkBlob(repo('gc/app'), b1, 10);
        await meta.linkBlob(repo('gc/app'), b2, 20);
        const w0 = await store.historyWatermark();
        const child = manifest('child', [b1]);
        const index = manifest('index', [], [child.digest]);
        const ref = manifest('sig', [b2], [], child.digest);
        await meta.putManifest(repo('gc/app'), child, [parseTag('v1')], 'alice');
        await meta.putManifest(repo('gc/app'), index, [parseTag('latest')], 'alice');
        await meta.putManifest(repo('gc/app'), ref, [], 'alice');
        await meta.moveTag(repo('gc/app'), parseTag('v1'), { to: index.digest.toString(), actor: 'bob' });
        const w1 = await store.historyWatermark();
        // SQLite: the highest id, raised by each change. PostgreSQL: the oldest running transaction (decision 0112),
        // which a transaction of another session on the shared server may hold where it is.
        assert.ok(w1 >= w0, 'the watermark never goes back');

        const tags = await store.tags();
        const id = tags[0]!.repositoryId;
        assert.deepEqual(
          tags.map((t) => [t.repositoryId, t.name, t.digest]).sort(),
          [
            [id, 'latest', index.digest.toString()],
            [id, 'v1', index.digest.toString()],
          ],
        );
        const v1 = (await store.tagHistoryRows()).filter((r) => r.tag === 'v1');
        assert.deepEqual(
          v1.map((r) => [r.action, r.newDigest]),
          [
            ['move', index.digest.toString()],
            ['create', child.digest.toString()],
          ],
          'newest first within a tag',
        );
        assert.deepEqual(await store.indexChildren(), [{ repositoryId: id, parent: index.digest.toString(), child: child.digest.toString() }]);
        assert.deepEqual(await store.referrers(), [{ repositoryId: id, parent: child.digest.toString(), child: ref.digest.toString() }]);
        assert.deepEqual(
          (await store.blobReferences()).map((e) => [e.parent, e.child]).sort(),
          [
            [child.digest.toString(), b1.toString()],
            [ref.digest.toString(), b2.toString()],
          ].sort(),
        );
        assert.deepEqual((await store.manifests()).map((m) => m.digest).sort(), [child, index, ref].map((m) => m.digest.toString()).sort());
        assert.deepEqual((await store.links()).map((l) => l.digest).sort(), [b1, b2].map(String).sort());
        assert.deepEqual([...(await store.linkedDigests([b1.toString(), 'sha256:' + '0'.repeat(64)]))], [b1.toString()]);
        assert.equal((await store.linkedDigests()).size, 2);

        assert.equal(await store.uploadsInProgress(), 0);
        await meta.createUpload('upload-1', repo('gc/app'));
        assert.equal(await store.uploadsInProgress(), 1);
      }),
    );

    test(
      'GC deletes re-check: a tagged, recently tagged, young or index-listed manifest survives; a referenced link survives',
      withStore(async ({ meta, store }) => {
        const [b1, b2] = ['del-one', 'del-two'].map((x) => Digest.of(Buffer.from(x))) as [Digest, Digest];
        await meta.linkBlob(repo('gc/del'), b1, 10);
        await meta.linkBlob(repo('gc/del'), b2, 20);
        const tagged = manifest('tagged', []);
        const child = manifest('child', [b1]);
        const index = manifest('index', [], [child.digest]);
        const orphan = manifest('orphan', []);
        const retagged = manifest('retagged', []);
        for (const m of [tagged, child, index, orphan, retagged]) await meta.putManifest(repo('gc/del'), m, [], 'alice');
        await meta.moveTag(repo('gc/del'), parseTag('keep'), { to: tagged.digest.toString(), actor: 'alice' });
        await meta.moveTag(repo('gc/del'), parseTag('idx'), { to: index.digest.toString(), actor: 'alice' });
        const watermark = await store.historyWatermark();
        // Tagged and untagged again after the mark: the delete must still spare it.
        await meta.moveTag(repo('gc/del'), parseTag('tmp'), { to: retagged.digest.toString(), actor: 'alice' });
        await meta.moveTag(repo('gc/del'), parseTag('tmp'), { to: undefined, actor: 'alice' });
        const id = (await store.tags())[0]!.repositoryId;
        const all = [tagged, child, index, orphan, retagged].map((m) => m.digest.toString());

        assert.deepEqual(await store.deleteUnreachableManifests([[id, all]], watermark, 0), [[id, []]], 'everything is younger than a cutoff of 0');
        const deleted = await store.deleteUnreachableManifests([[id, all]], watermark, Date.now() + 60_000);
        assert.deepEqual(deleted, [[id, [orphan.digest.toString()]]]);
        assert.deepEqual((await store.manifests()).map((m) => m.digest).sort(), [tagged, child, index, retagged].map((m) => m.digest.toString()).sort());

        const links = [b1, b2].map((d) => ({ repositoryId: id, digest: d.toString() }));
        assert.equal(await store.deleteUnreferencedLinks(links, 0), 0, 'younger than the cutoff');
        assert.equal(await store.deleteUnreferencedLinks(links, Date.now() + 60_000), 1, 'b2 is referenced by nothing; b1 by the child');
        assert.deepEqual((await store.links()).map((l) => l.digest), [b1.toString()]);
      }),
    );

    test(
      'the webhook outbox fans each tag change out exactly once per endpoint, even when fan-outs race',
      withStore(async ({ meta, store }) => {
        const a = manifest('hook-a', []);
        await meta.putManifest(repo('hooks/app'), a, [parseTag('before')], 'alice');
        await store.initCursor();
        await store.initCursor();
        assert.equal(await store.fanOut(100, everyEvent('ci')), 0, 'history before the first start is not replayed');

        const b = manifest('hook-b', []);
        await meta.putManifest(repo('hooks/app'), b, [], 'alice');
        for (let i = 0; i < 6; i++) await meta.moveTag(repo('hooks/app'), parseTag(`t${i % 2}`), { to: (i % 2 === 0 ? b : a).digest.toString(), actor: 'alice' });
        await meta.moveTag(repo('hooks/app'), parseTag('t0'), { to: a.digest.toString(), actor: 'alice' });
        const changes = 3;

        // Four fan-outs at once, two changes each: every change is read by exactly one of them.
        const read = await Promise.all([1, 2, 3, 4].map(() => store.fanOut(2, everyEvent('ci', 'audit'))));
        let total = read.reduce((x, y) => x + y, 0);
        total += await fanOutUntil(store, 2, everyEvent('ci', 'audit'), changes - total);
        assert.equal(total, changes);
        assert.equal(await store.fanOut(100, everyEvent('ci', 'audit')), 0);
        assert.deepEqual(await store.deliveryCounts('ci'), { pending: changes, failed: 0, delivered: 0 });
        assert.deepEqual(await store.deliveryCounts('audit'), { pending: changes, failed: 0, delivered: 0 });
        const ids = (await store.recentDeliveries('ci', 100)).map((d) => d.eventId);
        assert.equal(new Set(ids).size, ids.length, 'no event twice for one endpoint');
      }),
    );

    test(
      'the webhook outbox hands out deliveries in tag-change order, and an attempt moves the queue on',
      withStore(async ({ meta, store }) => {
        await store.initCursor();
        const [a, b, c] = ['order-a', 'order-b', 'order-c'].map((l) => manifest(l, []));
        for (const m of [a!, b!, c!]) await meta.putManifest(repo('hooks/order'), m, [], 'alice');
        for (const m of [a!, b!, c!]) await meta.moveTag(repo('hooks/order'), parseTag('latest'), { to: m.digest.toString(), actor: 'alice' });
        assert.equal(await fanOutUntil(store, 100, everyEvent('ci'), 3), 3);

        const seen: string[] = [];
        for (let d = await store.nextPending('ci'); d; d = await store.nextPending('ci')) {
          assert.equal(d.status, 'pending');
          seen.push((JSON.parse(d.payload) as { digest: string }).digest);
          const failedOnce = seen.length === 1 && d.attempts === 0;
          await store.recordAttempt(d, { at: Date.now(), statusCode: failedOnce ? 500 : 200, error: undefined, ms: 1 }, failedOnce ? { status: 'pending', attempts: 1, nextAt: Date.now(), finishedAt: undefined, lastError: 'HTTP 500' } : { status: 'delivered', attempts: d.attempts + 1, nextAt: d.nextAt, finishedAt: Date.now(), lastError: undefined });
        }
        assert.deepEqual(seen, [a!, a!, b!, c!].map((m) => m.digest.toString()), 'a retried delivery stays first; then in order');
        assert.deepEqual(await store.deliveryCounts('ci'), { pending: 0, failed: 0, delivered: 3 });
        const recent = await store.recentDeliveries('ci', 2);
        assert.deepEqual(
          recent.map((d) => (JSON.parse(d.payload) as { digest: string }).digest),
          [c!, b!].map((m) => m.digest.toString()),
          'newest first',
        );
        assert.equal(recent[0]!.attempts, 1);

        await store.recordSent({ endpoint: 'ci', eventId: 'test-1', eventType: 'test', payload: '{}', status: 'failed', createdAt: 1, finishedAt: 2, lastError: 'refused' }, { at: 2, statusCode: undefined, error: 'refused', ms: 3 });
        assert.deepEqual(await store.deliveryCounts('ci'), { pending: 0, failed: 1, delivered: 3 });
        assert.equal(await store.nextPending('ci'), undefined);
      }),
    );
  });
}
