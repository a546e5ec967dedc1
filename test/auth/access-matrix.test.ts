/**
 * The access matrix: every kind of caller × every kind of request, with
 * the exact status, through Basic credentials on /v2/ and through bearer
 * tokens from /auth/token; and on every denial, nothing stored and nothing
 * revealed about what exists.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addPolicyRule, addUser, createAccessToken } from '../../src/auth/accounts.js';
import { loadKeySet } from '../../src/auth/keys.js';
import { TokenService } from '../../src/auth/tokens.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import { blob, makeImage, sha256, type TestImage } from '../helpers/images.js';
import { basic, fetchToken, pushAs, startAuthRegistry, type AuthRegistry } from './helpers.js';

const IDENTITIES = ['anonymous', 'reader', 'writer', 'ci', 'revoked', 'expired', 'admin'] as const;
type Who = (typeof IDENTITIES)[number];
const OPS = ['pull', 'push', 'mount-from-private', 'delete', 'catalog', 'tags', 'referrers'] as const;
type Op = (typeof OPS)[number];

/** Expected statuses with Basic credentials sent to /v2/ (403: known but not allowed). */
const BASIC: Record<Who, Record<Op, number>> = {
  anonymous: { pull: 401, push: 401, 'mount-from-private': 401, delete: 401, catalog: 401, tags: 401, referrers: 401 },
  reader: { pull: 200, push: 403, 'mount-from-private': 403, delete: 403, catalog: 200, tags: 200, referrers: 200 },
  // A writer may push team/app but not pull private/secret: the mount is refused and the client gets an upload session.
  writer: { pull: 200, push: 201, 'mount-from-private': 202, delete: 403, catalog: 200, tags: 200, referrers: 200 },
  ci: { pull: 200, push: 201, 'mount-from-private': 202, delete: 403, catalog: 200, tags: 200, referrers: 200 },
  revoked: { pull: 401, push: 401, 'mount-from-private': 401, delete: 401, catalog: 401, tags: 401, referrers: 401 },
  expired: { pull: 401, push: 401, 'mount-from-private': 401, delete: 401, catalog: 401, tags: 401, referrers: 401 },
  admin: { pull: 200, push: 201, 'mount-from-private': 201, delete: 202, catalog: 200, tags: 200, referrers: 200 },
};

/** With bearer tokens every refusal is 401 (insufficient_scope or invalid_token), as distribution answers. */
const BEARER: Record<Who, Record<Op, number>> = Object.fromEntries(
  IDENTITIES.map((who) => [who, Object.fromEntries(OPS.map((op) => [op, BASIC[who][op] === 403 ? 401 : BASIC[who][op]]))]),
) as Record<Who, Record<Op, number>>;

/** What each caller's catalog shows. */
const CATALOG: Partial<Record<Who, string[]>> = {
  reader: ['team/app'],
  writer: ['team/app'],
  ci: ['team/app'],
  admin: ['private/secret', 'team/app'],
};

const SCOPES: Record<Op, string[]> = {
  pull: ['repository:team/app:pull'],
  push: ['repository:team/app:pull,push'],
  'mount-from-private': ['repository:team/app:pull,push', 'repository:private/secret:pull'],
  delete: ['repository:team/app:delete'],
  catalog: ['registry:catalog:*'],
  tags: ['repository:team/app:pull'],
  referrers: ['repository:team/app:pull'],
};

describe('access matrix', () => {
  let reg: AuthRegistry;
  const secrets: Record<string, string> = {};
  let app: TestImage;
  let priv: TestImage;
  const adminAuth = basic('admin', 'admin-password');
  const basicOf = (who: Who): string | undefined => {
    switch (who) {
      case 'anonymous':
        return undefined;
      case 'reader':
        return basic('reader', 'reader-password');
      case 'writer':
        return basic('writer', 'writer-password');
      case 'admin':
        return adminAuth;
      case 'ci':
        return basic('ci', secrets.ci!);
      case 'revoked':
        return basic('old', secrets.old!);
      case 'expired':
        return basic('stale', secrets.stale!);
    }
  };
  /** Bearer tokens of the revoked caller, fetched while its access token was still live. */
  const preRevocation: Partial<Record<Op, string>> = {};
  let expiredJwt: string;

  before(async () => {
    reg = await startAuthRegistry(async (store) => {
      await addUser(store, 'admin', 'admin-password', { admin: true });
      await addUser(store, 'reader', 'reader-password');
      await addUser(store, 'writer', 'writer-password');
      await store.addGroup('devs');
      await store.addMember('devs', 'writer');
      await addPolicyRule(store, 'user:reader', 'team/*', ['pull']);
      await addPolicyRule(store, 'group:devs', 'team/*', ['pull', 'push']);
      secrets.ci = (await createAccessToken(store, { name: 'ci', scopes: ['repository:team/app:push,pull'] })).secret;
      secrets.old = (await createAccessToken(store, { name: 'old', scopes: ['repository:team/app:push,pull'] })).secret;
      secrets.stale = (await createAccessToken(store, { name: 'stale', scopes: ['repository:team/app:push,pull'], expiresIn: -60 })).secret;
      // The revoked and expired callers fail hundreds of logins here: the throttle has its own test.
      // scanning.sbom off: the matrix counts referrers exactly, and the SBOM the registry adds arrives asynchronously.
    }, { auth: { throttle: { failures: 0 } }, scanning: { sbom: false } });
    app = await makeImage({ layers: [512] });
    priv = await makeImage({ layers: [512] });
    assert.equal(await pushAs(reg.url, 'team/app', 'v1', app, adminAuth), 201);
    assert.equal(await pushAs(reg.url, 'private/secret', 'v1', priv, adminAuth), 201);
    // A referrer of team/app:v1.
    const empty = blob(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
    const desc = { mediaType: empty.mediaType, digest: empty.digest, size: empty.size };
    const sig = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: 'application/vnd.example.sig', config: desc, layers: [desc], subject: { mediaType: app.mediaType, digest: app.digest, size: app.manifest.length } }),
    );
    const res = await fetch(`${reg.url}/v2/team/app/blobs/uploads/?digest=${empty.digest}`, { method: 'POST', body: empty.data, headers: { authorization: adminAuth } });
    assert.equal(res.status, 201);
    const put = await fetch(`${reg.url}/v2/team/app/manifests/${sha256(sig)}`, { method: 'PUT', body: sig, headers: { authorization: adminAuth, 'content-type': MediaTypes.ociManifest } });
    assert.equal(put.status, 201);

    for (const op of OPS) {
      const t = await fetchToken(reg.url, SCOPES[op], basic('old', secrets.old!));
      assert.equal(t.status, 200);
      preRevocation[op] = t.token!;
    }
    await reg.store.revokeToken('old');
    const keys = await loadKeySet(path.join(reg.dataDir, 'keys'));
    const past = new TokenService(keys, { issuer: 'pier', service: 'pier', ttl: -600 });
    expiredJwt = (await past.issue('token:ci', SCOPES.push.map((s) => ({ type: 'repository', name: 'team/app', actions: s.split(':')[2]!.split(',') })))).token;
    // The registry notices the revocation within its one-second poll.
    await new Promise((r) => setTimeout(r, 1300));
  });
  after(async () => {
    await reg?.close();
  });

  async function adminStatus(method: string, p: string): Promise<number> {
    const res = await fetch(`${reg.url}${p}`, { method, headers: { authorization: adminAuth } });
    await res.arrayBuffer();
    return res.status;
  }

  /** Runs one request; checks that a refused one changed nothing. */
  async function attempt(who: Who, op: Op, authorization: string | undefined, tag: string): Promise<number> {
    const headers: Record<string, string> = authorization ? { authorization } : {};
    const get = async (p: string, method = 'GET') => {
      const res = await fetch(`${reg.url}${p}`, { method, headers });
      const text = await res.text();
      return { status: res.status, text };
    };
    switch (op) {
      case 'pull':
        return (await get('/v2/team/app/manifests/v1')).status;
      case 'push': {
        const image = await makeImage({ layers: [300] });
        const status = await pushAs(reg.url, 'team/app', tag, image, authorization);
        if (status !== 201) {
          assert.equal(await adminStatus('GET', `/v2/team/app/manifests/${tag}`), 404, `${who}: refused push left a tag`);
          for (const b of [image.config, ...image.layers]) assert.equal(await adminStatus('HEAD', `/v2/team/app/blobs/${b.digest}`), 404, `${who}: refused push left a blob`);
        }
        return status;
      }
      case 'mount-from-private': {
        const layer = priv.layers[0]!.digest;
        const { status } = await get(`/v2/team/app/blobs/uploads/?mount=${layer}&from=private/secret`, 'POST');
        if (status !== 201) assert.equal(await adminStatus('HEAD', `/v2/team/app/blobs/${layer}`), 404, `${who}: refused mount linked the private blob`);
        return status;
      }
      case 'delete': {
        const victim = await makeImage({ layers: [200] });
        assert.equal(await pushAs(reg.url, 'team/app', tag, victim, adminAuth), 201);
        const { status } = await get(`/v2/team/app/manifests/${victim.digest}`, 'DELETE');
        if (status !== 202) assert.equal(await adminStatus('GET', `/v2/team/app/manifests/${victim.digest}`), 200, `${who}: refused delete removed the manifest`);
        return status;
      }
      case 'catalog': {
        const { status, text } = await get('/v2/_catalog');
        if (status === 200) assert.deepEqual((JSON.parse(text) as { repositories: string[] }).repositories, CATALOG[who], `${who}: catalog`);
        return status;
      }
      case 'tags': {
        const { status, text } = await get('/v2/team/app/tags/list');
        if (status === 200) assert.ok((JSON.parse(text) as { tags: string[] }).tags.includes('v1'));
        return status;
      }
      case 'referrers': {
        const { status, text } = await get(`/v2/team/app/referrers/${app.digest}`);
        if (status === 200) assert.equal((JSON.parse(text) as { manifests: unknown[] }).manifests.length, 1);
        return status;
      }
    }
  }

  test('with Basic credentials on /v2/', async () => {
    const actual: Record<string, Record<string, number>> = {};
    for (const who of IDENTITIES) {
      actual[who] = {};
      for (const op of OPS) actual[who][op] = await attempt(who, op, basicOf(who), `basic-${who}-${op}`);
    }
    assert.deepEqual(actual, BASIC);
  });

  test('with bearer tokens from /auth/token', async () => {
    // Undo the admin's mount of the first run.
    assert.equal(await adminStatus('DELETE', `/v2/team/app/blobs/${priv.layers[0]!.digest}`), 202);
    const actual: Record<string, Record<string, number>> = {};
    for (const who of IDENTITIES) {
      actual[who] = {};
      for (const op of OPS) {
        let bearer: string;
        if (who === 'revoked') bearer = preRevocation[op]!;
        else if (who === 'expired') bearer = expiredJwt;
        else {
          const t = await fetchToken(reg.url, SCOPES[op], basicOf(who));
          assert.equal(t.status, 200, `${who} ${op}: token endpoint ${JSON.stringify(t.body)}`);
          bearer = t.token!;
        }
        actual[who][op] = await attempt(who, op, `Bearer ${bearer}`, `bearer-${who}-${op}`);
      }
    }
    assert.deepEqual(actual, BEARER);
  });

  test('a refusal says nothing about whether the repository or manifest exists', async () => {
    for (const who of IDENTITIES.filter((w) => w !== 'admin')) {
      const headers: Record<string, string> = basicOf(who) ? { authorization: basicOf(who)! } : {};
      const answers = [];
      for (const p of ['/v2/private/secret/manifests/v1', '/v2/private/nothing/manifests/v1', `/v2/private/secret/blobs/${priv.layers[0]!.digest}`, `/v2/private/nothing/blobs/${priv.layers[0]!.digest}`]) {
        for (const method of ['GET', 'HEAD']) {
          const res = await fetch(`${reg.url}${p}`, { method, headers });
          const body = (await res.text()).replace(/private\/(secret|nothing)/g, 'X');
          answers.push(`${method} ${res.status} ${body} ${(res.headers.get('www-authenticate') ?? '').replace(/private\/(secret|nothing)/g, 'X')}`);
        }
      }
      const [existing, missing] = [answers.filter((_, i) => Math.floor(i / 2) % 2 === 0), answers.filter((_, i) => Math.floor(i / 2) % 2 === 1)];
      assert.deepEqual(existing, missing, `${who} can tell what exists`);
      assert.ok(answers.every((a) => / 40[13] /.test(a)), `${who}: ${answers.join('\n')}`);
    }
  });

  test('the challenge names exactly the scope the request needs', async () => {
    const res = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(res.status, 401);
    const host = new URL(reg.url).host;
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="http://${host}/auth/token",service="pier",scope="repository:team/app:pull,push"`);
    const base = await fetch(`${reg.url}/v2/`);
    assert.equal(base.status, 401);
    assert.equal(base.headers.get('www-authenticate'), `Bearer realm="http://${host}/auth/token",service="pier"`);
    const catalog = await fetch(`${reg.url}/v2/_catalog`);
    assert.match(catalog.headers.get('www-authenticate') ?? '', /scope="registry:catalog:\*"/);
  });

  test('the token grants only the intersection of what was asked and what is allowed', async () => {
    const t = await fetchToken(reg.url, ['repository:team/app:pull,push,delete', 'repository:private/secret:pull', 'repository:team/other:*'], basic('writer', 'writer-password'));
    assert.equal(t.status, 200);
    const claims = JSON.parse(Buffer.from(t.token!.split('.')[1]!, 'base64url').toString()) as { access: unknown; aud: unknown; sub: unknown };
    assert.deepEqual(claims.access, [
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'team/other', actions: ['pull', 'push'] },
    ]);
    assert.equal(claims.aud, 'pier');
    assert.equal(claims.sub, 'writer');
  });
});
