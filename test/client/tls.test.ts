/**
 * TLS in the client's HTTP pool: a registry with a certificate from a
 * private CA is trusted with `caFiles` (`--ca-file`) or `SSL_CERT_FILE`, in
 * addition to Node's own roots, and refused with a clear network error
 * without them. A whole `pier push --ca-file` goes over HTTPS to Pier.
 * (Loopback names are reached over plain HTTP by default, like docker; the
 * tests ask for HTTPS with `insecure: false`, and the CLI test names the
 * registry by an IPv4-mapped IPv6 address, which is not a loopback name.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClientError } from '../../src/client/errors.js';
import { HttpPool } from '../../src/client/http.js';
import { Registry } from '../../src/client/registry.js';
import { Digest, parseRepositoryName } from '../../src/oci/index.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { isolatedEnv, runPier } from './harness.js';
import { generateLayers, writeOciLayout } from './image-files.js';

let dir: string;
let registry: TestRegistry;
let caFile: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

before(async () => {
  dir = await tempDir();
  caFile = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', caFile, '-days', '2', '-subj', '/CN=pier-test-ca']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,IP:::ffff:127.0.0.1,DNS:localhost\n');
  openssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', caFile, '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '2', '-extfile', join(dir, 'ext.cnf')]);
  registry = await startTestRegistry({ tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') } });
});
after(async () => {
  await registry?.close();
});

const repo = parseRepositoryName('tls/check');
const missing = Digest.of(Buffer.from('not there'));

describe('client TLS', () => {
  test('a private CA is trusted through caFiles and SSL_CERT_FILE, added to the default roots', async () => {
    assert.match(registry.url, /^https:/);
    for (const pool of [new HttpPool({ caFiles: [caFile], env: {} }), new HttpPool({ env: { SSL_CERT_FILE: caFile } })]) {
      try {
        const reg = new Registry(registry.host, registry.host, { pool, insecure: false });
        assert.equal(await reg.hasBlob(repo, missing), false);
      } finally {
        await pool.close();
      }
    }
  });

  test('without the CA the certificate is refused with a network error naming the request', async () => {
    const pool = new HttpPool({ env: {} });
    try {
      const reg = new Registry(registry.host, registry.host, { pool, insecure: false, retry: { attempts: 1, baseDelay: 1, maxDelay: 1 } });
      await assert.rejects(reg.hasBlob(repo, missing), (err: unknown) => {
        assert.ok(err instanceof ClientError);
        assert.equal(err.code, 'ERR_NETWORK');
        assert.match(err.message, /HEAD .*blobs/);
        assert.match(err.message, /CERT|certificate|SELF_SIGNED|UNABLE/i);
        return true;
      });
    } finally {
      await pool.close();
    }
  });

  test('pier push --ca-file pushes over HTTPS', async () => {
    const work = await isolatedEnv();
    try {
      const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 200_000 }]);
      const image = await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1' });
      const port = registry.host.split(':')[1];
      const dest = `[::ffff:127.0.0.1]:${port}/tls/cli:v1`;
      const refused = await runPier(['push', '--quiet', `oci:${join(work.dir, 'layout')}:v1`, dest], { env: work.env });
      assert.notEqual(refused.code, 0);
      assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
      const missing = await runPier(['push', '--quiet', '--ca-file', join(work.dir, 'no-such-ca.pem'), `oci:${join(work.dir, 'layout')}:v1`, dest], { env: work.env });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^pier push: cannot read the CA certificates in .*no-such-ca\.pem.*ENOENT/);
      assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
      const ok = await runPier(['push', '--quiet', '--ca-file', caFile, `oci:${join(work.dir, 'layout')}:v1`, dest], { env: work.env });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), image.manifestDigest);
    } finally {
      await work.cleanup();
    }
  });
});
