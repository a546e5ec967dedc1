/**
 * The web UI's session cookie is `Secure` when the registry serves HTTPS
 * (tls.cert, tls.key), and its sign-in refuses a body that is not JSON
 * (what a cross-site form would send).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { selfSignedCertificate } from '../../src/auth/keys.js';
import { startTestRegistry, tempDir } from '../helpers/registry.js';

test('over TLS the session cookie is Secure, HttpOnly, SameSite=Strict and scoped to /pier/', async () => {
  const dir = await tempDir('pier-ui-tls-');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await writeFile(path.join(dir, 'tls.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(path.join(dir, 'tls.crt'), selfSignedCertificate(privateKey, '127.0.0.1'));
  const reg = await startTestRegistry({ tls: { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') } });
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  const json = { 'content-type': 'application/json' };
  try {
    const add = await request(`${reg.url}/pier/v1/users`, { method: 'POST', dispatcher, headers: json, body: JSON.stringify({ name: 'ann', password: 'ann-password-1', admin: true }) });
    assert.equal(add.statusCode, 200, await add.body.text());
    const form = await request(`${reg.url}/pier/v1/session`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=ann&password=ann-password-1' });
    await form.body.dump();
    assert.equal(form.statusCode, 400, 'a form post cannot sign in');
    assert.equal(form.headers['set-cookie'], undefined);
    const res = await request(`${reg.url}/pier/v1/session`, { method: 'POST', dispatcher, headers: json, body: JSON.stringify({ username: 'ann', password: 'ann-password-1' }) });
    const body = (await res.body.json()) as { user: string; admin: boolean; csrf: string };
    assert.equal(res.statusCode, 200);
    assert.equal(body.user, 'ann');
    assert.equal(body.admin, true);
    assert.match(body.csrf, /^[\w-]{20,}$/);
    const cookie = String(res.headers['set-cookie']);
    for (const attr of ['; Secure', '; HttpOnly', '; SameSite=Strict', '; Path=/pier/']) assert.ok(cookie.includes(attr), `${attr} in ${cookie}`);
  } finally {
    await dispatcher.close();
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});
