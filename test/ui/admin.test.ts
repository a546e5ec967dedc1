/**
 * The administration page driven in a real browser (Debian's chromium
 * through playwright-core) against its own `pier serve` child process,
 * configured with a webhook (to a receiver in this test), a quota, a
 * retention rule and an immutable-tag rule. Each action is checked where
 * a user would notice it: through the API, a second browser session, or
 * the receiver. (CI tokens are ui.test.ts's.)
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AuditResponse, RetentionResponse, UsageResponse, WebhookEventBody } from '../../src/api/pier-v1.js';
import { makeImage, type TestImage } from '../helpers/images.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { launchBrowser, screenshots, unnamedControls } from './browser.js';

const ADMIN = { user: 'admin', password: 'admin-password-1' };

/** Polls `check` (the page's CSP forbids the string predicates of waitForFunction) until it holds, for at most 15 s. */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the page never showed what was expected');
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('the administration page', () => {
  let dir: string;
  let reg: SpawnedRegistry;
  let browser: Browser;
  let receiver: Server;
  const received: WebhookEventBody[] = [];
  const images: TestImage[] = [];

  const http = async (method: string, p: string, body?: unknown, auth = basic(ADMIN.user, ADMIN.password), headers: Record<string, string> = {}) => {
    const res = await fetch(`${reg.url}${p}`, {
      method,
      headers: { ...(auth === '' ? {} : { authorization: auth }), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? null : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };
  const json = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const r = await http(method, p, body);
    assert.ok(r.status < 300, `${method} ${p}: ${r.status} ${r.text}`);
    return JSON.parse(r.text) as T;
  };

  const signIn = async (user: string, password: string): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ baseURL: reg.url });
    const page = await context.newPage();
    await page.goto('/#/sign-in');
    await page.getByLabel('Username').fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(`Signed in as ${user}`).waitFor();
    return { context, page };
  };

  /** Pushes `image` to `repository:tag` over HTTP (monolithic blob uploads, then the manifest). */
  const push = async (repository: string, tag: string, image: TestImage) => {
    for (const b of [image.config, ...image.layers]) {
      const r = await http('POST', `/v2/${repository}/blobs/uploads/?digest=${b.digest}`, b.data, undefined, { 'content-type': 'application/octet-stream' });
      assert.equal(r.status, 201, r.text);
    }
    const r = await http('PUT', `/v2/${repository}/manifests/${tag}`, image.manifest, undefined, { 'content-type': image.mediaType });
    assert.equal(r.status, 201, r.text);
  };

  before(async () => {
    dir = await tempDir('pier-ui-admin-');
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as WebhookEventBody);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    reg = await spawnTestRegistry({
      dataDir: path.join(dir, 'data'),
      env: {
        PIER_WEBHOOKS_ENDPOINTS: JSON.stringify([{ name: 'ci-hook', url: hook, events: ['push'], repository: 'team/*' }]),
        PIER_QUOTAS: JSON.stringify([{ namespace: 'team', limit: '64MiB' }]),
        PIER_RETENTION_RULES: JSON.stringify([{ repository: 'team/app', keepLast: 1 }]),
        PIER_TAGS_IMMUTABLE: JSON.stringify([{ repository: 'team/*', tags: 'release-*' }]),
        // No automatic SBOMs: the audit and usage checks count entries read at different moments, and the scanner's SBOM push lands asynchronously.
        PIER_SCANNING_SBOM: 'false',
        PIER_RETENTION_SCHEDULE: '0',
        PIER_GC_SCHEDULE: '0',
        PIER_GC_GRACE_PERIOD: '0s',
      },
    });
    // Open until its first account: the admin first.
    assert.equal((await http('POST', '/pier/v1/users', { name: ADMIN.user, password: ADMIN.password, admin: true }, '')).status, 200);
    // team/app: three tags, each its own image (retention keeps the newest only); other/app: one.
    for (const tag of ['v1', 'v2', 'v3']) {
      const image = await makeImage({ layers: [4096] });
      images.push(image);
      await push('team/app', tag, image);
      await new Promise((r) => setTimeout(r, 20));
    }
    await push('other/app', 'latest', await makeImage({ layers: [1024] }));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await reg?.kill();
    await new Promise((resolve) => receiver?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('users: create, a password change ends their session, delete', async () => {
    const { context, page } = await signIn(ADMIN.user, ADMIN.password);
    await page.goto('/#/admin');
    const users = page.getByRole('region', { name: 'Users' });
    await users.getByLabel('New user name').fill('dev');
    await users.getByLabel('New user password').fill('dev-password-1');
    await users.getByRole('button', { name: 'Add user' }).click();
    await users.getByRole('cell', { name: 'dev', exact: true }).waitFor();
    assert.ok((await json<{ users: { name: string }[] }>('GET', '/pier/v1/users')).users.some((u) => u.name === 'dev'));

    // dev signs in elsewhere; the admin changes dev's password; dev's session ends.
    const dev = await signIn('dev', 'dev-password-1');
    await users.getByLabel('User whose password to change').fill('dev');
    await users.getByLabel('New password').fill('dev-password-2');
    await users.getByRole('button', { name: 'Change password' }).click();
    await users.getByRole('status').filter({ hasText: 'Password of dev changed; their sessions ended' }).waitFor();
    await dev.page.reload();
    await dev.page.getByRole('link', { name: 'Sign in' }).waitFor();
    assert.equal(await dev.page.getByText('Signed in as dev').count(), 0);
    assert.equal((await http('GET', '/v2/', undefined, basic('dev', 'dev-password-1'))).status, 401, 'the old password is refused');
    assert.equal((await http('GET', '/v2/', undefined, basic('dev', 'dev-password-2'))).status, 200, 'the new one works');
    await dev.context.close();

    await screenshots(page, 'admin-users');
    await users.getByRole('button', { name: 'Remove user dev' }).click();
    await users.getByRole('cell', { name: 'dev', exact: true }).waitFor({ state: 'detached' });
    assert.ok(!(await json<{ users: { name: string }[] }>('GET', '/pier/v1/users')).users.some((u) => u.name === 'dev'));
    await context.close();
  });

  test('groups and policy rules: added and removed from the page', async () => {
    const { context, page } = await signIn(ADMIN.user, ADMIN.password);
    await page.goto('/#/admin');
    assert.equal((await http('POST', '/pier/v1/users', { name: 'ops', password: 'ops-password-1' })).status, 200);
    const groups = page.getByRole('region', { name: 'Groups' });
    await groups.getByLabel('New group name').fill('builders');
    await groups.getByRole('button', { name: 'Add group' }).click();
    await groups.getByText('builders: no members').waitFor();
    await groups.getByLabel('Group', { exact: true }).fill('builders');
    await groups.getByLabel('Member', { exact: true }).fill('ops');
    await groups.getByRole('button', { name: 'Add member' }).click();
    await groups.getByText('builders: ops').waitFor();

    // A rule for the group: ops may now pull team/app, which it could not before.
    assert.equal((await http('GET', '/v2/team/app/tags/list', undefined, basic('ops', 'ops-password-1'))).status, 403);
    const policy = page.getByRole('region', { name: 'Policy rules' });
    await policy.getByLabel('Subject').fill('group:builders');
    await policy.getByLabel('Repositories').fill('team/*');
    await policy.getByLabel('Actions').fill('pull');
    await policy.getByRole('button', { name: 'Add rule' }).click();
    await policy.getByRole('cell', { name: 'group:builders' }).waitFor();
    assert.equal((await http('GET', '/v2/team/app/tags/list', undefined, basic('ops', 'ops-password-1'))).status, 200);
    const rules = await json<{ rules: { origin: string; subject: string }[] }>('GET', '/pier/v1/policy');
    const rule = rules.rules.find((r) => r.subject === 'group:builders');
    assert.ok(rule);
    await screenshots(page, 'admin-groups-policy');
    await policy.getByRole('button', { name: `Remove rule ${rule.origin}` }).click();
    await policy.getByRole('cell', { name: 'group:builders' }).waitFor({ state: 'detached' });
    assert.equal((await http('GET', '/v2/team/app/tags/list', undefined, basic('ops', 'ops-password-1'))).status, 403);
    await groups.getByRole('button', { name: 'Remove group builders' }).click();
    await groups.getByText('builders: ops').waitFor({ state: 'detached' });
    await context.close();
  });

  test('webhooks are shown from the config; the test button delivers, and the log shows it', async () => {
    const { context, page } = await signIn(ADMIN.user, ADMIN.password);
    await page.goto('/#/admin');
    const hooks = page.getByRole('region', { name: 'Webhooks' });
    await hooks.getByRole('cell', { name: 'ci-hook', exact: true }).waitFor();
    await hooks.getByText('These webhooks live in the configuration file').waitFor();
    const before = received.length;
    await hooks.getByRole('button', { name: 'Test webhook ci-hook' }).click();
    await hooks.getByRole('status').filter({ hasText: /^ci-hook: delivered \(204\)/ }).waitFor();
    assert.equal(received.length, before + 1);
    assert.equal(received.at(-1)!.action, 'test');
    assert.equal(received.at(-1)!.actor, ADMIN.user);
    await hooks.getByRole('button', { name: 'Show deliveries of ci-hook' }).click();
    const log = hooks.getByRole('table', { name: 'Deliveries of ci-hook' });
    await log.getByRole('row').filter({ hasText: 'test' }).filter({ hasText: 'delivered' }).waitFor();
    await screenshots(page, 'admin-webhooks');
    await context.close();
  });

  test('storage usage per namespace against its quota; the configured rules are shown read-only', async () => {
    const { context, page } = await signIn(ADMIN.user, ADMIN.password);
    await page.goto('/#/admin');
    const usage = await json<UsageResponse>('GET', '/pier/v1/usage');
    const team = usage.namespaces.find((n) => n.namespace === 'team');
    assert.ok(team && team.limit === 64 * 1024 * 1024, JSON.stringify(usage));
    const region = page.getByRole('region', { name: 'Storage usage' });
    const row = region.getByRole('row').filter({ has: page.getByRole('cell', { name: 'team', exact: true }) });
    await row.getByText('64 MiB').waitFor();
    assert.equal(Number(await row.locator('meter').getAttribute('value')), team.bytes);
    assert.equal(await row.locator('meter').getAttribute('aria-label'), 'team quota used');
    await region.getByRole('row').filter({ has: page.getByRole('cell', { name: 'other', exact: true }) }).getByRole('cell', { name: 'none' }).waitFor();
    const rules = page.getByRole('region', { name: 'Immutable tags, quotas and retention' });
    await rules.getByText('Immutable: tags release-* in team/*').waitFor();
    await rules.getByText('Quota: team at most 64 MiB').waitFor();
    await rules.getByText('Retention in team/app: keep last 1').waitFor();
    await screenshots(page, 'admin-usage-rules');
    await context.close();
  });

  test('retention and GC: the dry run shows what would go, the run removes it', async () => {
    const { context, page } = await signIn(ADMIN.user, ADMIN.password);
    await page.goto('/#/admin');
    const region = page.getByRole('region', { name: 'Garbage collection and retention' });
    await region.getByRole('button', { name: 'Retention dry run' }).click();
    await region.getByRole('status').filter({ hasText: 'Retention dry run: 2 tags would be deleted' }).filter({ hasText: 'team/app:v1' }).filter({ hasText: 'team/app:v2' }).waitFor();
    const tags = async () => (JSON.parse((await http('GET', '/v2/team/app/tags/list')).text) as { tags: string[] }).tags.sort();
    assert.deepEqual(await tags(), ['v1', 'v2', 'v3'], 'a dry run deletes nothing');
    await region.getByRole('button', { name: 'Apply retention' }).click();
    await region.getByRole('status').filter({ hasText: 'Retention run: 2 tags were deleted' }).waitFor();
    assert.deepEqual(await tags(), ['v3']);
    const dry = await json<RetentionResponse>('POST', '/pier/v1/retention');
    assert.deepEqual(dry.deleted, [], 'nothing left for retention');

    // v1's and v2's manifests and layers are now unreferenced: GC's dry run names them, the run frees them.
    const layer = (i: number) => `/v2/team/app/blobs/${images[i]!.layers[0]!.digest}`;
    await region.getByRole('button', { name: 'GC dry run' }).click();
    const dryLine = region.getByRole('status').filter({ hasText: /^GC dry run: 2 manifests and \d+ blobs \(.+\) would be deleted/ });
    await dryLine.waitFor();
    assert.equal((await http('HEAD', layer(0))).status, 200, 'a dry run frees nothing');
    await screenshots(page, 'admin-gc');
    await region.getByRole('button', { name: 'Run GC' }).click();
    await region.getByRole('status').filter({ hasText: /^GC run: 2 manifests and \d+ blobs \(.+\) were deleted/ }).waitFor();
    assert.equal((await http('HEAD', layer(0))).status, 404);
    assert.equal((await http('HEAD', layer(1))).status, 404);
    assert.equal((await http('HEAD', layer(2))).status, 200, 'the kept tag keeps its layers');
    assert.equal((await http('GET', `/v2/team/app/manifests/${images[0]!.digest}`, undefined, undefined, { accept: images[0]!.mediaType })).status, 404);
    await context.close();
  });

  test('the audit log: filters by actor and action narrow the rows', async () => {
    const { context, page } = await signIn(ADMIN.user, ADMIN.password);
    // A failed login by someone else, and pushes by the admin.
    assert.equal((await http('GET', '/v2/', undefined, basic('mallory', 'guess'))).status, 401);
    await page.goto('/#/admin');
    const region = page.getByRole('region', { name: 'Audit log' });
    const rows = region.getByRole('table', { name: 'Audit entries' }).locator('tbody tr');
    const column = (n: number) => rows.locator(`td:nth-child(${n})`).allTextContents();
    await rows.first().waitFor();
    const all = await rows.count();
    assert.ok(all >= 5, `${all} rows`);
    await region.getByLabel('Actor').fill('mallory');
    await region.getByRole('button', { name: 'Filter' }).click();
    await rows.filter({ hasText: 'mallory' }).first().waitFor();
    await until(async () => (await column(2)).every((a) => a === 'mallory'));
    const byActor = await rows.count();
    assert.ok(byActor >= 1 && byActor < all, `${byActor} of ${all}`);
    const api = await json<AuditResponse>('GET', '/pier/v1/audit?actor=mallory');
    assert.equal(byActor, api.entries.length);
    await region.getByLabel('Actor').fill('');
    await region.getByLabel('Action').fill('push');
    await region.getByRole('button', { name: 'Filter' }).click();
    await until(async () => {
      const actions = await column(4);
      return actions.length > 0 && actions.every((a) => a === 'push');
    });
    const pushes = (await json<AuditResponse>('GET', '/pier/v1/audit?action=push')).entries.length;
    assert.equal(await rows.count(), pushes);
    assert.ok(pushes >= 4 && pushes < all);
    await screenshots(page, 'admin-audit');
    assert.deepEqual(await unnamedControls(page), [], 'controls without a name on the admin page');
    await context.close();
  });
});
