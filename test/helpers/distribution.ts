/**
 * Starts Debian's CNCF distribution 2.8 (`docker-registry`) on 127.0.0.1 with
 * an ephemeral port in a temp dir, for interop tests and benchmarks:
 *
 *     const reg = await startDistribution({ auth: 'token', users: { alice: 'pw' } });
 *     ... push to reg.host ...
 *     await reg.stop();
 *
 * auth: 'none' (default), 'htpasswd' (basic auth; users hashed with
 * `htpasswd -B`), or 'token' (Docker token auth, with a token issuer run in
 * this process: a self-signed certificate made with openssl, RS256 JWTs
 * signed with jose carrying the certificate in `x5c`).
 *
 * The issuer answers GET (Basic auth) and the OAuth2 POST form
 * (grant_type=password, or refresh_token where the refresh token is
 * `user:password`, for tests of identity tokens).
 *
 * Token issuer policy: a known user with the right password gets every
 * action asked for, except users listed in `readOnly` (pull only);
 * anonymous requests get `pull` when `anonymousPull`, else nothing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';

export interface DistributionOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  users?: Record<string, string>;
  readOnly?: string[];
  anonymousPull?: boolean;
  /** Token lifetime in seconds (default 300). */
  tokenTtl?: number;
  /** Extra YAML lines under the top level (e.g. a `proxy` section). */
}

export interface TokenIssuer {
  url: string;
  /** Every token request: account ('' when anonymous) and scopes asked. */
  requests: { account: string; scopes: string[] }[];
}

export interface Distribution {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  dataDir: string;
  tokenIssuer?: TokenIssuer;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string, child: ChildProcess, log: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${readFileSync(log, 'utf8').slice(-2000)}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`docker-registry did not start: ${readFileSync(log, 'utf8').slice(-2000)}`);
}

async function startIssuer(dir: string, options: DistributionOptions, service: string, issuer: string): Promise<{ server: Server; issuer: TokenIssuer; certPath: string }> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=pier-test-token-issuer'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyPath));
  const certDer = new X509Certificate(readFileSync(certPath)).raw.toString('base64');
  const users = options.users ?? {};
  const readOnly = new Set(options.readOnly ?? []);
  const ttl = options.tokenTtl ?? 300;
  const requests: TokenIssuer['requests'] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let params = url.searchParams;
      let user: string | undefined;
      let password: string | undefined;
      if (req.method === 'POST') {
        // OAuth2 form (containerd, docker with identity tokens): grant_type=password|refresh_token.
        const chunks: Buffer[] = [];
        for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
        params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        if (params.get('grant_type') === 'password') {
          user = params.get('username') ?? '';
          password = params.get('password') ?? '';
        } else if (params.get('grant_type') === 'refresh_token') {
          const [u, ...p] = (params.get('refresh_token') ?? '').split(':');
          user = u;
          password = p.join(':');
        }
      }
      const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      let account = '';
      const authz = req.headers.authorization;
      if (user === undefined && authz?.startsWith('Basic ')) {
        const [u, ...p] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
        user = u;
        password = p.join(':');
      }
      if (user !== undefined) {
        if (users[user] === undefined || users[user] !== password) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid credentials"}');
          return;
        }
        account = user;
      }
      requests.push({ account, scopes });
      const access = scopes.flatMap((s) => {
        const parts = s.split(':');
        if (parts.length < 3) return [];
        const actions = parts.pop()!.split(',');
        const type = parts.shift()!;
        const name = parts.join(':');
        let granted: string[];
        if (account) granted = readOnly.has(account) ? actions.filter((a) => a === 'pull') : actions;
        else granted = options.anonymousPull ? actions.filter((a) => a === 'pull') : [];
        return granted.length ? [{ type, name, actions: granted }] : [];
      });
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ access })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', x5c: [certDer] })
        .setIssuer(issuer)
        .setSubject(account)
        .setAudience(service)
        .setIssuedAt(now)
        .setNotBefore(now - 5)
        .setExpirationTime(now + ttl)
        .setJti(randomUUID())
        .sign(key);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() }));
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, certPath, issuer: { url: `http://127.0.0.1:${port}/token`, requests } };
}

export async function startDistribution(options: DistributionOptions = {}): Promise<Distribution> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-distribution-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log: {level: warn, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${dataDir}}, delete: {enabled: true}}`,
    `http: {addr: ${host}, secret: pier-test-secret}`,
  ];
  let issuerServer: Server | undefined;
  let tokenIssuer: TokenIssuer | undefined;
  if (options.auth === 'htpasswd') {
    const file = join(dir, 'htpasswd');
    writeFileSync(file, '');
    for (const [u, p] of Object.entries(options.users ?? {})) execFileSync('htpasswd', ['-Bb', file, u, p], { stdio: 'ignore' });
    lines.push(`auth: {htpasswd: {realm: pier-test, path: ${file}}}`);
  } else if (options.auth === 'token') {
    const service = 'pier-test-registry';
    const issuer = 'pier-test-issuer';
    const started = await startIssuer(dir, options, service, issuer);
    issuerServer = started.server;
    tokenIssuer = started.issuer;
    lines.push(`auth: {token: {realm: "${started.issuer.url}", service: ${service}, issuer: ${issuer}, rootcertbundle: ${started.certPath}}}`);
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  const log = join(dir, 'registry.log');
  const { openSync } = await import('node:fs');
  const fd = openSync(log, 'a');
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd], detached: true });
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 3000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (issuerServer) await new Promise<void>((r) => issuerServer.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`http://${host}/v2/`, child, log);
  } catch (err) {
    await stop();
    throw err;
  }
  const result: Distribution = { url: `http://${host}`, host, dataDir, stop };
  if (tokenIssuer) result.tokenIssuer = tokenIssuer;
  return result;
}
