/**
 * The audit log records every change of state where it is made: an admin
 * deleting an immutable tag through /pier/v1 (answered 200, so invisible
 * to a log written from /v2 responses), a rollback, retention and GC runs,
 * and changes to users, tokens and policy, with who made them and from
 * where.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addPolicyRule, addUser, createAccessToken } from '../../src/auth/accounts.js';
import type { AuditEntry } from '../../src/auth/store.js';
import { makeImage } from '../helpers/images.js';
import { waitForSbom } from '../helpers/scans.js';
import { basic, pushAs, startAuthRegistry, type AuthRegistry } from './helpers.js';

describe('the audit log', () => {
  let reg: AuthRegistry;
  const adminAuth = basic('admin', 'admin-password');

  before(async () => {
    reg = await startAuthRegistry(
      async (store) => {
        await addUser(store, 'admin', 'admin-password', { admin: true });
        await addUser(store, 'dev', 'dev-password');
        await addPolicyRule(store, 'user:dev', 'team/*', ['pull', 'push']);
      },
      { tags: { immutable: [{ repository: 'team/*', tags: ['v*'] }] } },
    );
  });
  after(async () => {
    await reg?.close();
  });

  async function entries(): Promise<AuditEntry[]> {
    return reg.store.list({ limit: 1000 });
  }

  function find(list: AuditEntry[], want: Partial<AuditEntry>): AuditEntry | undefined {
    return list.find((e) => Object.entries(want).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v));
  }

  /** The log once it holds an entry like each of `wants` (the writer records after the change commits), or as it is after 2 s. */
  async function settled(...wants: Partial<AuditEntry>[]): Promise<AuditEntry[]> {
    const until = Date.now() + 2000;
    for (;;) {
      const list = await entries();
      if (wants.every((w) => find(list, w)) || Date.now() > until) return list;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test('an immutable-tag override delete is recorded, with actor and address', async () => {
    assert.equal(await pushAs(reg.url, 'team/app', 'v1.0', await makeImage(), basic('dev', 'dev-password')), 201);
    const res = await fetch(`${reg.url}/pier/v1/repositories/team/app/tags/v1.0?override=immutable`, { method: 'DELETE', headers: { authorization: adminAuth } });
    assert.equal(res.status, 200, await res.text());
    const push = { action: 'push', actor: 'dev', repository: 'team/app', target: 'v1.0', outcome: 'ok', ip: '127.0.0.1' } as const;
    const override = { action: 'override-delete', actor: 'admin', repository: 'team/app', target: 'v1.0', outcome: 'ok', ip: '127.0.0.1' } as const;
    const list = await settled(push, override);
    assert.ok(find(list, push), JSON.stringify(list));
    assert.ok(find(list, override), JSON.stringify(list));
  });

  test('the SBOM the registry writes for a pushed image is recorded under its own actor', async () => {
    const image = await makeImage();
    assert.equal(await pushAs(reg.url, 'team/sbom', 'v1', image, basic('dev', 'dev-password')), 201);
    const sbom = await waitForSbom(reg.url, 'team/sbom', image.digest, (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), authorization: adminAuth } }));
    assert.ok(sbom, 'an SBOM referrer was written (on by default)');
    const generated = { action: 'push', actor: 'system:scanner', repository: 'team/sbom', target: sbom.digest, outcome: 'ok' } as const;
    const list = await settled(generated);
    assert.ok(find(list, generated), JSON.stringify(list));
    assert.ok(find(list, { action: 'push', actor: 'dev', repository: 'team/sbom', target: 'v1' }), 'the user\'s push is the user\'s');
  });

  test('a rollback is recorded with the versions it moved between', async () => {
    const first = await makeImage();
    const second = await makeImage();
    assert.equal(await pushAs(reg.url, 'team/app', 'stable', first, basic('dev', 'dev-password')), 201);
    assert.equal(await pushAs(reg.url, 'team/app', 'stable', second, basic('dev', 'dev-password')), 201);
    const res = await fetch(`${reg.url}/pier/v1/repositories/team/app/tags/stable/rollback`, {
      method: 'POST',
      body: JSON.stringify({ steps: 1 }),
      headers: { authorization: basic('dev', 'dev-password'), 'content-type': 'application/json' },
    });
    assert.equal(res.status, 200, await res.text());
    const rollback = { action: 'rollback', actor: 'dev', repository: 'team/app', target: `stable ${second.digest} -> ${first.digest}`, ip: '127.0.0.1' };
    const move = { action: 'tag-move', actor: 'dev', repository: 'team/app', target: `stable ${first.digest} -> ${second.digest}` };
    const list = await settled(rollback, move);
    assert.ok(find(list, rollback), JSON.stringify(list));
    assert.ok(find(list, move), 'a tag move is recorded too');
  });

  test('user, token and policy changes are recorded in the same transaction as the change', async () => {
    const admin = reg.store.as({ name: 'admin', ip: '192.0.2.7' });
    await addUser(admin, 'newbie', 'newbie-password');
    await admin.setAdmin('newbie', true);
    await createAccessToken(admin, { name: 'deploy', scopes: ['repository:team/app:pull'] });
    await admin.revokeToken('deploy');
    const id = await addPolicyRule(admin, 'user:newbie', 'team/*', ['pull']);
    await admin.removeRule(id);
    await admin.removeUser('newbie');
    // Through the store the local commands open (openSqliteAccountStore): the local OS user is the actor.
    await addUser(reg.store, 'temp', 'temp-password');
    await reg.store.setPassword('temp', '$2y$10$abcdefghijklmnopqrstuuW1xv3zYt6lQd2R8bXyq1ZQh6o0Jm9nS');
    const list = await entries();
    const mine = list.filter((e) => e.actor === 'admin' && e.ip === '192.0.2.7').map((e) => `${e.action} ${e.target ?? ''}`);
    assert.deepEqual(mine.reverse(), [
      'user-add newbie',
      'user-admin newbie admin=true',
      'token-create deploy repository:team/app:pull',
      'token-revoke deploy',
      `policy-add #${id} user:newbie team/* pull`,
      `policy-remove #${id}`,
      'user-remove newbie',
    ]);
    const local = find(list, { action: 'user-password', target: 'temp' });
    assert.ok(local && local.actor.startsWith('local:'), JSON.stringify(local));
    // A change that fails leaves no entry.
    await assert.rejects(admin.removeUser('nobody'), /no user nobody/);
    assert.equal(find(await entries(), { action: 'user-remove', target: 'nobody' }), undefined);
  });

  test('deletes through /v2 and denials are recorded', async () => {
    const image = await makeImage();
    assert.equal(await pushAs(reg.url, 'team/other', 'latest', image, adminAuth), 201);
    const denied = await fetch(`${reg.url}/v2/team/other/manifests/latest`, { method: 'DELETE', headers: { authorization: basic('dev', 'dev-password') } });
    assert.equal(denied.status, 403);
    const del = await fetch(`${reg.url}/v2/team/other/manifests/latest`, { method: 'DELETE', headers: { authorization: adminAuth } });
    assert.equal(del.status, 202);
    const denial = { action: 'delete', actor: 'dev', repository: 'team/other', outcome: 'denied' } as const;
    const deleted = { action: 'delete', actor: 'admin', repository: 'team/other', target: 'latest', outcome: 'ok' } as const;
    const list = await settled(denial, deleted);
    assert.ok(find(list, denial), JSON.stringify(list));
    assert.ok(find(list, deleted), JSON.stringify(list));
  });
});
