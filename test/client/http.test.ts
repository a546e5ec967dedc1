/**
 * The client's HTTP pool (src/client/http.ts) at its edges: a server that
 * answers before taking the whole body (a proxy's 413), a body that stops
 * short, duplicate response headers, and a bodiless PUT.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { HttpPool } from '../../src/client/http.js';

let server: Server;
let origin: string;
const seen: { method: string; url: string; headers: Record<string, unknown> }[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.url === '/too-large') {
      // Like nginx's client_max_body_size: answer at once, read nothing.
      res.writeHead(413, { 'content-type': 'text/plain' }).end('too large');
      return;
    }
    if (req.url === '/challenges') {
      res.setHeader('www-authenticate', ['Bearer realm="a"', 'Basic realm="b"']);
      res.writeHead(401).end();
      return;
    }
    req.resume();
    req.on('end', () => res.writeHead(201).end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** 64 MiB in 64 KiB chunks, counting what was read from it. */
function bigBody(): { stream: Readable; produced: () => number } {
  let produced = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const stream = new Readable({
    read() {
      if (produced >= 64 * 1024 * 1024) return void this.push(null);
      produced += chunk.length;
      this.push(chunk);
    },
  });
  return { stream, produced: () => produced };
}

describe('HTTP pool', () => {
  test('an answer before the body is taken wins; the upload stops; the pool goes on', async () => {
    const pool = new HttpPool();
    try {
      const { stream, produced } = bigBody();
      const res = await pool.request({ origin, path: '/too-large', method: 'PUT', body: stream });
      assert.equal(res.statusCode, 413);
      const text: Buffer[] = [];
      for await (const c of res.body as AsyncIterable<Buffer>) text.push(c);
      assert.equal(Buffer.concat(text).toString(), 'too large');
      assert.ok(stream.destroyed, 'the source is released');
      assert.ok(produced() < 32 * 1024 * 1024, `stopped early (${produced()} bytes read)`);
      const next = await pool.request({ origin, path: '/fine', method: 'PUT', body: Buffer.from('x') });
      assert.equal(next.statusCode, 201);
      next.body.resume();
    } finally {
      await pool.close();
    }
  });

  test('a body that stops short fails the request instead of leaving it waiting', async () => {
    const pool = new HttpPool({ idleTimeout: 60_000 });
    try {
      const body = new Readable({ read() {} });
      body.push(Buffer.alloc(1000));
      setTimeout(() => body.destroy(), 50);
      await assert.rejects(pool.request({ origin, path: '/fine', method: 'PATCH', headers: { 'content-length': '5000' }, body }));
    } finally {
      await pool.close();
    }
  });

  test('repeated headers stay separate; a bodiless PUT says Content-Length: 0', async () => {
    const pool = new HttpPool();
    try {
      const res = await pool.request({ origin, path: '/challenges', method: 'GET' });
      res.body.resume();
      assert.deepEqual(res.headers['www-authenticate'], ['Bearer realm="a"', 'Basic realm="b"']);
      const put = await pool.request({ origin, path: '/empty', method: 'PUT' });
      put.body.resume();
      assert.equal(put.statusCode, 201);
      const req = seen.find((s) => s.url === '/empty');
      assert.equal(req?.headers['content-length'], '0');
      assert.equal(req?.headers['transfer-encoding'], undefined);
    } finally {
      await pool.close();
    }
  });
});
