/**
 * Transport like docker's (issue 10 item 4), with the built `pier` as users
 * run it against a real `pier serve`:
 *
 * - HTTPS first for every host, loopback included: a loopback registry
 *   with a certificate from a private CA (made here with openssl) takes
 *   login, push, inspect and copy with `--ca-file` or `SSL_CERT_FILE`, and
 *   named `https://HOST` too; skopeo pulls what was pushed.
 * - Without the CA: one line saying the certificate is not trusted and how
 *   to trust it; never a fall back to plain HTTP.
 * - A plain-HTTP loopback registry is reached by falling back to HTTP.
 * - A plain-HTTP registry on a NON-loopback address (a network namespace
 *   made here, see netns.ts) gives the one-line hint about `--insecure`,
 *   with no retry; with `--insecure` or PIER_INSECURE_REGISTRIES it works.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClientError, TlsError } from '../../src/client/errors.js';
import { HttpPool } from '../../src/client/http.js';
import { Registry } from '../../src/client/registry.js';
import { Digest, parseRepositoryName } from '../../src/oci/index.js';
import { isolatedEnv, runPier, skopeoPullAndVerify } from './harness.js';
import { generateLayers, writeOciLayout } from './image-files.js';
import { createNamespace, type TestNamespace } from './netns.js';
import { servePier, type ServedPier } from './served.js';

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let caFile: string;
let certDir: string;
let tlsPier: ServedPier;
let layout: string;
let manifestDigest: string;

const USER = 'tls-user';
const PASSWORD = 'tls-password-1';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

before(async () => {
  work = await isolatedEnv();
  const dir = join(work.dir, 'pki');
  await mkdir(dir);
  caFile = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', caFile, '-days', '2', '-subj', '/CN=pier-test-ca']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', caFile, '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '2', '-extfile', join(dir, 'ext.cnf')]);
  // skopeo's --cert-dir takes CA certificates named *.crt.
  certDir = join(dir, 'certs.d');
  await mkdir(certDir);
  await writeFile(join(certDir, 'ca.crt'), await readFile(caFile));
  tlsPier = await servePier({ tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') }, users: [{ name: USER, password: PASSWORD, admin: true }] });
  const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 200_000 }, { size: 50_000 }]);
  layout = join(work.dir, 'layout');
  manifestDigest = (await writeOciLayout(layout, layers, { tag: 'v1' })).manifestDigest;
});
after(async () => {
  await tlsPier?.stop();
  await work?.cleanup();
});

const repo = parseRepositoryName('tls/check');
const missing = Digest.of(Buffer.from('not there'));

describe('HTTPS to a loopback registry with a private CA', () => {
  test('the library trusts the CA through caFiles and SSL_CERT_FILE, added to the default roots', async () => {
    assert.match(tlsPier.url, /^https:\/\/127\.0\.0\.1:/);
    for (const pool of [new HttpPool({ caFiles: [caFile], env: {} }), new HttpPool({ env: { SSL_CERT_FILE: caFile } })]) {
      try {
        const reg = new Registry(tlsPier.host, tlsPier.host, { pool });
        // No users may pull anonymously: a 401 answered over TLS is what shows the handshake worked.
        await assert.rejects(reg.hasBlob(repo, missing), (err: unknown) => err instanceof ClientError && err.status === 401);
      } finally {
        await pool.close();
      }
    }
  });

  test('without the CA: an untrusted certificate, not retried, never a fall back to HTTP', async () => {
    const pool = new HttpPool({ env: {} });
    const retries: string[] = [];
    try {
      const reg = new Registry(tlsPier.host, tlsPier.host, { pool, onRetry: (i) => retries.push(i.reason) });
      await assert.rejects(reg.hasBlob(repo, missing), (err: unknown) => {
        assert.ok(err instanceof TlsError, String(err));
        assert.equal(err.failure, 'certificate');
        assert.equal(err.message, `${tlsPier.host}: the server's TLS certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE); give its CA with --ca-file FILE or SSL_CERT_FILE`);
        return true;
      });
      assert.deepEqual(retries, []);
    } finally {
      await pool.close();
    }
  });

  test('pier login, push, inspect and copy over HTTPS; skopeo pulls the image', async () => {
    const env = work.env;
    const denied = await runPier(['push', '--quiet', `oci:${layout}:v1`, `${tlsPier.host}/tls/app:v1`], { env });
    assert.equal(denied.code, 1);
    assert.equal(denied.stderr, `pier push: ${tlsPier.host}: the server's TLS certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE); give its CA with --ca-file FILE or SSL_CERT_FILE\n`);

    const missingCa = await runPier(['push', '--quiet', '--ca-file', join(work.dir, 'no-such-ca.pem'), `oci:${layout}:v1`, `${tlsPier.host}/tls/app:v1`], { env });
    assert.equal(missingCa.code, 1);
    assert.match(missingCa.stderr, /^pier push: cannot read the CA certificates in .*no-such-ca\.pem.*ENOENT/);
    assert.equal(missingCa.stderr.trim().split('\n').length, 1, missingCa.stderr);

    const login = await runPier(['login', '--ca-file', caFile, '-u', USER, '--password-stdin', `https://${tlsPier.host}`], { env, stdin: `${PASSWORD}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(login.stdout, 'Login Succeeded\n');

    const push = await runPier(['push', '--quiet', '--ca-file', caFile, `oci:${layout}:v1`, `${tlsPier.host}/tls/app:v1`], { env });
    assert.equal(push.code, 0, push.stderr);
    assert.equal(push.stdout.trim(), manifestDigest);

    // SSL_CERT_FILE instead of --ca-file: read back, and copied registry to registry.
    const withEnv = { ...env, SSL_CERT_FILE: caFile };
    const inspect = await runPier(['inspect', '--format', 'json', `${tlsPier.host}/tls/app:v1`], { env: withEnv });
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { digest: string }).digest, manifestDigest);
    const copy = await runPier(['copy', '--quiet', `${tlsPier.host}/tls/app:v1`, `${tlsPier.host}/tls/copied:v1`], { env: withEnv });
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(copy.stdout.trim(), manifestDigest);

    const pulled = await skopeoPullAndVerify(`${tlsPier.host}/tls/copied:v1`, manifestDigest, `${USER}:${PASSWORD}`, certDir);
    assert.equal(pulled.length, 4, 'manifest, config and two layers');

    // pier pull over HTTPS into an OCI layout: the same manifest, every blob verified on the way.
    const out = join(work.dir, 'pulled-over-tls');
    const pull = await runPier(['pull', '--quiet', '--ca-file', caFile, `${tlsPier.host}/tls/app:v1`, `oci:${out}:v1`], { env });
    assert.equal(pull.code, 0, pull.stderr);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest), [manifestDigest]);
  });
});

describe('plain HTTP', () => {
  let ns: TestNamespace | undefined;
  let outside: ServedPier | undefined;
  let loopback: ServedPier | undefined;

  before(async () => {
    loopback = await servePier();
    ns = createNamespace();
    outside = await servePier({ prefix: ns.exec, listen: `${ns.address}:0`, env: { PIER_AUTH_INSECURE_OPEN: 'true' } });
  });
  after(async () => {
    await outside?.stop();
    ns?.destroy();
    await loopback?.stop();
  });

  test('a loopback registry that does not speak TLS is reached by falling back to HTTP', async () => {
    const push = await runPier(['push', '--quiet', `oci:${layout}:v1`, `${loopback!.host}/plain/app:v1`], { env: work.env });
    assert.equal(push.code, 0, push.stderr);
    assert.equal(push.stdout.trim(), manifestDigest);
  });

  test('a non-loopback address answering HTTP to HTTPS: one line with the hint, no retry; --insecure works', async () => {
    assert.match(outside!.url, /^http:\/\/10\./);
    const dest = `${outside!.host}/plain/app:v1`;
    const refused = await runPier(['push', '--format', 'json', `oci:${layout}:v1`, dest], { env: work.env, timeoutMs: 60_000 });
    const line = `${outside!.host}: the server answered HTTP to an HTTPS request; add --insecure if you trust the network`;
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, `pier push: ${line}\n`);
    assert.deepEqual(refused.events.filter((e) => e.type === 'retry'), [], 'TLS protocol errors are not retried');
    assert.deepEqual(refused.events.at(-1), { type: 'error', command: 'push', code: 'ERR_TLS', message: line, exitCode: 1 });

    const insecure = await runPier(['push', '--quiet', '--insecure', `oci:${layout}:v1`, dest], { env: work.env });
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.equal(insecure.stdout.trim(), manifestDigest);
    const listed = await runPier(['push', '--quiet', `oci:${layout}:v1`, `${outside!.host}/plain/listed:v1`], { env: { ...work.env, PIER_INSECURE_REGISTRIES: `other.example:5000, ${outside!.host}` } });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout.trim(), manifestDigest);
  });
});
