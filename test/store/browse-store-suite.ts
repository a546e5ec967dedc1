/**
 * The behaviour every BrowseQueries implementation must have (the web UI's
 * lists): the database filters by name patterns and search text, sorts and
 * pages. SQLite and PostgreSQL both run it; their LIKE differs (SQLite's
 * ignores case), so the patterns' escaping and case are checked on each.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import { inNamePatterns, type NamePatterns } from '../../src/shared/name-patterns.js';
import type { BrowseQueries, RepositoryQuery } from '../../src/store/meta/browse.js';
import type { MetaStore, NewManifest } from '../../src/store/meta/meta-store.js';

export interface BrowseStoreFixture {
  /** Seeds the data (the same database as `browse`). */
  meta: MetaStore;
  browse: BrowseQueries;
  close(): Promise<void>;
}

function manifest(label: string): NewManifest {
  const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { label } }));
  return { digest: Digest.of(content), mediaType: 'application/vnd.oci.image.index.v1+json', content, artifactType: undefined, subject: undefined, annotations: undefined, blobs: [], manifests: [] };
}

/** Pushed in this order, a few ms apart; `bytes` of linked blobs each. `empty` links a blob and holds no manifest. */
const REPOS: { name: string; bytes: number }[] = [
  { name: 'team/app', bytes: 300 },
  { name: 'team/app_x', bytes: 100 },
  { name: 'team/appyx', bytes: 500 },
  { name: 'team/app/cache', bytes: 200 },
  { name: 'other/one', bytes: 400 },
];

const ALL: NamePatterns = { all: true };

export function browseStoreSuite(name: string, open: () => Promise<BrowseStoreFixture>): void {
  describe(`BrowseQueries: ${name}`, () => {
    test('repositories: filtered by pull patterns and search in the database, sorted and paged', async () => {
      const f = await open();
      try {
        for (const [i, r] of REPOS.entries()) {
          const repo = parseRepositoryName(r.name);
          await f.meta.linkBlob(repo, Digest.of(`blob-${i}`), r.bytes);
          await f.meta.putManifest(repo, manifest(r.name), [parseTag('v1')], 'seed');
          await sleep(5);
        }
        await f.meta.linkBlob(parseRepositoryName('empty'), Digest.of('lonely'), 10);
        const names = async (q: Partial<RepositoryQuery>) => {
          const page = await f.browse.repositorySummaries({ q: '', sort: 'name', order: 'asc', offset: 0, limit: 100, names: ALL, ...q });
          return { total: page.total, names: page.items.map((r) => r.name) };
        };
        const sorted = REPOS.map((r) => r.name).sort();
        assert.deepEqual(await names({}), { total: 5, names: sorted }, 'a repository with no manifest is left out');
        assert.deepEqual(await names({ order: 'desc' }), { total: 5, names: [...sorted].reverse() });
        assert.deepEqual(await names({ sort: 'pushed', order: 'desc' }), { total: 5, names: REPOS.map((r) => r.name).reverse() });
        assert.deepEqual(await names({ sort: 'size', order: 'desc' }), { total: 5, names: ['team/appyx', 'other/one', 'team/app', 'team/app/cache', 'team/app_x'] });
        assert.deepEqual(await names({ offset: 2, limit: 2 }), { total: 5, names: sorted.slice(2, 4) });
        assert.deepEqual(await names({ offset: 9 }), { total: 5, names: [] });
        const page = await f.browse.repositorySummaries({ q: 'app_x', sort: 'name', order: 'asc', offset: 0, limit: 10, names: ALL });
        assert.equal(page.items[0]?.tags, 1);
        assert.ok((page.items[0]?.bytes ?? 0) > 100, 'blob bytes plus the manifest');
        assert.ok(typeof page.items[0]?.pushedAt === 'number');

        // Search is literal: `_` and `%` are not wildcards.
        assert.deepEqual((await names({ q: 'app_' })).names, ['team/app_x']);
        assert.deepEqual((await names({ q: 'APP%' })).names, []);
        assert.deepEqual((await names({ q: 'CACHE' })).names, ['team/app/cache'], 'search ignores case');

        // Pull patterns: the same answer as the policy's glob, name by name.
        const cases: NamePatterns[] = [
          { anyOf: [] },
          { anyOf: [['team/*']] },
          { anyOf: [['team/app_x']] },
          { anyOf: [['*x']] },
          { anyOf: [['TEAM/*']] },
          { anyOf: [['team/*', '*/cache'], ['other/one']] },
          { anyOf: [['*']] },
          { anyOf: [['team/app%']] },
        ];
        for (const set of cases) {
          const expected = sorted.filter((n) => inNamePatterns(set, n));
          assert.deepEqual(await names({ names: set }), { total: expected.length, names: expected }, JSON.stringify(set));
        }
        assert.deepEqual((await names({ names: { anyOf: [['team/*']] }, q: 'x', sort: 'size', order: 'asc' })).names, ['team/app_x', 'team/appyx']);
      } finally {
        await f.close();
      }
    });

    test('tags: one page, sorted by push time or name over all of them', async () => {
      const f = await open();
      try {
        const repo = parseRepositoryName('team/tags');
        // Pushed in this order: c, a, e, then b and d in one manifest PUT (the same time: ties go by name).
        for (const tags of [['c'], ['a'], ['e'], ['b', 'd']]) {
          await f.meta.putManifest(repo, manifest(tags.join()), tags.map((t) => parseTag(t)), 'seed');
          await sleep(5);
        }
        const page = async (sort: 'name' | 'pushed', order: 'asc' | 'desc', offset = 0, limit = 100) => {
          const p = await f.browse.tagSummaries('team/tags', { sort, order, offset, limit });
          assert.ok(p);
          return { total: p.total, names: p.items.map((t) => t.name) };
        };
        assert.deepEqual(await page('name', 'asc'), { total: 5, names: ['a', 'b', 'c', 'd', 'e'] });
        assert.deepEqual(await page('name', 'desc'), { total: 5, names: ['e', 'd', 'c', 'b', 'a'] });
        assert.deepEqual(await page('pushed', 'desc'), { total: 5, names: ['b', 'd', 'e', 'a', 'c'] });
        assert.deepEqual(await page('pushed', 'asc'), { total: 5, names: ['c', 'a', 'e', 'b', 'd'] });
        assert.deepEqual(await page('name', 'asc', 1, 2), { total: 5, names: ['b', 'c'] });
        assert.deepEqual(await page('pushed', 'desc', 4, 2), { total: 5, names: ['c'] });
        assert.deepEqual(await page('name', 'asc', 5, 2), { total: 5, names: [] });
        const first = (await f.browse.tagSummaries('team/tags', { sort: 'name', order: 'asc', offset: 0, limit: 1 }))!.items[0]!;
        assert.equal(first.pushedBy, 'seed');
        assert.equal(first.pulledAt, null);
        assert.equal(first.digest, manifest('a').digest.toString());
        assert.equal(await f.browse.tagSummaries('team/none', { sort: 'name', order: 'asc', offset: 0, limit: 1 }), undefined);
      } finally {
        await f.close();
      }
    });
  });
}
