/**
 * Webhooks from a durable queue: a receiver in the test gets every event
 * exactly once, in order per tag, with a valid HMAC signature, although it
 * answers 503 for a while, is then down altogether, and Pier restarts (a
 * separate process, stopped with SIGTERM) while events are still queued.
 * `pier webhook test` sends a sample; the delivery log shows the retries.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeImage, pushImage } from '../helpers/images.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { cliIo } from './helpers.js';

const SECRET = 'webhook-secret-for-tests';

interface Received {
  id: string;
  type: string;
  repository: string;
  tag: string;
  digest: string | null;
  previousDigest: string | null;
  actor: string;
}

/** An HTTP receiver that can answer 503 or stop listening, on a fixed port. */
class Receiver {
  readonly events: Received[] = [];
  readonly badSignatures: string[] = [];
  mode: 'ok' | 'unavailable' = 'ok';
  private server: http.Server | undefined;
  port = 0;

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.mode === 'unavailable') {
          res.writeHead(503).end();
          return;
        }
        const body = Buffer.concat(chunks);
        const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
        const got = Buffer.from(String(req.headers['x-pier-signature-256'] ?? ''));
        const event = JSON.parse(body.toString('utf8')) as Received;
        if (got.length !== expected.length || !timingSafeEqual(got, expected)) this.badSignatures.push(event.id);
        assert.equal(req.headers['x-pier-delivery'], event.id);
        assert.equal(req.headers['x-pier-event'], event.type);
        this.events.push(event);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

let work: string;
let receiver: Receiver;
let pier: SpawnedRegistry | undefined;

before(async () => {
  work = await tempDir('pier-webhooks-');
  receiver = new Receiver();
  await receiver.start();
});

after(async () => {
  await pier?.kill();
  await receiver.stop();
  await rm(work, { recursive: true, force: true });
});

async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('webhooks', { timeout: 180_000 }, () => {
  test('every event exactly once, in order per tag, across receiver downtime and a Pier restart', async () => {
    const dataDir = path.join(work, 'data');
    const config = path.join(work, 'pier.yaml');
    await writeFile(
      config,
      [
        'gc: {schedule: 0}',
        'webhooks:',
        '  maxAttempts: 10000',
        '  backoffMax: 0.3s',
        '  timeout: 2s',
        '  endpoints:',
        '    - name: ci',
        `      url: http://127.0.0.1:${receiver.port}/hook`,
        `      secret: ${SECRET}`,
        '      repository: "hooks/**"',
        '    - name: deletes-only',
        `      url: http://127.0.0.1:${receiver.port}/deletes`,
        '      events: [delete]',
        '      repository: "nowhere/**"',
        '',
      ].join('\n'),
    );
    const start = () => spawnTestRegistry({ dataDir, args: ['--config', config] });
    pier = await start();
    const expected: { repository: string; tag: string; type: string; digest: string | null }[] = [];
    const pushTo = async (repository: string, tag: string, type: 'push' | 'tag_move') => {
      const image = await makeImage({ layers: [200] });
      await pushImage(pier!.url, repository, tag, image);
      expected.push({ repository, tag, type, digest: image.digest });
      return image;
    };

    // Receiver up.
    const one = await pushTo('hooks/one', 'latest', 'push');
    await pushTo('hooks/one', 'latest', 'tag_move');
    await pushImage(pier.url, 'other/repo', 'latest', await makeImage()); // filtered out by the repository pattern
    await waitFor('the first two events', () => receiver.events.length === 2);

    // Receiver answers 503: events queue up and are retried.
    receiver.mode = 'unavailable';
    await pushTo('hooks/two', 'v1', 'push');
    await pushTo('hooks/one', 'latest', 'tag_move');
    const del = await fetch(`${pier.url}/v2/hooks/two/manifests/v1`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    expected.push({ repository: 'hooks/two', tag: 'v1', type: 'delete', digest: null });
    await sleep(800);

    // Receiver down altogether; Pier restarts with events still queued.
    await receiver.stop();
    receiver.mode = 'ok';
    await pushTo('hooks/two', 'v1', 'push');
    await sleep(300);
    await pier.kill('SIGTERM');
    pier = await start();
    await pushTo('hooks/one', 'latest', 'tag_move');
    const rb = await fetch(`${pier.url}/pier/v1/repositories/hooks/one/tags/latest/rollback`, { method: 'POST', body: JSON.stringify({ to: one.digest }), headers: { 'content-type': 'application/json' } });
    assert.equal(rb.status, 200, await rb.text());
    expected.push({ repository: 'hooks/one', tag: 'latest', type: 'rollback', digest: one.digest });
    assert.equal(receiver.events.length, 2, 'nothing was delivered while the receiver was away');

    // Receiver back on the same port: the queue drains.
    await receiver.start();
    await waitFor(`${expected.length} events`, () => receiver.events.length >= expected.length);
    await sleep(1000); // and nothing more arrives
    assert.deepEqual(receiver.badSignatures, [], 'every signature verifies');
    const ids = receiver.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `no event twice: ${ids.join(', ')}`);
    assert.equal(receiver.events.length, expected.length, 'no event lost');
    const perTag = (list: { repository: string; tag: string; type: string; digest: string | null }[]) => {
      const m = new Map<string, string[]>();
      for (const e of list) m.set(`${e.repository}:${e.tag}`, [...(m.get(`${e.repository}:${e.tag}`) ?? []), `${e.type} ${e.digest ?? '-'}`]);
      return Object.fromEntries(m);
    };
    assert.deepEqual(perTag(receiver.events), perTag(expected), 'in order per tag');
    assert.ok(receiver.events.every((e) => e.actor === 'anonymous'));

    // The delivery log shows the retries; nothing is left pending.
    const log = (await (await fetch(`${pier.url}/pier/v1/webhooks/ci/deliveries?limit=100`)).json()) as { pending: number; delivered: number; deliveries: { attempts: number; status: string }[] };
    assert.equal(log.pending, 0);
    assert.equal(log.delivered, expected.length);
    assert.ok(log.deliveries.some((d) => d.attempts > 1), 'some deliveries needed retries');
    const list = (await (await fetch(`${pier.url}/pier/v1/webhooks`)).json()) as { webhooks: { name: string; pending: number }[] };
    assert.deepEqual(
      list.webhooks.map((w) => [w.name, w.pending]),
      [
        ['ci', 0],
        ['deletes-only', 0],
      ],
    );

    // `pier webhook test` sends a signed sample now.
    const cli = await cliIo(work, pier.host, 'anyone');
    const code = await cli.run(['webhook', 'test', 'ci', '--registry', pier.host]);
    assert.equal(code, 0, cli.errors());
    assert.match(cli.output(), /Webhook ci: delivered \(HTTP 204/);
    const sample = receiver.events[receiver.events.length - 1]!;
    assert.equal(sample.type, 'test');
    assert.deepEqual(receiver.badSignatures, []);
    const unknown = await cliIo(work, pier.host, 'anyone');
    assert.equal(await unknown.run(['webhook', 'test', 'nope', '--registry', pier.host]), 1);
    assert.match(unknown.errors(), /no webhook named "nope"/);
  });
});
