/**
 * src/registry/send-stream.ts, the path of S3 blob GETs from `https:`
 * endpoints (the SDK's `IncomingMessage`, copied into 2 MiB writes;
 * decision 0127), over real sockets: an origin HTTP server plays the store's
 * response, a second server sends it on with `sendStream`, a client reads.
 * Checked: bytes exact across buffer boundaries with a slow reader, the
 * origin failing midway cuts the client's connection (a short prefix,
 * never wrong bytes), a client leaving midway destroys the origin's response.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, get, request, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { sendStream } from '../../src/registry/send-stream.js';

const MiB = 1 << 20;
const data = randomBytes(7 * MiB + 321);
let origin: Server;
let front: Server;
let originPort = 0;
let frontPort = 0;
/** When set, the origin destroys its response after this many bytes. */
let cutAt: number | undefined;
let originClosedEarly = 0;
/** The origin sends `data` this many times (more than all the sockets' buffers hold, to see a client leave). */
let repeat = 1;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

before(async () => {
  origin = createServer((_req, res) => {
    const total = data.length * repeat;
    res.writeHead(200, { 'content-length': total });
    const limit = cutAt;
    let offset = 0;
    res.on('close', () => {
      if (!res.writableFinished) originClosedEarly++;
    });
    const go = (): void => {
      while (offset < total) {
        if (limit !== undefined && offset >= limit) {
          res.destroy();
          return;
        }
        const at = offset % data.length;
        const n = Math.min(64 * 1024, data.length - at);
        const ok = res.write(data.subarray(at, at + n));
        offset += n;
        if (!ok) return void res.once('drain', go);
      }
      res.end();
    };
    go();
  });
  front = createServer((_req, res) => {
    get({ host: '127.0.0.1', port: originPort, path: '/' }, (source: IncomingMessage) => {
      const total = Number(source.headers['content-length']);
      res.writeHead(200, { 'content-length': total });
      void sendStream(res, source, total);
    });
  });
  originPort = await listen(origin);
  frontPort = await listen(front);
});

after(async () => {
  origin.closeAllConnections();
  front.closeAllConnections();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
  await new Promise<void>((resolve) => front.close(() => resolve()));
});

/** Reads the whole response, slowly when `slow`; whether it ended short (cut). */
function fetchBody(slow: boolean): Promise<{ body: Buffer; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: frontPort, path: '/' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (slow && chunks.length % 16 === 0) {
          res.pause();
          setTimeout(() => res.resume(), 5);
        }
      });
      const done = (cut: boolean) => resolve({ body: Buffer.concat(chunks), cut });
      res.on('end', () => done(false));
      res.on('error', () => done(true));
      res.on('aborted', () => done(true));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('sendStream (S3 over https: the SDK stream to the client)', { timeout: 60_000 }, () => {
  test('bytes are exact across 2 MiB buffers, with a fast and a slow reader', async () => {
    for (const slow of [false, true]) {
      const { body, cut } = await fetchBody(slow);
      assert.equal(cut, false);
      assert.ok(body.equals(data), `slow=${slow}: ${body.length} bytes`);
    }
  });

  test('the source failing midway cuts the client connection: a short, correct prefix', async () => {
    cutAt = 3 * MiB;
    try {
      const { body, cut } = await fetchBody(false);
      assert.ok(cut, 'the connection was cut');
      assert.ok(body.length < data.length);
      assert.ok(body.equals(data.subarray(0, body.length)));
    } finally {
      cutAt = undefined;
    }
    assert.ok((await fetchBody(false)).body.equals(data), 'the next one is whole');
  });

  test('a client leaving midway destroys the source', async () => {
    const before = originClosedEarly;
    repeat = 16;
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: frontPort, path: '/' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(err)));
      req.end();
    });
    repeat = 1;
    for (let i = 0; i < 100 && originClosedEarly === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(originClosedEarly, before + 1, 'the origin saw its response closed before the end');
  });
});
