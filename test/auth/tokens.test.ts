/**
 * Forged and misused bearer tokens are rejected; the token endpoint's
 * OAuth form and refresh tokens work; failed logins are throttled; the
 * audit log records who did and was denied what.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { addPolicyRule, addUser } from '../../src/auth/accounts.js';
import { libtrustKeyId, loadKeySet, type KeySet } from '../../src/auth/keys.js';
import { TokenService } from '../../src/auth/tokens.js';
import { makeImage } from '../helpers/images.js';
import { basic, fetchToken, pushAs, startAuthRegistry, type AuthRegistry } from './helpers.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('bearer tokens', () => {
  let reg: AuthRegistry;
  let keys: KeySet;
  let good: string;
  const scope = 'repository:team/app:pull';

  before(async () => {
    reg = await startAuthRegistry(async (store) => {
      await addUser(store, 'dev', 'dev-password');
      await addUser(store, 'admin', 'admin-password', { admin: true });
      await addPolicyRule(store, 'user:dev', 'team/*', ['pull', 'push']);
    });
    assert.equal(await pushAs(reg.url, 'team/app', 'v1', await makeImage(), basic('admin', 'admin-password')), 201);
    keys = await loadKeySet(path.join(reg.dataDir, 'keys'));
    const t = await fetchToken(reg.url, [scope], basic('dev', 'dev-password'));
    good = t.token!;
  });
  after(async () => {
    await reg?.close();
  });

  async function pullWith(token: string): Promise<{ status: number; challenge: string | null }> {
    const res = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    return { status: res.status, challenge: res.headers.get('www-authenticate') };
  }

  test('a genuine token works, and is a JWT the spec describes', async () => {
    assert.equal((await pullWith(good)).status, 200);
    const [h, p] = good.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()) as Record<string, unknown>);
    assert.equal(h!.alg, 'ES256');
    assert.equal(h!.kid, keys.signer.kid);
    assert.match(String(h!.kid), /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    assert.equal(p!.iss, 'pier');
    assert.equal(p!.aud, 'pier');
    assert.equal(p!.sub, 'dev');
    assert.ok(typeof p!.jti === 'string' && typeof p!.nbf === 'number' && typeof p!.iat === 'number');
    assert.equal(Number(p!.exp) - Number(p!.iat), 300);
  });

  test('forgeries are rejected with 401 invalid_token', async () => {
    const [h, p, s] = good.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const publicPem = createPublicKey(keys.signer.privateKey).export({ type: 'spki', format: 'pem' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const signWith = (key: Parameters<SignJWT['sign']>[0], header: Record<string, unknown>, claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
    const forged: Record<string, string> = {
      'tampered payload (more access)': `${h}.${b64({ ...payload, access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }] })}.${s}`,
      'tampered payload (other subject)': `${h}.${b64({ ...payload, sub: 'admin' })}.${s}`,
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`,
      'alg none with kid': `${b64({ alg: 'none', typ: 'JWT', kid: keys.signer.kid })}.${p}.`,
      'HS256 signed with the public key': await signWith(Buffer.from(publicPem as string), { alg: 'HS256', typ: 'JWT', kid: keys.signer.kid }, payload),
      'wrong audience': await signWith(keys.signer.privateKey, { alg: 'ES256', kid: keys.signer.kid }, { ...payload, aud: 'another-registry' }),
      'wrong issuer': await signWith(keys.signer.privateKey, { alg: 'ES256', kid: keys.signer.kid }, { ...payload, iss: 'someone-else' }),
      expired: await signWith(keys.signer.privateKey, { alg: 'ES256', kid: keys.signer.kid }, { ...payload, iat: now - 900, nbf: now - 900, exp: now - 600 }),
      'not yet valid': await signWith(keys.signer.privateKey, { alg: 'ES256', kid: keys.signer.kid }, { ...payload, nbf: now + 600, exp: now + 900 }),
      'unknown key': await signWith(other, { alg: 'ES256', kid: libtrustKeyId(createPublicKey(other)) }, payload),
      'unknown key claiming our kid': await signWith(other, { alg: 'ES256', kid: keys.signer.kid }, payload),
      'no kid': await signWith(keys.signer.privateKey, { alg: 'ES256' }, payload),
      'signature of another token': `${h}.${b64({ ...payload, exp: now + 3600 })}.${s}`,
      'not a JWT': 'hello',
    };
    // A raw ES256 signature in DER form (not the JOSE r||s form) is also refused.
    const der = sign('sha256', Buffer.from(`${h}.${p}`), createPrivateKey(keys.signer.privateKey.export({ type: 'pkcs8', format: 'pem' })));
    forged['DER-encoded signature'] = `${h}.${p}.${der.toString('base64url')}`;
    for (const [what, token] of Object.entries(forged)) {
      const { status, challenge } = await pullWith(token);
      assert.equal(status, 401, what);
      assert.match(challenge ?? '', /error="invalid_token"/, what);
    }
    // And the genuine one still works after all that.
    assert.equal((await pullWith(good)).status, 200);
  });

  test('a token for a scope does not stretch to another action or repository', async () => {
    const push = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${good}` } });
    assert.equal(push.status, 401);
    assert.match(push.headers.get('www-authenticate') ?? '', /scope="repository:team\/app:pull,push",error="insufficient_scope"/);
    const other = await fetch(`${reg.url}/v2/team/other/tags/list`, { headers: { authorization: `Bearer ${good}` } });
    assert.equal(other.status, 401);
  });

  test('the token endpoint refuses another service and bad scopes', async () => {
    assert.equal((await fetchToken(reg.url, [scope], basic('dev', 'dev-password'), 'another-service')).status, 400);
    assert.equal((await fetchToken(reg.url, ['repository:team/app'], basic('dev', 'dev-password'))).status, 400);
  });

  test('OAuth2 POST: password grant with a refresh token, then the refresh_token grant', async () => {
    const form = new URLSearchParams({ grant_type: 'password', username: 'dev', password: 'dev-password', service: 'pier', scope: `${scope} repository:team/app:push`, client_id: 'test', access_type: 'offline' });
    const res = await fetch(`${reg.url}/auth/token`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { access_token: string; refresh_token: string; scope: string; expires_in: number };
    assert.equal(body.scope, 'repository:team/app:pull,push');
    assert.equal(body.expires_in, 300);
    assert.equal((await pullWith(body.access_token)).status, 200);
    const again = await fetch(`${reg.url}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.refresh_token, service: 'pier', scope, client_id: 'test' }),
    });
    assert.equal(again.status, 200);
    assert.equal((await pullWith(((await again.json()) as { access_token: string }).access_token)).status, 200);
    const bogus = await fetch(`${reg.url}/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'nope', service: 'pier' }) });
    assert.equal(bogus.status, 401);
  });

  test('anonymous token requests get a token with nothing in it', async () => {
    const t = await fetchToken(reg.url, [scope]);
    assert.equal(t.status, 200);
    assert.equal((await pullWith(t.token!)).status, 401);
  });

  test('keys rotate: a token from the previous key still verifies', async () => {
    const { generateSigningKey } = await import('../../src/auth/keys.js');
    const dir = path.join(reg.dataDir, 'keys');
    // A later-named key takes over signing; the old one keeps verifying.
    await new Promise((r) => setTimeout(r, 1100));
    await generateSigningKey(dir);
    const rotated = await loadKeySet(dir);
    assert.notEqual(rotated.signer.kid, keys.signer.kid);
    assert.ok(rotated.verifiers.has(keys.signer.kid));
    const service = new TokenService(rotated, { issuer: 'pier', service: 'pier', ttl: 60 });
    const claims = await service.verify(good);
    assert.equal(claims.sub, 'dev');
  });
});

describe('failed logins and the audit log', () => {
  let reg: AuthRegistry;
  before(async () => {
    reg = await startAuthRegistry(
      async (store) => {
        await addUser(store, 'dev', 'dev-password');
        await addPolicyRule(store, 'user:dev', 'team/*', ['pull', 'push']);
      },
      { auth: { throttle: { failures: 3, window: '60s' } } },
    );
  });
  after(async () => {
    await reg?.close();
  });

  test('repeated failures from one address get 429 with Retry-After, also for the right password', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('dev', `wrong-${i}`) } });
      await res.arrayBuffer();
      statuses.push(res.status);
      retryAfter = res.headers.get('retry-after') ?? retryAfter;
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    assert.ok(Number(retryAfter) > 0 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);
    const right = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('dev', 'dev-password') } });
    assert.equal(right.status, 429);
    const token = await fetchToken(reg.url, ['repository:team/app:pull'], basic('dev', 'dev-password'));
    assert.equal(token.status, 429);
  });

  test('the audit log records pushes, deletes, denials and failed logins', async () => {
    const entries = await reg.store.list({ limit: 100 });
    assert.ok(entries.some((e) => e.action === 'login' && e.outcome === 'failed' && e.actor === 'dev' && e.ip === '127.0.0.1'));
    // Pushes and denials need a client that is not throttled: use a bearer token minted by the registry's own key.
    const keys = await loadKeySet(path.join(reg.dataDir, 'keys'));
    const service = new TokenService(keys, { issuer: 'pier', service: 'pier', ttl: 60 });
    const { token } = await service.issue('dev', [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }]);
    const image = await makeImage();
    assert.equal(await pushAs(reg.url, 'team/app', 'v1', image, `Bearer ${token}`), 201);
    const del = await fetch(`${reg.url}/v2/team/app/manifests/${image.digest}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(del.status, 401, 'the token claims delete, but the policy does not grant it');
    await new Promise((r) => setTimeout(r, 100));
    const after = await reg.store.list({ limit: 100 });
    assert.ok(after.some((e) => e.action === 'push' && e.actor === 'dev' && e.repository === 'team/app' && e.target === 'v1' && e.outcome === 'ok'), JSON.stringify(after));
    assert.ok(after.some((e) => e.action === 'delete' && e.actor === 'dev' && e.repository === 'team/app' && e.outcome === 'denied'), JSON.stringify(after));
  });
});
