/**
 * Connection limits on a real `pier serve` with a 1,024 file-descriptor
 * limit (prlimit): 2,000 held connections (1,000 silent, 1,000 sending
 * their header a few bytes at a time) do not keep a normal client out
 * (served within 2 s, by shedding the oldest waiting connections, not by
 * waiting for timeouts), and every held connection is closed within the
 * configured header timeout. A stalled upload body and an idle keep-alive
 * connection are closed within their timeouts too. Loopback only.
 */
import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import net from 'node:net';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { hasCommand } from '../helpers/tools.js';

const HELD = 2000;
const HEADER_TIMEOUT = 5;
const IDLE_TIMEOUT = 3;
const BODY_TIMEOUT = 2;
/** The guard sweeps at most every second; allow that and scheduling. */
const SLACK_MS = 1500;

let registry: SpawnedRegistry | undefined;
let dataDir = '';
let port = 0;
const sockets: net.Socket[] = [];

before(async () => {
  if (!(await hasCommand('prlimit'))) return;
  dataDir = await tempDir('pier-conn-');
  registry = await spawnTestRegistry({
    dataDir,
    wrap: ['prlimit', '--nofile=1024:1024'],
    env: {
      PIER_LOG_LEVEL: 'info',
      PIER_CONNECTIONS_HEADER_TIMEOUT: String(HEADER_TIMEOUT),
      PIER_CONNECTIONS_IDLE_TIMEOUT: String(IDLE_TIMEOUT),
      PIER_CONNECTIONS_BODY_TIMEOUT: String(BODY_TIMEOUT),
      PIER_CONNECTIONS_MIN_BODY_RATE: '1024',
    },
  });
  port = Number(new URL(registry.url).port);
});

after(async () => {
  for (const s of sockets) s.destroy();
  await registry?.kill();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

interface Held {
  socket: net.Socket;
  openedAt: number;
  closedAt: number | undefined;
}

/** Opens a connection; resolves once connected (or closed). */
function hold(): Promise<Held> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    const h: Held = { socket, openedAt: 0, closedAt: undefined };
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('close', () => {
      h.closedAt = Date.now();
      resolve(h);
    });
    socket.once('connect', () => {
      h.openedAt = Date.now();
      resolve(h);
    });
  });
}

/** One request on a fresh connection; resolves with the status and how long it took. */
function normalRequest(path = '/v2/'): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${registry?.url ?? ''}/metrics`)).text();
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test('2,000 silent and slow-header connections do not keep a normal client out, and are closed on time', async (t) => {
  if (!registry) return t.skip('prlimit is not installed');
  const held: Held[] = [];
  // Half silent, half trickling a header that never completes; in batches, so the accept backlog keeps up.
  for (let i = 0; i < HELD; i += 100) {
    held.push(...(await Promise.all(Array.from({ length: 100 }, () => hold()))));
  }
  const slow = held.filter((_, i) => i % 2 === 1 && held[i]?.closedAt === undefined);
  for (const h of slow) h.socket.write('GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const trickle = setInterval(() => {
    for (const h of slow) if (h.closedAt === undefined) h.socket.write('X');
  }, 500);
  try {
    const openNow = held.filter((h) => h.closedAt === undefined).length;
    assert.ok(openNow >= 900, `the server is at its limit with held connections (${openNow} open)`);
    const served: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await normalRequest();
      assert.equal(r.status, 200);
      assert.ok(r.ms < 2000, `a normal client waited ${r.ms} ms`);
      served.push(r.ms);
    }
    const stillHeld = held.filter((h) => h.closedAt === undefined).length;
    const opened = held.filter((h) => h.openedAt > 0).map((h) => h.openedAt);
    const oldest = Math.min(...opened);
    const youngest = Math.max(...opened);
    assert.ok(Date.now() - oldest < HEADER_TIMEOUT * 1000, 'served before any header timeout could have made room');

    // Every held connection is closed within the header timeout.
    const deadline = youngest + HEADER_TIMEOUT * 1000 + SLACK_MS + 1000;
    while (held.some((h) => h.closedAt === undefined) && Date.now() < deadline) await sleep(100);
    const late = held.filter((h) => h.closedAt === undefined || (h.openedAt > 0 && h.closedAt - h.openedAt > HEADER_TIMEOUT * 1000 + SLACK_MS));
    assert.equal(late.length, 0, `${late.length} held connections outlived the header timeout`);
    const shed = await metric('pier_connections_closed_total', 'reason="shed"');
    const timedOut = await metric('pier_connections_closed_total', 'reason="header_timeout"');
    assert.ok(shed > 0, 'connections were shed');
    console.log(
      `connections: ${HELD} held (fd limit 1024), ${openNow} open at the limit, ${stillHeld} still held after 5 normal requests; ` +
        `served in ${served.join('/')} ms; closed: ${shed} shed, ${timedOut} header timeout`,
    );
  } finally {
    clearInterval(trickle);
  }
});

test('a stalled upload body and an idle keep-alive connection are closed within their timeouts', async (t) => {
  if (!registry) return t.skip('prlimit is not installed');
  // Stalled body: the header says 1 MiB, 100 bytes come, then nothing.
  const stalled = await hold();
  stalled.socket.write(
    `POST /v2/conn/stall/blobs/uploads/?digest=sha256:${'0'.repeat(64)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n` + 'x'.repeat(100),
  );
  // Idle keep-alive: one request, then silence.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let idleClosedAt: number | undefined;
  let idleSince = 0;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v2/', agent }, (res) => {
      res.resume();
      res.on('end', () => {
        idleSince = Date.now();
        resolve();
      });
    });
    req.on('socket', (s) => s.once('close', () => (idleClosedAt = Date.now())));
    req.on('error', reject);
    req.end();
  });
  try {
    const deadline = Date.now() + 2 * BODY_TIMEOUT * 1000 + IDLE_TIMEOUT * 1000 + SLACK_MS;
    while ((stalled.closedAt === undefined || idleClosedAt === undefined) && Date.now() < deadline) await sleep(100);
    assert.ok(stalled.closedAt !== undefined, 'the stalled upload was cut off');
    // The first full window that sees too few bytes ends it: at most two windows after the request began.
    assert.ok(stalled.closedAt - stalled.openedAt <= 2 * BODY_TIMEOUT * 1000 + SLACK_MS, `stalled upload closed after ${stalled.closedAt - stalled.openedAt} ms`);
    assert.ok(idleClosedAt !== undefined, 'the idle keep-alive connection was closed');
    assert.ok(idleClosedAt - idleSince <= IDLE_TIMEOUT * 1000 + SLACK_MS, `idle connection closed after ${idleClosedAt - idleSince} ms`);
    assert.ok((await metric('pier_connections_closed_total', 'reason="body_rate"')) >= 1);
  } finally {
    agent.destroy();
  }
});
