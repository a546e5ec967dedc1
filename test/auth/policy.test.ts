/** The pure parts: scopes, patterns, rights, grants, the login throttle, libtrust key ids. */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { libtrustKeyId } from '../../src/auth/keys.js';
import { grantScopes, matchesPattern, pullPatterns, rightsOn, validateRule, type Identity } from '../../src/auth/policy.js';
import { inNamePatterns } from '../../src/shared/name-patterns.js';
import { parseScope, parseScopes } from '../../src/auth/scope.js';
import { CountingLoginThrottle } from '../../src/auth/throttle.js';
import { InProcessCoordinator } from '../../src/store/coordinator/in-process.js';

test('scopes parse as the spec writes them', () => {
  assert.deepEqual(parseScope('repository:team/app:pull,push'), { type: 'repository', name: 'team/app', actions: ['pull', 'push'] });
  assert.deepEqual(parseScope('repository:localhost:5000/app:pull'), { type: 'repository', name: 'localhost:5000/app', actions: ['pull'] });
  assert.deepEqual(parseScope('repository(plugin):x:pull'), { type: 'repository', name: 'x', actions: ['pull'] });
  assert.deepEqual(parseScope('repository:x:*'), { type: 'repository', name: 'x', actions: ['pull', 'push', 'delete'] });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  assert.deepEqual(parseScopes(['repository:a:pull repository:b:push', 'repository:c:pull']).map((s) => s.name), ['a', 'b', 'c']);
  for (const bad of ['repository:x', 'repository::pull', ':x:pull', 'repository:x:', 'rep-o:x:pull']) assert.throws(() => parseScope(bad), /invalid scope/, bad);
});

test('patterns: * matches anything, slashes included; otherwise exact', () => {
  assert.ok(matchesPattern('team/*', 'team/app'));
  assert.ok(matchesPattern('team/*', 'team/app/cache'));
  assert.ok(!matchesPattern('team/*', 'team'));
  assert.ok(!matchesPattern('team/*', 'teams/app'));
  assert.ok(matchesPattern('*', 'anything/at/all'));
  assert.ok(matchesPattern('*-cache', 'team/app-cache'));
  assert.ok(!matchesPattern('team/app', 'team/app2'));
  assert.ok(!matchesPattern('team.app', 'teamxapp'), 'dots are literal');
});

test('rights add up over rules; admins may do everything; tokens stay within scopes and owner', () => {
  const rules = [
    validateRule('group:devs', 'team/*', ['pull', 'push'], 'r1'),
    validateRule('anonymous', 'public/*', ['pull'], 'r2'),
    validateRule('authenticated', 'shared/*', ['pull'], 'r3'),
    validateRule('user:bob', 'team/app', ['delete'], 'r4'),
    validateRule('token:ci', 'extra/*', ['pull'], 'r5'),
  ];
  const bob: Identity = { kind: 'user', name: 'bob', admin: false, groups: ['devs'] };
  const eve: Identity = { kind: 'user', name: 'eve', admin: false, groups: [] };
  const root: Identity = { kind: 'user', name: 'root', admin: true, groups: [] };
  const anon: Identity = { kind: 'anonymous' };
  const sorted = (s: Set<string>) => [...s].sort();
  assert.deepEqual(sorted(rightsOn(rules, bob, 'team/app')), ['delete', 'pull', 'push']);
  assert.deepEqual(sorted(rightsOn(rules, bob, 'team/web')), ['pull', 'push']);
  assert.deepEqual(sorted(rightsOn(rules, eve, 'team/app')), []);
  assert.deepEqual(sorted(rightsOn(rules, eve, 'shared/x')), ['pull']);
  assert.deepEqual(sorted(rightsOn(rules, anon, 'shared/x')), []);
  assert.deepEqual(sorted(rightsOn(rules, anon, 'public/x')), ['pull']);
  assert.deepEqual(sorted(rightsOn(rules, root, 'secret/x')), ['delete', 'pull', 'push']);
  const ci: Identity = { kind: 'token', name: 'ci', scopes: [parseScope('repository:team/*:pull,push,delete')], owner: undefined };
  assert.deepEqual(sorted(rightsOn(rules, ci, 'team/app')), ['delete', 'pull', 'push']);
  assert.deepEqual(sorted(rightsOn(rules, ci, 'extra/x')), ['pull']);
  const owned: Identity = { ...ci, owner: bob };
  assert.deepEqual(sorted(rightsOn(rules, owned, 'team/web')), ['pull', 'push'], 'capped by the owner');
  assert.deepEqual(
    grantScopes(rules, eve, [parseScope('repository:shared/x:pull,push'), parseScope('registry:catalog:*'), parseScope('repository:team/app:pull')]),
    [
      { type: 'repository', name: 'shared/x', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'team/app', actions: [] },
    ],
  );
  assert.deepEqual(grantScopes(rules, anon, [parseScope('registry:catalog:*')]), [{ type: 'registry', name: 'catalog', actions: [] }]);
  assert.throws(() => validateRule('user:bob', 'Team/*', ['pull'], 'x'), /repository pattern/);
  assert.throws(() => validateRule('bob', 'team/*', ['pull'], 'x'), /subject/);
});

test('pull patterns name exactly the repositories rightsOn lets each identity pull', () => {
  const rules = [
    validateRule('anonymous', 'public/*', ['pull'], 'config'),
    validateRule('authenticated', 'shared', ['pull', 'push'], 'config'),
    validateRule('user:alice', 'team/*', ['pull'], '1'),
    validateRule('group:dev', '*-cache', ['pull'], '2'),
    validateRule('user:bob', 'team/app', ['push'], '3'),
  ];
  const alice: Extract<Identity, { kind: 'user' }> = { kind: 'user', name: 'alice', admin: false, groups: ['dev'] };
  const identities: Identity[] = [
    { kind: 'anonymous' },
    alice,
    { kind: 'user', name: 'bob', admin: false, groups: [] },
    { kind: 'user', name: 'root', admin: true, groups: [] },
    { kind: 'token', name: 'ci', scopes: [{ type: 'repository', name: 'team/app*', actions: ['pull', 'push'] }], owner: alice },
    { kind: 'token', name: 'free', scopes: [{ type: 'repository', name: 'other/*', actions: ['pull'] }, { type: 'repository', name: 'x', actions: ['push'] }], owner: undefined },
  ];
  const names = ['public/a', 'shared', 'team/app', 'team/app-cache', 'team/web', 'ops/x-cache', 'other/thing', 'x', 'secret'];
  for (const identity of identities) {
    const set = pullPatterns(rules, identity);
    for (const n of names) assert.equal(inNamePatterns(set, n), rightsOn(rules, identity, n).has('pull'), `${JSON.stringify(identity)} on ${n}`);
  }
  assert.deepEqual(pullPatterns(rules, identities[3]!), { all: true });
});

test('the throttle counts failures per account and address within the window', async () => {
  let now = 0;
  const clock = () => now;
  const t = new CountingLoginThrottle(new InProcessCoordinator({ now: clock }), 3, 60_000, clock);
  for (let i = 0; i < 3; i++) {
    assert.equal(await t.retryAfter('dev', 'a'), 0);
    await t.failed('dev', 'a');
  }
  now = 10_000;
  assert.equal(await t.retryAfter('dev', 'a'), 50);
  assert.equal(await t.retryAfter('dev', 'b'), 0, 'other addresses are not affected');
  assert.equal(await t.retryAfter('ops', 'a'), 0, 'other accounts from the same address are not affected');
  now = 60_000;
  assert.equal(await t.retryAfter('dev', 'a'), 0, 'the window passed');
  await t.failed('dev', 'a');
  await t.succeeded('dev', 'a');
  await t.failed('dev', 'a');
  await t.failed('dev', 'a');
  assert.equal(await t.retryAfter('dev', 'a'), 0, 'a success starts the count again');
});

test('key ids have the libtrust fingerprint form (that distribution accepts them is the interop test)', () => {
  const pem = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYD54V/vp+54P9DXarYqx4MPcm+HK
RIQzNasYSoRQHQ/6S6Ps8tpMcT+KvIIC8W/e9k0W7Cm72M1P9jU7SLf/vg==
-----END PUBLIC KEY-----`;
  const id = libtrustKeyId(createPublicKey(pem));
  assert.match(id, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  assert.equal(libtrustKeyId(createPublicKey(pem)), id, 'stable');
});
