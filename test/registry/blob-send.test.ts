/**
 * Blob GET from the fs store goes through src/registry/send-file.ts (one
 * reused 2 MiB buffer, decision 0105): bodies and ranges that span several
 * buffers are byte-exact, an empty blob is an empty body, a client that
 * leaves midway does not disturb the next downloads (their buffer comes
 * from the same pool), and the access metrics still count the bytes sent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
const MiB = 1 << 20;
const data = randomBytes(5 * MiB + 123);
const digest = sha256(data);
const url = (p: string) => `${reg.url}${p}`;

before(async () => {
  reg = await startTestRegistry();
  for (const [d, body] of [[digest, data], [sha256(Buffer.alloc(0)), Buffer.alloc(0)]] as const) {
    const res = await fetch(url(`/v2/send/blob/blobs/uploads/?digest=${d}`), { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 201, await res.text());
  }
});
after(async () => {
  await reg.close();
});

describe('blob GET from files', { timeout: 60_000 }, () => {
  test('a body of several buffers is byte-exact, with the headers', async () => {
    const res = await fetch(url(`/v2/send/blob/blobs/${digest}`));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(data.length));
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
  });

  test('ranges across buffer boundaries, and the last byte', async () => {
    for (const [start, end] of [[2 * MiB - 7, 4 * MiB + 9], [0, 2 * MiB], [data.length - 1, data.length - 1]] as const) {
      const res = await fetch(url(`/v2/send/blob/blobs/${digest}`), { headers: { range: `bytes=${start}-${end}` } });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
  });

  test('an empty blob is an empty body', async () => {
    const res = await fetch(url(`/v2/send/blob/blobs/${sha256(Buffer.alloc(0))}`));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), '0');
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('a client that leaves midway does not disturb the downloads after it', async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request(url(`/v2/send/blob/blobs/${digest}`), (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
        req.end();
      });
    }
    const all = await Promise.all([0, 1, 2].map(async () => Buffer.from(await (await fetch(url(`/v2/send/blob/blobs/${digest}`))).arrayBuffer())));
    for (const body of all) assert.ok(body.equals(data));
    const metrics = await (await fetch(url('/metrics'))).text();
    const sent = /^pier_http_sent_bytes_total (\d+)/m.exec(metrics);
    assert.ok(sent, 'a bytes-sent counter');
    assert.ok(Number(sent[1]) >= 4 * data.length, `bytes sent ${sent[1]}`);
  });
});
