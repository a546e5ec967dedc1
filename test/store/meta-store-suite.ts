/**
 * The behaviour every MetaStore implementation must have. SQLite and
 * PostgreSQL both run it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import { MetaStoreError, type MetaStore, type NewManifest } from '../../src/store/meta/meta-store.js';

export interface MetaStoreFixture {
  store: MetaStore;
  cleanup(): Promise<void>;
}

const repo = parseRepositoryName;
const tag = parseTag;

function manifest(label: string, blobs: Digest[] = [], extra: Partial<NewManifest> = {}): NewManifest {
  const content = Buffer.from(JSON.stringify({ label, blobs: blobs.map(String) }));
  return {
    digest: Digest.of(content),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    content,
    artifactType: undefined,
    subject: undefined,
    annotations: undefined,
    blobs,
    manifests: [],
    ...extra,
  };
}

export function metaStoreSuite(name: string, open: () => Promise<MetaStoreFixture>): void {
  const withStore = (fn: (store: MetaStore) => Promise<void>) => async () => {
    const fixture = await open();
    try {
      await fn(fixture.store);
    } finally {
      await fixture.store.close();
      await fixture.cleanup();
    }
  };

  describe(`MetaStore: ${name}`, () => {
    test(
      'blob links are per repository',
      withStore(async (store) => {
        const d = Digest.of('blob');
        await store.linkBlob(repo('a'), d, 4);
        await store.linkBlob(repo('a'), d, 4);
        assert.deepEqual(await store.linkedBlob(repo('a'), d), { size: 4 });
        assert.equal(await store.linkedBlob(repo('b'), d), undefined);
        assert.deepEqual(await store.repositoriesWithBlob(d, 10), ['a']);
        assert.equal(await store.unlinkBlob(repo('a'), d), true);
        assert.equal(await store.unlinkBlob(repo('a'), d), false);
        assert.equal(await store.linkedBlob(repo('a'), d), undefined);
      }),
    );

    test(
      'a manifest with a missing reference is refused whole',
      withStore(async (store) => {
        const present = Digest.of('present');
        const absent = Digest.of('absent');
        await store.linkBlob(repo('r'), present, 7);
        const m = manifest('m', [present, absent]);
        await assert.rejects(store.putManifest(repo('r'), m, [tag('v1')], 'alice'), (err: unknown) => {
          assert.ok(err instanceof MetaStoreError);
          assert.equal(err.code, 'ERR_MANIFEST_REFERENCE_MISSING');
          assert.deepEqual(err.detail, [absent.toString()]);
          return true;
        });
        assert.equal(await store.getManifest(repo('r'), m.digest), undefined);
        assert.deepEqual(await store.listTags(repo('r'), { limit: 10 }), []);
        // The failed transaction left the repository usable.
        await store.linkBlob(repo('fresh'), present, 7);
        assert.deepEqual(await store.linkedBlob(repo('fresh'), present), { size: 7 });
      }),
    );

    test(
      'tags move, and every change is in the history with its actor',
      withStore(async (store) => {
        const b = Digest.of('layer');
        await store.linkBlob(repo('app'), b, 5);
        const v1 = manifest('v1', [b]);
        const v2 = manifest('v2', [b]);
        await store.putManifest(repo('app'), v1, [tag('latest')], 'alice');
        await store.putManifest(repo('app'), v1, [tag('latest')], 'alice');
        await store.putManifest(repo('app'), v2, [tag('latest'), tag('v2')], 'bob');
        assert.equal((await store.getTaggedManifest(repo('app'), tag('latest')))?.digest.toString(), v2.digest.toString());
        assert.deepEqual((await store.getManifest(repo('app'), v1.digest))?.content, v1.content);
        assert.equal(await store.deleteTag(repo('app'), tag('latest'), 'carol'), true);
        assert.equal(await store.deleteTag(repo('app'), tag('latest'), 'carol'), false);
        const history = await store.tagHistory(repo('app'), tag('latest'), 10);
        assert.deepEqual(
          history.map((h) => [h.action, h.oldDigest, h.newDigest, h.actor]),
          [
            ['delete', v2.digest.toString(), undefined, 'carol'],
            ['move', v1.digest.toString(), v2.digest.toString(), 'bob'],
            ['create', undefined, v1.digest.toString(), 'alice'],
          ],
        );
      }),
    );

    test(
      'deleting a manifest removes the tags that point at it',
      withStore(async (store) => {
        const m = manifest('m');
        await store.putManifest(repo('d'), m, [tag('a'), tag('b')], 'alice');
        assert.equal(await store.deleteManifest(repo('d'), m.digest, 'bob'), true);
        assert.equal(await store.getTaggedManifest(repo('d'), tag('a')), undefined);
        assert.deepEqual(await store.listTags(repo('d'), { limit: 10 }), []);
        assert.equal(await store.deleteManifest(repo('d'), m.digest, 'bob'), false);
      }),
    );

    test(
      'a manifest an index lists is not deleted unless allowed; deleting a tag keeps the manifest',
      withStore(async (store) => {
        const child = manifest('child');
        const index = manifest('index', [], { manifests: [child.digest], mediaType: 'application/vnd.oci.image.index.v1+json' });
        await store.putManifest(repo('i'), child, [tag('c1'), tag('c2')], 'alice');
        await store.putManifest(repo('i'), index, [tag('multi')], 'alice');
        assert.deepEqual((await store.indexesReferencing(repo('i'), child.digest)).map(String), [index.digest.toString()]);
        await assert.rejects(store.deleteManifest(repo('i'), child.digest, 'bob'), (err: unknown) => {
          assert.ok(err instanceof MetaStoreError);
          assert.equal(err.code, 'ERR_MANIFEST_REFERENCED');
          assert.deepEqual(err.detail, { indexes: [index.digest.toString()] });
          return true;
        });
        assert.ok(await store.getManifest(repo('i'), child.digest), 'the refused delete changed nothing');
        assert.equal(await store.deleteTag(repo('i'), tag('c1'), 'bob'), true);
        assert.ok(await store.getManifest(repo('i'), child.digest), 'a tag delete keeps the manifest');
        assert.deepEqual(await store.listTags(repo('i'), { limit: 10 }), ['c2', 'multi']);
        assert.equal(await store.deleteManifest(repo('i'), child.digest, 'bob', { allowReferenced: true }), true);
        assert.deepEqual(await store.listTags(repo('i'), { limit: 10 }), ['multi']);
        assert.ok(await store.getManifest(repo('i'), index.digest), 'the index stays, broken');
      }),
    );

    test(
      'tags and repositories list in byte order with pagination',
      withStore(async (store) => {
        const m = manifest('m');
        const names = ['b', 'B', 'a', '_x', 'a0', 'a-1'];
        await store.putManifest(repo('list'), m, names.map(tag), 'x');
        const sorted = [...names].sort();
        assert.deepEqual(await store.listTags(repo('list'), { limit: 100 }), sorted);
        assert.deepEqual(await store.listTags(repo('list'), { limit: 2, after: sorted[1] }), sorted.slice(2, 4));
        assert.equal(await store.listTags(repo('nothing'), { limit: 10 }), undefined);
        for (const r of ['z/b', 'z/a', 'y']) await store.putManifest(repo(r), m, [], 'x');
        await store.linkBlob(repo('blobs/only'), Digest.of('x'), 1);
        assert.deepEqual(await store.listRepositories({ limit: 100 }), ['list', 'y', 'z/a', 'z/b']);
        assert.deepEqual(await store.listRepositories({ limit: 2, after: 'list' }), ['y', 'z/a']);
        // Only the names in a pattern set (the caller's pull rights), paged the same way.
        assert.deepEqual(await store.listRepositories({ limit: 100 }, { anyOf: [['z/*'], ['y']] }), ['y', 'z/a', 'z/b']);
        assert.deepEqual(await store.listRepositories({ limit: 1, after: 'y' }, { anyOf: [['z/*'], ['y']] }), ['z/a']);
        assert.deepEqual(await store.listRepositories({ limit: 100 }, { anyOf: [['Z/*'], ['l_st']] }), [], 'glob case and literal _');
        assert.deepEqual(await store.listRepositories({ limit: 100 }, { anyOf: [] }), []);
      }),
    );

    test(
      'referrers by subject and artifactType',
      withStore(async (store) => {
        const subject = Digest.of('subject');
        const sbom = manifest('sbom', [], { subject, artifactType: 'application/sbom', annotations: { k: 'v' } });
        const sig = manifest('sig', [], { subject, artifactType: 'application/sig' });
        await store.putManifest(repo('ref'), sbom, [], 'x');
        await store.putManifest(repo('ref'), sig, [], 'x');
        const all = await store.listReferrers(repo('ref'), subject);
        assert.deepEqual(all.map((r) => r.digest.toString()).sort(), [sbom.digest.toString(), sig.digest.toString()].sort());
        const only = await store.listReferrers(repo('ref'), subject, 'application/sbom');
        assert.deepEqual(only.map((r) => [r.digest.toString(), r.annotations]), [[sbom.digest.toString(), { k: 'v' }]]);
        assert.deepEqual(await store.listReferrers(repo('other'), subject), []);
      }),
    );

    test(
      'moveTag is one change with its history row, conditional when asked',
      withStore(async (store) => {
        const v1 = manifest('mv1');
        const v2 = manifest('mv2');
        await store.putManifest(repo('mv'), v1, [tag('t')], 'alice');
        await store.putManifest(repo('mv'), v2, [], 'alice');
        const d1 = v1.digest.toString();
        const d2 = v2.digest.toString();
        assert.deepEqual(await store.tagsPointingAt(repo('mv'), v1.digest), ['t']);
        assert.equal(await store.moveTag(repo('mv'), tag('t'), { to: d2, actor: 'bob', expect: { digest: d2 } }), undefined, 'a failed expectation changes nothing');
        const back = await store.moveTag(repo('mv'), tag('t'), { to: d2, actor: 'bob', rollback: true, expect: { digest: d1 } });
        assert.deepEqual([back?.action, back?.oldDigest, back?.newDigest, back?.actor], ['rollback', d1, d2, 'bob']);
        assert.equal(await store.moveTag(repo('mv'), tag('t'), { to: d2, actor: 'bob' }), undefined, 'moving to where it points is no change');
        await assert.rejects(
          store.moveTag(repo('mv'), tag('t'), { to: manifest('absent').digest.toString(), actor: 'bob' }),
          (err: unknown) => err instanceof MetaStoreError && err.code === 'ERR_MANIFEST_UNKNOWN',
        );
        const gone = await store.moveTag(repo('mv'), tag('t'), { to: undefined, actor: 'carol' });
        assert.equal(gone?.action, 'delete');
        assert.equal(await store.getTaggedManifest(repo('mv'), tag('t')), undefined);
        const history = await store.tagHistory(repo('mv'), tag('t'), 10);
        assert.deepEqual(
          history.map((h) => [h.action, h.actor]),
          [
            ['delete', 'carol'],
            ['rollback', 'bob'],
            ['create', 'alice'],
          ],
        );
        assert.ok(history[0]!.id > history[1]!.id && history[1]!.id > history[2]!.id, 'ids increase with every change');
      }),
    );

    test(
      'upload sessions belong to a repository',
      withStore(async (store) => {
        await store.createUpload('u1', repo('up'));
        assert.equal(await store.uploadRepository('u1'), 'up');
        assert.deepEqual(await store.uploadsStartedBefore(new Date(Date.now() + 1000)), ['u1']);
        await store.deleteUpload('u1');
        assert.equal(await store.uploadRepository('u1'), undefined);
      }),
    );
  });
}
