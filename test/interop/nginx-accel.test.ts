/**
 * The X-Accel-Redirect mode (`storage.accelRedirect`) behind Debian's real
 * nginx: Pier authorizes each blob GET and answers with an internal path,
 * nginx sends the file (sendfile) and answers Range itself. skopeo and
 * `pier pull` (the built CLI, a child process) pull through nginx and every
 * digest verifies; without the mode the same registry streams the bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeImage, pushImage, type TestImage } from '../helpers/images.js';
import { NGINX, startNginx, type Nginx } from '../helpers/nginx.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { isolatedEnv, runPier, skopeoPullAndVerify } from '../client/harness.js';

const PREFIX = '/_pier_blobs/';

describe('X-Accel-Redirect behind nginx', { skip: existsSync(NGINX) ? false : 'nginx is not installed (scripts/install-deps.sh)', timeout: 180_000 }, () => {
  let reg: TestRegistry;
  let nginx: Nginx;
  let image: TestImage;
  let work: Awaited<ReturnType<typeof isolatedEnv>>;

  before(async () => {
    reg = await startTestRegistry({ storage: { accelRedirect: PREFIX } });
    nginx = await startNginx(reg.host, PREFIX, join(reg.dataDir, 'blobs', 'blobs'));
    work = await isolatedEnv();
    // Layers larger than the registry's own send buffer, pushed through nginx.
    image = await makeImage({ layers: [3 << 20, 100_000], gzip: false });
    await pushImage(`http://${nginx.host}`, 'accel/app', 'v1', image);
  });
  after(async () => {
    await nginx?.stop();
    await reg?.close();
    await work?.cleanup();
  });

  test('Pier answers a blob GET with the internal path and no body', async () => {
    const layer = image.layers[0]!;
    const res = await fetch(`http://${reg.host}/v2/accel/app/blobs/${layer.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-accel-redirect'), `${PREFIX}sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
    const head = await fetch(`http://${reg.host}/v2/accel/app/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(layer.size), 'HEAD is answered by Pier with the size');
    assert.equal(head.headers.get('x-accel-redirect'), null);
  });

  test('through nginx: the whole blob, a Range, and the digest header', async () => {
    const layer = image.layers[0]!;
    const res = await fetch(`http://${nginx.host}/v2/accel/app/blobs/${layer.digest}`);
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body.length, layer.size);
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, layer.digest);
    assert.equal(res.headers.get('docker-content-digest'), layer.digest);
    assert.equal(res.headers.get('x-accel-redirect'), null, 'nginx does not leak the internal path');
    const part = await fetch(`http://${nginx.host}/v2/accel/app/blobs/${layer.digest}`, { headers: { range: 'bytes=1048570-2097160' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1048570-2097160/${layer.size}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), layer.data.subarray(1048570, 2097161));
  });

  test('nginx refuses what Pier refuses, and the internal location from outside', async () => {
    const other = await makeImage({ layers: [1000] });
    await pushImage(`http://${reg.host}`, 'accel/other', 'v1', other);
    // Linked in accel/other only: knowing the digest grants nothing in accel/app.
    const unlinked = await fetch(`http://${nginx.host}/v2/accel/app/blobs/${other.layers[0]!.digest}`);
    assert.equal(unlinked.status, 404);
    assert.equal(((await unlinked.json()) as { errors: { code: string }[] }).errors[0]?.code, 'BLOB_UNKNOWN');
    const layer = image.layers[0]!;
    const direct = await fetch(`http://${nginx.host}${PREFIX}sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`);
    assert.equal(direct.status, 404, 'the internal location is not reachable from outside');
    await direct.arrayBuffer();
  });

  test('skopeo pulls through nginx and every digest verifies', async () => {
    const blobs = await skopeoPullAndVerify(`${nginx.host}/accel/app:v1`, image.digest);
    for (const l of image.layers) assert.ok(blobs.includes(l.digest), `skopeo fetched ${l.digest}`);
  });

  test('pier pull through nginx writes an OCI layout whose blobs hash to their names', async () => {
    const dir = join(work.dir, 'layout');
    const r = await runPier(['pull', `${nginx.host}/accel/app:v1`, `oci:${dir}`], { env: work.env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const names = await readdir(join(dir, 'blobs', 'sha256'));
    for (const l of image.layers) assert.ok(names.includes(l.digest.slice(7)));
    for (const name of names) {
      assert.equal(createHash('sha256').update(await readFile(join(dir, 'blobs', 'sha256', name))).digest('hex'), name);
    }
  });
});
