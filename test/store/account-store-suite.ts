/**
 * The behaviour every AccountStore implementation must have (users,
 * groups, tokens, policy rules, the audit log, the change generation).
 * SQLite and PostgreSQL both run it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthStoreError, type AccountStore } from '../../src/store/meta/accounts.js';

export interface AccountStoreFixture {
  store: AccountStore;
  close(): Promise<void>;
}

export function accountStoreSuite(name: string, open: () => Promise<AccountStoreFixture>): void {
  const withStore = (fn: (store: AccountStore) => Promise<void>) => async () => {
    const fixture = await open();
    try {
      await fn(fixture.store);
    } finally {
      await fixture.close();
    }
  };
  const code = (c: string) => (err: unknown) => err instanceof AuthStoreError && err.code === c;

  describe(`AccountStore: ${name}`, () => {
    test(
      'users and groups, and every change bumps the generation',
      withStore(async (store) => {
        const g0 = await store.generation();
        await store.addUser('alice', 'hash-a', { admin: true });
        await assert.rejects(store.addUser('alice', 'x'), code('ERR_USER_EXISTS'));
        const g1 = await store.generation();
        assert.ok(g1 > g0, 'adding a user bumps the generation');
        await store.addGroup('dev');
        await store.addMember('dev', 'alice');
        await assert.rejects(store.addMember('dev', 'nobody'), code('ERR_USER_UNKNOWN'));
        await assert.rejects(store.addMember('nogroup', 'alice'), code('ERR_GROUP_UNKNOWN'));
        const alice = await store.getUser('alice');
        assert.deepEqual([alice?.name, alice?.passwordHash, alice?.admin, alice?.groups], ['alice', 'hash-a', true, ['dev']]);
        await store.setPassword('alice', 'hash-b');
        assert.equal((await store.getUser('alice'))?.passwordHash, 'hash-b');
        assert.deepEqual(await store.listGroups(), [{ name: 'dev', members: ['alice'] }]);
        assert.deepEqual(await store.counts(), { users: 1, tokens: 0, rules: 0 });
        await store.removeUser('alice');
        assert.equal(await store.getUser('alice'), undefined);
        assert.deepEqual(await store.listGroups(), [{ name: 'dev', members: [] }], 'removing a user removes its memberships');
        await assert.rejects(store.removeUser('alice'), code('ERR_USER_UNKNOWN'));
        assert.ok((await store.generation()) > g1);
      }),
    );

    test(
      'tokens keep their scopes as written, are found by secret hash, and revoke',
      withStore(async (store) => {
        await store.addUser('bob', 'h');
        const expiresAt = new Date(Date.now() + 3_600_000);
        await store.createToken({ name: 'ci', secretHash: 'sha-ci', owner: 'bob', scopes: ['repository:team/*:pull,push'], expiresAt });
        await assert.rejects(store.createToken({ name: 'ci', secretHash: 'other', scopes: [] }), code('ERR_TOKEN_EXISTS'));
        await assert.rejects(store.createToken({ name: 'x', secretHash: 'x', owner: 'nobody', scopes: [] }), code('ERR_USER_UNKNOWN'));
        const found = await store.findToken('sha-ci');
        assert.deepEqual([found?.name, found?.owner, found?.scopes, found?.expiresAt?.getTime(), found?.revokedAt], ['ci', 'bob', ['repository:team/*:pull,push'], expiresAt.getTime(), undefined]);
        await store.addRefreshToken('r1', 'token:ci', new Date(Date.now() + 60_000));
        assert.equal(await store.findRefreshToken('r1'), 'token:ci');
        await store.revokeToken('ci');
        assert.ok((await store.getToken('ci'))?.revokedAt, 'revoked, still listed');
        assert.equal(await store.findRefreshToken('r1'), undefined, 'revoking ends its refresh tokens');
        await assert.rejects(store.revokeToken('ci'), code('ERR_TOKEN_UNKNOWN'));
        assert.deepEqual(await store.counts(), { users: 1, tokens: 0, rules: 0 }, 'revoked tokens do not count');
      }),
    );

    test(
      'policy rules are kept as written and removed by id',
      withStore(async (store) => {
        const id = await store.addRule({ subject: 'group:dev', repositories: 'team/*', actions: ['pull', 'push'] });
        assert.deepEqual(await store.listRules(), [{ id, subject: 'group:dev', repositories: 'team/*', actions: ['pull', 'push'] }]);
        await store.removeRule(id);
        assert.deepEqual(await store.listRules(), []);
        await assert.rejects(store.removeRule(id), code('ERR_RULE_UNKNOWN'));
      }),
    );

    test(
      'the audit log lists newest first, filtered by actor, repository or action, in pages',
      withStore(async (store) => {
        const at = new Date(1_700_000_000_000);
        await store.record({ at, actor: 'alice', ip: '127.0.0.1', action: 'push', repository: 'a', target: 'v1', outcome: 'ok' });
        await store.record({ at, actor: 'bob', ip: undefined, action: 'delete', repository: 'b', target: undefined, outcome: 'denied' });
        assert.deepEqual((await store.list()).map((e) => e.actor), ['bob', 'alice']);
        const [alice] = await store.list({ actor: 'alice' });
        assert.deepEqual(alice, { id: alice?.id, at, actor: 'alice', ip: '127.0.0.1', action: 'push', repository: 'a', target: 'v1', outcome: 'ok' });
        assert.deepEqual((await store.list({ repository: 'b' })).map((e) => [e.action, e.ip, e.outcome]), [['delete', undefined, 'denied']]);
        assert.deepEqual((await store.list({ action: 'delete' })).map((e) => e.actor), ['bob']);
        await store.record({ at, actor: 'carol', ip: undefined, action: 'push', repository: 'a', target: 'v2', outcome: 'ok' });
        const first = await store.list({ limit: 2 });
        assert.deepEqual(first.map((e) => e.actor), ['carol', 'bob']);
        assert.deepEqual((await store.list({ limit: 2, before: first[1]!.id })).map((e) => e.actor), ['alice'], 'the next page starts after the last id');
        assert.deepEqual((await store.list({ action: 'push', before: first[0]!.id })).map((e) => e.actor), ['alice'], 'filters and pages together');
      }),
    );

    test(
      'every change is audited in its own transaction, as the actor the store was opened for; a failed one leaves no entry',
      withStore(async (store) => {
        const admin = store.as({ name: 'admin', ip: '192.0.2.1' });
        await admin.addUser('carol', '$2b$04$abcdefghijklmnopqrstuu', { admin: true });
        await admin.addGroup('ops');
        await admin.addMember('ops', 'carol');
        const id = await admin.addRule({ subject: 'group:ops', repositories: 'ops/*', actions: ['pull'] });
        await assert.rejects(admin.removeUser('nobody'));
        const mine = (await store.list({ actor: 'admin' })).reverse().map((e) => [e.action, e.target, e.ip, e.outcome]);
        assert.deepEqual(mine, [
          ['user-add', 'carol (admin)', '192.0.2.1', 'ok'],
          ['group-add', 'ops', '192.0.2.1', 'ok'],
          ['group-member-add', 'ops carol', '192.0.2.1', 'ok'],
          ['policy-add', `#${id} group:ops ops/* pull`, '192.0.2.1', 'ok'],
        ]);
      }),
    );
  });
}
