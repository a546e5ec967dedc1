/**
 * The transport layers and credentials, against small fake servers:
 * retries (5xx, broken connections), 429 waited for only when Retry-After
 * is short, refusal messages, HTTPS first with the plain-HTTP hint and
 * fall back, HEAD never taken as "missing" when it failed, token caching and refresh, challenge parsing,
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

  test('a 429 with a short Retry-After is waited for once, and the caller told first', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      n++;
      if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.writeHead(404).end();
    });
    try {
      const waits: { seconds: number; status: number }[] = [];
      const reg = new Registry(s.host, s.host, { pool, retry: fast, onWait: (i) => waits.push({ seconds: i.seconds, status: i.status }) });
      assert.equal(await reg.hasBlob(repo, digest), false);
      assert.deepEqual(waits, [{ seconds: 1, status: 429 }]);
      assert.equal(n, 2);
    } finally {
      await s.close();
    }
  });

  test('a 429 with a long or no Retry-After is reported at once, with what the registry said', async () => {
    for (const [headers, when] of [[{ 'retry-after': '60' }, 'retry after 60 s'], [{}, 'no Retry-After given']] as const) {
      let n = 0;
      const s = await serve((_req, res) => {
        n++;
        res.writeHead(429, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      });
      try {
        const waits: number[] = [];
        const reg = new Registry(s.host, s.host, { pool, retry: fast, onWait: (i) => waits.push(i.seconds) });
        await assert.rejects(reg.getManifest(repo, 'v1'), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ERR_TOO_MANY_REQUESTS');
          assert.equal(err.message, `fetching manifest v1: ${s.host}: too many requests (HTTP 429, ${when}): slow down`);
          return true;
        });
        assert.equal(n, 1, 'not retried');
        assert.deepEqual(waits, []);
      } finally {
        await s.close();
      }
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

  test('refusals say what the registry reported, never a guessed right', async () => {
    const answers: Record<string, (res: ServerResponse) => void> = {
      basic: (res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end(),
      scope: (res) =>
        res
          .writeHead(401, { 'www-authenticate': 'Basic realm="x",error="insufficient_scope"', 'content-type': 'application/json' })
          .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'the token does not grant this access' }] })),
      denied: (res) => res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'tag v1 is immutable' }] })),
      bare: (res) => res.writeHead(403).end(),
    };
    let current = 'basic';
    const s = await serve((_req, res) => answers[current]!(res));
    try {
      const withPassword = new Registry(s.host, s.host, { pool, retry: fast, credential: async () => ({ username: 'u', password: 'p' }) });
      const nobody = new Registry(s.host, s.host, { pool, retry: fast });
      const expect = async (reg: Registry, answer: string, message: string) => {
        current = answer;
        await assert.rejects(reg.getManifest(repo, 'v1', ['pull', 'push']), (err: Error) => {
          assert.equal(err.message, message);
          return true;
        });
      };
      const what = `fetching manifest v1: ${s.host}/a/b`;
      await expect(withPassword, 'basic', `wrong user name or password for ${s.host}`);
      await expect(nobody, 'basic', `${what}: authentication required; run 'pier login ${s.host}'`);
      await expect(withPassword, 'scope', `${what}: not authorized to pull,push: the token does not grant this access`);
      await expect(withPassword, 'denied', `${what}: denied: tag v1 is immutable`);
      await expect(withPassword, 'bare', `${what}: denied: HTTP 403`);
    } finally {
      await s.close();
    }
  });

  test('a non-loopback-like host answering HTTP to HTTPS: one attempt, the hint; insecure falls back', async () => {
    let connections = 0;
    const s = await serve((_req, res) => res.writeHead(404).end());
    s.server.on('connection', () => connections++);
    try {
      const strict = new Registry(s.host, s.host, { pool, retry: fast, insecure: false });
      await assert.rejects(strict.hasBlob(repo, digest), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_TLS');
        assert.equal(err.message, `${s.host}: the server answered HTTP to an HTTPS request; add --insecure if you trust the network`);
        return true;
      });
      assert.equal(connections, 1, 'not retried');
      const insecure = new Registry(s.host, s.host, { pool, retry: fast, insecure: true });
      assert.deepEqual(await Promise.all([insecure.hasBlob(repo, digest), insecure.hasBlob(repo, digest), insecure.hasBlob(repo, digest)]), [false, false, false]);
      assert.ok(connections <= 5, `one TLS attempt, then plain HTTP (${connections - 1} connections)`);
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
