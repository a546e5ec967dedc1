/**
 * The transport layers and credentials, against small fake servers:
 * retries (5xx, 429 + Retry-After, broken connections), HEAD never taken as
 * "missing" when it failed, token caching and refresh, challenge parsing,
 * docker config.json / credential helpers / podman auth.json.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HttpPool } from '../../src/client/http.js';
import { Authenticator, CredentialStore, Registry, mergeScopes, parseChallenge } from '../../src/client/index.js';
import type { HttpRequest, HttpResponse } from '../../src/client/index.js';
import { Digest, parseRepositoryName } from '../../src/oci/index.js';
import { Readable } from 'node:stream';

const pool = new HttpPool();
after(() => pool.close());

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const fast = { attempts: 4, baseDelay: 10, maxDelay: 2000 };
const repo = parseRepositoryName('a/b');
const digest = Digest.of('x');

describe('retries', () => {
  test('5xx is retried with backoff, then succeeds', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      n++;
      res.writeHead(n < 3 ? 503 : 200).end();
    });
    try {
      const reg = new Registry(s.host, s.host, { pool, retry: fast });
      assert.equal(await reg.hasBlob(repo, digest), true);
      assert.equal(n, 3);
    } finally {
      await s.close();
    }
  });

  test('429 honours Retry-After', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      n++;
      if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.writeHead(404).end();
    });
    try {
      const reg = new Registry(s.host, s.host, { pool, retry: fast });
      const t0 = Date.now();
      assert.equal(await reg.hasBlob(repo, digest), false);
      assert.ok(Date.now() - t0 >= 900, 'waited for Retry-After');
    } finally {
      await s.close();
    }
  });

  test('a HEAD whose connection breaks is retried, and never taken as missing', async () => {
    let n = 0;
    const s = await serve((req, res) => {
      n++;
      if (n <= 2) req.socket.destroy();
      else res.writeHead(200).end();
    });
    try {
      const reg = new Registry(s.host, s.host, { pool, retry: fast });
      assert.equal(await reg.hasBlob(repo, digest), true);
      assert.equal(n, 3);
    } finally {
      await s.close();
    }
    const always = await serve((req) => req.socket.destroy());
    try {
      const reg = new Registry(always.host, always.host, { pool, retry: fast });
      await assert.rejects(reg.hasBlob(repo, digest), (err: Error & { code?: string; retryable?: boolean }) => err.code === 'ERR_NETWORK' && err.retryable === true);
    } finally {
      await always.close();
    }
  });

  test('401 on a HEAD after credentials is an error naming the right, not "missing"', async () => {
    const s = await serve((_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end());
    try {
      const reg = new Registry(s.host, s.host, { pool, retry: fast, credential: async () => ({ username: 'u', password: 'p' }) });
      await assert.rejects(reg.hasBlob(repo, digest, ['pull', 'push']), /not authorized to pull,push/);
    } finally {
      await s.close();
    }
  });
});

describe('auth', () => {
  test('challenges parse with quoted commas', () => {
    const c = parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"');
    assert.deepEqual(c, { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull,push' } });
    assert.deepEqual(mergeScopes(['repository:a:push', 'repository:a:pull', 'repository:b:pull']), ['repository:a:pull,push', 'repository:b:pull']);
  });

  test('tokens are cached per scope and refreshed before they expire', async () => {
    let clock = 1_000_000;
    let issued = 0;
    const send = async (req: HttpRequest): Promise<HttpResponse> => {
      issued++;
      assert.equal(req.url.searchParams.get('service'), 'svc');
      assert.equal(req.headers?.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
      return { status: 200, headers: {}, url: req.url, body: Readable.from([Buffer.from(JSON.stringify({ token: `t${issued}`, expires_in: 60 }))]) };
    };
    const auth = new Authenticator({ host: 'reg:5000', registry: 'reg:5000', credential: async () => ({ username: 'u', password: 'p' }), send, now: () => clock });
    auth.learn('Bearer realm="http://auth/token",service="svc"');
    const seen: string[] = [];
    const layer = auth.layer()(async (req) => {
      seen.push(req.headers?.authorization ?? '');
      return { status: 200, headers: {}, url: req.url, body: Readable.from([]) };
    });
    const req = (): HttpRequest => ({ method: 'GET', url: new URL('http://reg:5000/v2/a/manifests/x'), scopes: ['repository:a:pull'] });
    await layer(req());
    await layer(req());
    assert.equal(issued, 1, 'one token for two requests');
    clock += 50_000; // within the refresh margin of the 60 s expiry
    await layer(req());
    assert.equal(issued, 2, 'refreshed before expiry');
    assert.deepEqual(seen, ['Bearer t1', 'Bearer t1', 'Bearer t2']);
  });
});

describe('credentials', () => {
  test('config.json auths, credHelpers and podman auth.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pier-cred-test-'));
    try {
      const bin = join(dir, 'bin');
      await mkdir(bin);
      // A credential helper that keeps one secret in a file.
      const store = join(dir, 'helper-store.json');
      await writeFile(
        join(bin, 'docker-credential-pier-test'),
        `#!/bin/sh\ncase "$1" in\n  get) read url; if [ -f "${store}" ]; then cat "${store}"; else echo "credentials not found in native keychain"; exit 1; fi;;\n  store) cat > "${store}";;\n  erase) rm -f "${store}";;\nesac\n`,
      );
      await chmod(join(bin, 'docker-credential-pier-test'), 0o755);
      const env = { HOME: dir, DOCKER_CONFIG: join(dir, 'docker'), PATH: `${bin}:${process.env.PATH ?? ''}`, REGISTRY_AUTH_FILE: join(dir, 'auth.json') };
      const creds = new CredentialStore({ env });

      assert.equal(await creds.get('reg.example'), undefined);
      const where = await creds.store('reg.example', { username: 'me', password: 'pw' });
      assert.equal(where.unencrypted, true);
      const config = JSON.parse(await readFile(join(dir, 'docker', 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
      assert.equal(config.auths['reg.example']?.auth, Buffer.from('me:pw').toString('base64'));
      assert.deepEqual(await creds.get('reg.example'), { username: 'me', password: 'pw' });
      assert.equal(await creds.erase('reg.example'), true);
      assert.equal(await creds.get('reg.example'), undefined);

      await writeFile(join(dir, 'docker', 'config.json'), JSON.stringify({ auths: {}, credHelpers: { 'helper.example': 'pier-test' } }));
      const viaHelper = await creds.store('helper.example', { username: 'h', password: 'secret' });
      assert.equal(viaHelper.unencrypted, false);
      assert.deepEqual(await creds.get('helper.example'), { username: 'h', password: 'secret' });
      const saved = await readFile(join(dir, 'docker', 'config.json'), 'utf8');
      assert.ok(!saved.includes('secret'), 'the helper keeps the secret, not config.json');

      await writeFile(join(dir, 'auth.json'), JSON.stringify({ auths: { 'podman.example': { auth: Buffer.from('pod:man').toString('base64') } } }));
      assert.deepEqual(await creds.get('podman.example'), { username: 'pod', password: 'man' });

      await writeFile(join(dir, 'docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') } } }));
      assert.deepEqual(await creds.get('docker.io'), { username: 'hub', password: 'pw' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
