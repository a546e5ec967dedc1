/**
 * The token is the grant, and the login throttle never locks out the
 * innocent: a JWT never outlives the credential that obtained it, stops
 * working within the documented bound once that is revoked or removed,
 * and bounds every operation (mounts included); malformed claims and
 * invalid names are refused cleanly; failed logins are counted per
 * account and address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { addPolicyRule, addUser, createAccessToken } from '../../src/auth/accounts.js';
import { loadKeySet, type KeySet } from '../../src/auth/keys.js';
import { blob, makeImage } from '../helpers/images.js';
import { basic, fetchToken, pushAs, startAuthRegistry, type AuthRegistry } from './helpers.js';

/** The documented bound (docs/decisions/0066): the gate re-reads accounts every second. */
const REVOCATION_BOUND_MS = 1000;

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

/** Polls `probe` until it returns `want` or `ms` pass; returns how long it took, or undefined. */
async function within(ms: number, want: number, probe: () => Promise<number>): Promise<number | undefined> {
  const start = Date.now();
  for (;;) {
    if ((await probe()) === want) return Date.now() - start;
    if (Date.now() - start > ms) return undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('login throttle', () => {
  let reg: AuthRegistry;
  before(async () => {
    reg = await startAuthRegistry(
      async (store) => {
        for (const name of ['dev', 'ops', 'ci']) await addUser(store, name, `${name}-password`);
      },
      { auth: { throttle: { failures: 3, window: '60s' } } },
    );
  });
  after(async () => {
    await reg?.close();
  });

  const login = (user: string, password: string) => status(`${reg.url}/v2/`, { headers: { authorization: basic(user, password) } });

  test("one account's failures from a shared address do not refuse another account", async () => {
    const dev: number[] = [];
    for (let i = 0; i < 4; i++) dev.push(await login('dev', `wrong-${i}`));
    assert.deepEqual(dev, [401, 401, 401, 429]);
    assert.equal(await login('dev', 'dev-password'), 429, 'the throttled account stays throttled for the window');
    assert.equal(await login('ops', 'ops-password'), 200, 'another account from the same address logs in');
    assert.equal(await login('ops', 'wrong'), 401, 'and its own failures are its own');
    const token = await fetchToken(reg.url, ['repository:team/app:pull'], basic('ops', 'ops-password'));
    assert.equal(token.status, 200);
  });

  test('a correct password answered from the credential cache clears the count', async () => {
    assert.equal(await login('ci', 'ci-password'), 200, 'verified and cached');
    assert.deepEqual([await login('ci', 'wrong-1'), await login('ci', 'wrong-2')], [401, 401]);
    assert.equal(await login('ci', 'ci-password'), 200, 'answered from the cache');
    assert.deepEqual([await login('ci', 'wrong-3'), await login('ci', 'wrong-4')], [401, 401], 'the count started again');
    assert.equal(await login('ci', 'ci-password'), 200);
  });
});

describe('the token is the grant', () => {
  let reg: AuthRegistry;
  let keys: KeySet;
  const secretLayer = blob(randomBytes(4096));

  before(async () => {
    reg = await startAuthRegistry(async (store) => {
      await addUser(store, 'dev', 'dev-password');
      await addUser(store, 'leaver', 'leaver-password');
      await addUser(store, 'admin', 'admin-password', { admin: true });
      await addPolicyRule(store, 'user:dev', 'team/*', ['pull', 'push']);
      await addPolicyRule(store, 'user:leaver', 'team/*', ['pull']);
    });
    const admin = basic('admin', 'admin-password');
    assert.equal(await pushAs(reg.url, 'team/app', 'v1', await makeImage(), admin), 201);
    const res = await fetch(`${reg.url}/v2/team/secret/blobs/uploads/?digest=${secretLayer.digest}`, { method: 'POST', body: secretLayer.data, headers: { authorization: admin } });
    assert.equal(res.status, 201);
    keys = await loadKeySet(path.join(reg.dataDir, 'keys'));
  });
  after(async () => {
    await reg?.close();
  });

  const pull = (token: string) => status(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });

  test("a JWT expires no later than the CI token that obtained it, and stops with it", async () => {
    const { secret, expiresAt } = await createAccessToken(reg.store, { name: 'short', scopes: ['repository:team/app:pull'], expiresIn: 3 });
    const t = await fetchToken(reg.url, ['repository:team/app:pull'], basic('ci', secret));
    assert.equal(t.status, 200);
    const exp = Number(claimsOf(t.token!).exp);
    assert.ok(exp * 1000 <= expiresAt!.getTime(), `exp ${exp} must not pass the CI token's expiry ${expiresAt!.toISOString()}`);
    assert.ok(Number(t.body.expires_in) <= 3, `expires_in ${String(t.body.expires_in)}`);
    assert.equal(await pull(t.token!), 200);
    await new Promise((r) => setTimeout(r, expiresAt!.getTime() - Date.now() + 100));
    assert.equal(await pull(t.token!), 401, 'the JWT stopped with the CI token');
    assert.equal(await status(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: basic('ci', secret) } }), 401);
  });

  test('revoking a CI token or removing a user stops its JWTs within the documented bound', async () => {
    const { secret } = await createAccessToken(reg.store, { name: 'revoked', scopes: ['repository:team/app:pull'] });
    const ci = await fetchToken(reg.url, ['repository:team/app:pull'], basic('ci', secret));
    const user = await fetchToken(reg.url, ['repository:team/app:pull'], basic('leaver', 'leaver-password'));
    assert.equal(await pull(ci.token!), 200);
    assert.equal(await pull(user.token!), 200);
    await reg.store.revokeToken('revoked');
    await reg.store.removeUser('leaver');
    // The bound plus one poll and the request itself.
    const margin = REVOCATION_BOUND_MS + 1000;
    const tookCi = await within(margin, 401, () => pull(ci.token!));
    const tookUser = await within(margin, 401, () => pull(user.token!));
    assert.ok(tookCi !== undefined, 'the revoked token\'s JWT still pulls');
    assert.ok(tookUser !== undefined, 'the removed user\'s JWT still pulls');
  });

  test("a mount is checked against the token's access claim as well as the policy", async () => {
    const mount = (token: string, from: string | undefined) =>
      fetch(`${reg.url}/v2/team/app/blobs/uploads/?mount=${secretLayer.digest}${from === undefined ? '' : `&from=${from}`}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      });
    const head = (token: string) => status(`${reg.url}/v2/team/app/blobs/${secretLayer.digest}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    const narrow = await fetchToken(reg.url, ['repository:team/app:pull,push'], basic('dev', 'dev-password'));
    assert.deepEqual(claimsOf(narrow.token!).access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    assert.equal(await mount(narrow.token!, 'team/secret'), 202, 'the policy allows dev to pull team/secret, but the token does not name it: no mount, an upload session');
    assert.equal(await mount(narrow.token!, undefined), 202, 'nor an automatic mount');
    assert.equal(await head(narrow.token!), 404);
    const wide = await fetchToken(reg.url, ['repository:team/app:pull,push', 'repository:team/secret:pull'], basic('dev', 'dev-password'));
    assert.equal(await mount(wide.token!, 'team/secret'), 201, 'a token that names the source mounts');
    assert.equal(await head(wide.token!), 200);
  });

  test('malformed claims signed with the registry key are 401, never 500', async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: 'pier', aud: 'pier', iat: now, nbf: now - 5, exp: now + 60, sub: 'dev', access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] };
    const signed = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: keys.signer.kid }).sign(keys.signer.privateKey);
    assert.equal(await pull(await signed(base)), 200, 'the well-formed one works');
    const cases: Record<string, Record<string, unknown>> = {
      'numeric sub': { ...base, sub: 42 },
      'object sub': { ...base, sub: { name: 'dev' } },
      'null sub': { ...base, sub: null },
      'access not a list': { ...base, access: 'repository:team/app:pull' },
      'access entry without actions': { ...base, access: [{ type: 'repository', name: 'team/app' }] },
      'access actions not strings': { ...base, access: [{ type: 'repository', name: 'team/app', actions: [1] }] },
      'string exp': { ...base, exp: String(now + 60) },
      'array aud': { ...base, aud: [1, 2] },
    };
    for (const [what, claims] of Object.entries(cases)) {
      const res = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: `Bearer ${await signed(claims)}` } });
      const body = (await res.json()) as { errors?: { code: string }[] };
      assert.equal(res.status, 401, what);
      assert.equal(body.errors?.[0]?.code, 'UNAUTHORIZED', what);
    }
  });

  test('/auth/token grants nothing for names the registry would reject', async () => {
    const bad = ['Team/App', 'team//app', 'team/../app', '-team/app', 'team/app:latest', `${'a'.repeat(300)}`];
    for (const name of bad) {
      const t = await fetchToken(reg.url, [`repository:${name}:pull,push`], basic('admin', 'admin-password'));
      assert.equal(t.status, 200, name);
      assert.deepEqual(claimsOf(t.token!).access, [], `${name} was granted`);
    }
    const good = await fetchToken(reg.url, ['repository:team/app:pull'], basic('admin', 'admin-password'));
    assert.deepEqual(claimsOf(good.token!).access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  });
});
