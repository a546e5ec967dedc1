/**
 * The web UI's read endpoints over HTTP against a real `pier serve` child
 * process with accounts and configured rules: the audit log and the
 * configured rules (shape, filters, pages, 401 for anonymous and 403 for a
 * reader), a repository's tags in pages, and the repository list filtered
 * by each viewer's pull rights.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AuditResponse, RepositoriesResponse, RulesResponse, TagsResponse } from '../../src/api/pier-v1.js';
import { makeImage, type TestImage } from '../helpers/images.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';

const ADMIN = basic('admin', 'admin-password-1');
const READER = basic('reader', 'reader-password-1');

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('/pier/v1 browse, audit and rules', () => {
  let dir: string;
  let reg: SpawnedRegistry;
  let image: TestImage;

  const http = async (method: string, p: string, auth: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${reg.url}${p}`, {
      method,
      headers: { ...(auth === '' ? {} : { authorization: auth }), ...(body === undefined || Buffer.isBuffer(body) ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? null : Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };
  const get = async <T>(p: string, auth = ADMIN): Promise<T> => {
    const r = await http('GET', p, auth);
    assert.equal(r.status, 200, `GET ${p}: ${r.text}`);
    return JSON.parse(r.text) as T;
  };
  const tagged = async (repository: string, tags: string[]) => {
    const r = await http('PUT', `/v2/${repository}/manifests/${image.digest}?${tags.map((t) => `tag=${t}`).join('&')}`, ADMIN, image.manifest, { 'content-type': image.mediaType });
    assert.equal(r.status, 201, r.text);
  };

  before(async () => {
    dir = await tempDir('pier-browse-api-');
    reg = await spawnTestRegistry({
      dataDir: path.join(dir, 'data'),
      env: {
        PIER_TAGS_IMMUTABLE: JSON.stringify([{ repository: 'team/*', tags: 'release-*', except: 'release-dev' }]),
        PIER_QUOTAS: JSON.stringify([{ namespace: 'team', limit: '1GiB' }]),
        PIER_RETENTION_RULES: JSON.stringify([{ repository: 'team/app', keepLast: 5, keepDays: 30, keep: ['stable'] }]),
        // No automatic SBOMs: the audit tests compare entry lists read at different moments, and the scanner's SBOM push lands asynchronously.
        PIER_SCANNING_SBOM: 'false',
      },
    });
    assert.equal((await http('POST', '/pier/v1/users', '', { name: 'admin', password: 'admin-password-1', admin: true })).status, 200);
    assert.equal((await http('POST', '/pier/v1/users', ADMIN, { name: 'reader', password: 'reader-password-1' })).status, 200);
    assert.equal((await http('POST', '/pier/v1/policy', ADMIN, { subject: 'user:reader', repositories: 'team/*', actions: ['pull'] })).status, 200);
    assert.equal((await http('POST', '/pier/v1/policy', ADMIN, { subject: 'anonymous', repositories: 'public/*', actions: ['pull'] })).status, 200);
    image = await makeImage({ layers: [256] });
    for (const repository of ['team/app', 'team/web', 'public/base', 'secret/vault', 'team_x/app']) {
      for (const b of [image.config, ...image.layers]) {
        const r = await http('POST', `/v2/${repository}/blobs/uploads/?digest=${b.digest}`, ADMIN, b.data, { 'content-type': 'application/octet-stream' });
        assert.equal(r.status, 201, r.text);
      }
      await tagged(repository, ['v1']);
    }
    // team/app: 30 more tags, pushed in three batches (ten tags share each push time).
    for (let b = 0; b < 3; b++) {
      await new Promise((r) => setTimeout(r, 10));
      await tagged('team/app', Array.from({ length: 10 }, (_, i) => `b${b}-${String(i).padStart(2, '0')}`));
    }
    // Audit entries by someone else: a failed login and a denied pull.
    assert.equal((await http('GET', '/v2/', basic('mallory', 'guess'))).status, 401);
    assert.equal((await http('GET', '/v2/secret/vault/tags/list', READER)).status, 403);
  });

  after(async () => {
    await reg?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('audit: the shape, newest first; anonymous gets 401, a reader 403', async () => {
    const page = await get<AuditResponse>('/pier/v1/audit');
    assert.ok(page.entries.length >= 10, `${page.entries.length} entries`);
    assert.equal(page.next, null, 'one page holds them all');
    for (const e of page.entries) {
      assert.deepEqual(Object.keys(e).sort(), ['action', 'actor', 'at', 'id', 'ip', 'outcome', 'repository', 'target']);
      assert.equal(typeof e.id, 'number');
      assert.ok(!Number.isNaN(Date.parse(e.at)), e.at);
      assert.ok(e.ip === null || typeof e.ip === 'string');
    }
    const ids = page.entries.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
    assert.ok(page.entries.some((e) => e.action === 'user-add' && e.actor === 'admin' && e.target?.startsWith('reader') === true));

    const anonymous = await http('GET', '/pier/v1/audit', '');
    assert.equal(anonymous.status, 401, anonymous.text);
    const reader = await http('GET', '/pier/v1/audit', READER);
    assert.equal(reader.status, 403, reader.text);
    assert.equal((await http('GET', '/pier/v1/audit', basic('admin', 'wrong'))).status, 401);
  });

  test('audit: filters by actor, action and repository each narrow to exactly the matching entries', async () => {
    const all = (await get<AuditResponse>('/pier/v1/audit?limit=1000')).entries;
    const cases: [string, (e: AuditResponse['entries'][number]) => boolean][] = [
      ['actor=mallory', (e) => e.actor === 'mallory'],
      ['actor=reader', (e) => e.actor === 'reader'],
      ['action=push', (e) => e.action === 'push'],
      ['action=policy-add', (e) => e.action === 'policy-add'],
      ['repository=team/app', (e) => e.repository === 'team/app'],
      ['actor=admin&action=push&repository=team/web', (e) => e.actor === 'admin' && e.action === 'push' && e.repository === 'team/web'],
    ];
    for (const [query, want] of cases) {
      const expected = all.filter(want).map((e) => e.id);
      assert.ok(expected.length > 0 && expected.length < all.length, `${query} narrows (${expected.length} of ${all.length})`);
      assert.deepEqual((await get<AuditResponse>(`/pier/v1/audit?limit=1000&${query}`)).entries.map((e) => e.id), expected, query);
    }
    assert.deepEqual((await get<AuditResponse>('/pier/v1/audit?actor=nobody')).entries, []);
    // The failed login and the denied pull are there, with their outcomes.
    assert.ok(all.some((e) => e.actor === 'mallory' && e.action === 'login' && e.outcome === 'failed'));
    assert.ok(all.some((e) => e.actor === 'reader' && e.repository === 'secret/vault' && e.outcome === 'denied'));
  });

  test('audit: pages with limit and before=next cover every entry once, filtered too', async () => {
    const all = (await get<AuditResponse>('/pier/v1/audit?limit=1000')).entries.map((e) => e.id);
    for (const filter of ['', '&action=push']) {
      const expected = filter === '' ? all : (await get<AuditResponse>(`/pier/v1/audit?limit=1000${filter}`)).entries.map((e) => e.id);
      const seen: number[] = [];
      let before: number | null | undefined;
      let pages = 0;
      do {
        const page = await get<AuditResponse>(`/pier/v1/audit?limit=3${filter}${before ? `&before=${before}` : ''}`);
        assert.ok(page.entries.length <= 3);
        seen.push(...page.entries.map((e) => e.id));
        before = page.next;
        pages++;
      } while (before !== null && pages < 100);
      assert.deepEqual(seen, expected, `pages of 3${filter}`);
      assert.equal(pages, Math.ceil(expected.length / 3));
    }
    for (const bad of ['limit=-1', 'limit=abc', 'before=x']) assert.equal((await http('GET', `/pier/v1/audit?${bad}`, ADMIN)).status, 400, bad);
  });

  test('rules: the configuration file rules, read-only; anonymous gets 401, a reader 403', async () => {
    const rules = await get<RulesResponse>('/pier/v1/rules');
    assert.deepEqual(rules, {
      immutableTags: [{ repository: 'team/*', tags: ['release-*'], except: ['release-dev'] }],
      quotas: [{ namespace: 'team', limit: 1024 ** 3 }],
      retention: [{ repository: 'team/app', keepLast: 5, keepDays: 30, keep: ['stable'] }],
    });
    assert.equal((await http('GET', '/pier/v1/rules', '')).status, 401);
    assert.equal((await http('GET', '/pier/v1/rules', READER)).status, 403);
    assert.equal((await http('POST', '/pier/v1/rules', ADMIN, {})).status, 405, 'nothing writes them');
  });

  test('tags: one page at a time, sorted over all of them', async () => {
    const first = await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details?limit=10');
    assert.equal(first.total, 31);
    assert.equal(first.offset, 0);
    assert.equal(first.tags.length, 10);
    // Newest push first (the last batch), ties by name.
    assert.deepEqual(first.tags.map((t) => t.name), Array.from({ length: 10 }, (_, i) => `b2-${String(i).padStart(2, '0')}`));
    const byName = await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details?sort=name&offset=28&limit=10');
    assert.deepEqual(byName.tags.map((t) => t.name), ['b2-08', 'b2-09', 'v1']);
    const desc = await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details?sort=name&order=desc&limit=2');
    assert.deepEqual(desc.tags.map((t) => t.name), ['v1', 'b2-09']);
    const oldest = await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details?sort=pushed&order=asc&limit=1');
    assert.deepEqual(oldest.tags.map((t) => t.name), ['v1']);
    assert.equal((await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details')).tags.length, 31, 'default page of 100');
    assert.deepEqual((await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details?offset=40')).tags, []);
    const t = first.tags[0]!;
    assert.equal(t.digest, image.digest);
    assert.deepEqual(t.platforms, ['linux/amd64']);
    assert.equal(t.pushedBy, 'admin');
    assert.deepEqual(first.rights, ['pull', 'push', 'delete']);
    assert.deepEqual((await get<TagsResponse>('/pier/v1/repositories/team/app/tags/details?limit=1', READER)).rights, ['pull']);
    for (const bad of ['sort=size', 'order=up', 'limit=x']) assert.equal((await http('GET', `/pier/v1/repositories/team/app/tags/details?${bad}`, ADMIN)).status, 400, bad);
    assert.equal((await http('GET', '/pier/v1/repositories/secret/vault/tags/details', READER)).status, 403);
  });

  test('repositories: each viewer sees only what it may pull, counted and paged by the database', async () => {
    const names = async (auth: string, query = '') => {
      const r = await get<RepositoriesResponse>(`/pier/v1/repositories?limit=2${query}`, auth);
      const rest = await get<RepositoriesResponse>(`/pier/v1/repositories?offset=2&limit=100${query}`, auth);
      assert.equal(r.total, rest.total);
      return { total: r.total, names: [...r.repositories, ...rest.repositories].map((x) => x.name) };
    };
    assert.deepEqual(await names(ADMIN), { total: 5, names: ['public/base', 'secret/vault', 'team/app', 'team/web', 'team_x/app'] });
    assert.deepEqual(await names(READER), { total: 3, names: ['public/base', 'team/app', 'team/web'] }, 'team/* and what anonymous may pull; not team_x/app');
    assert.deepEqual(await names(''), { total: 1, names: ['public/base'] });
    assert.deepEqual(await names(READER, '&q=APP'), { total: 1, names: ['team/app'] });
    assert.deepEqual(await names(READER, '&sort=name&order=desc'), { total: 3, names: ['team/web', 'team/app', 'public/base'] });
  });
});
