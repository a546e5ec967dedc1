/**
 * Webhooks across replicas that crash: three `pier serve` replicas on one
 * PostgreSQL database and one S3 bucket behind haproxy round-robin
 * (cluster.ts), one webhook endpoint: a receiver in this process that
 * records every delivery and deduplicates by `X-Pier-Delivery`, and
 * answers 500 to the first attempt of every fifth event, so retries
 * happen. Pushers move many tags through the balancer (create, moves, a
 * delete for half of them), retrying each step until it succeeds, while a
 * random replica is SIGKILLed and restarted again and again.
 *
 * One kill is aimed: the receiver holds a delivery it has accepted, the
 * replica that sent it (found by its socket, `ss -tnp`) is SIGKILLed before
 * the answer, so Pier never learns it was delivered and another replica
 * sends it again (same delivery id) once the dead one's lease and lock
 * lapse.
 *
 * Afterwards every tag change the test made has arrived, each tag's
 * changes in the order they were made, each exactly once after dedup
 * (duplicates before dedup are allowed — a crash between a delivery and
 * its record sends it again, same id — and counted in the output).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from '../helpers/dockerd.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { clusterSkip, startCluster, type TestCluster } from './cluster.js';

const skip = clusterSkip();
const REPOSITORIES = 3;
const TAGS_PER_REPOSITORY = 4;
/** Pushes per tag (a create, then moves); every other tag is deleted after them. */
const PUSHES_PER_TAG = 3;
const KILLS = 6;

interface Event {
  id: string;
  type: string;
  action: string;
  repository: string;
  tag: string;
  digest: string | null;
  previousDigest: string | null;
}

/** Records every delivery; the first attempt of every fifth event id (in arrival order) is refused with 500. */
class Receiver {
  /** Every request with a 2xx answer, in arrival order, duplicates included. */
  readonly accepted: Event[] = [];
  readonly refused = new Set<string>();
  /** If set, called (once) with an accepted delivery's request before it is answered. */
  hold: ((req: http.IncomingMessage) => Promise<void>) | undefined;
  private readonly seen = new Set<string>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['x-pier-delivery'] ?? '');
      if (!this.seen.has(id)) {
        this.seen.add(id);
        if (this.seen.size % 5 === 0) {
          this.refused.add(id);
          res.writeHead(500).end();
          return;
        }
      }
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Event;
      if (event.id !== id) {
        res.writeHead(400).end();
        return;
      }
      this.accepted.push(event);
      const hold = this.hold;
      this.hold = undefined;
      if (!hold) {
        res.writeHead(204).end();
        return;
      }
      void hold(req).finally(() => {
        if (!res.destroyed) res.writeHead(204).end();
      });
    });
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The accepted events with each delivery id's first arrival only, in arrival order. */
  unique(): Event[] {
    const ids = new Set<string>();
    return this.accepted.filter((e) => !ids.has(e.id) && ids.add(e.id));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Runs `step` until it succeeds (a replica may die under it); `done` tells an error that means the step already took effect. */
async function untilDone(what: string, step: () => Promise<void>, failures: string[]): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await step();
      return attempt;
    } catch (err) {
      if (attempt >= 40) {
        failures.push(`${what}: ${(err as Error).message}`);
        return attempt;
      }
      await sleep(100 + Math.random() * 200);
    }
  }
}

const receiver = new Receiver();
let cluster: TestCluster | undefined;
before(async () => {
  if (skip) return;
  await receiver.start();
  cluster = await startCluster({
    extraYaml: [
      'gc:',
      '  schedule: 0',
      'webhooks:',
      '  maxAttempts: 1000',
      '  backoffMax: 1s',
      '  timeout: 5s',
      '  endpoints:',
      '    - name: ci',
      `      url: http://127.0.0.1:${receiver.port}/hook`,
      '      events: [push, tag_move, delete, rollback]',
      '',
    ].join('\n'),
  });
});
after(async () => {
  await cluster?.stop();
  if (!skip) await receiver.stop();
});

test('webhooks while replicas are SIGKILLed and restarted: no event lost, in order per tag, each once after dedup', { skip, timeout: 420_000 }, async (t) => {
  const c = cluster!;
  const started = Date.now();
  const failures: string[] = [];
  /** Per `repository:tag`, the changes in the order the test made them: [action, digest]. */
  const expected = new Map<string, [string, string | null][]>();
  let retriedSteps = 0;

  const tagWorker = async (repository: string, tag: string, remove: boolean) => {
    const changes: [string, string | null][] = [];
    expected.set(`${repository}:${tag}`, changes);
    for (let n = 0; n < PUSHES_PER_TAG; n++) {
      const image = await makeImage({ layers: [300 + n] });
      // A retry after a lost answer pushes the same manifest again: the tag already points at it, so no second change.
      const attempts = await untilDone(`${repository}:${tag} #${n}`, () => pushImage(c.url, repository, tag, image), failures);
      if (attempts > 1) retriedSteps++;
      changes.push([n === 0 ? 'create' : 'move', image.digest]);
    }
    if (remove) {
      let deleted = false;
      const attempts = await untilDone(
        `delete ${repository}:${tag}`,
        async () => {
          const res = await fetch(`${c.url}/v2/${repository}/manifests/${tag}`, { method: 'DELETE' });
          // 404 after an attempt whose answer was lost: that attempt deleted it.
          if (res.status === 202 || (res.status === 404 && deleted)) return;
          deleted = true;
          throw new Error(`DELETE answered ${res.status}`);
        },
        failures,
      );
      if (attempts > 1) retriedSteps++;
      changes.push(['delete', null]);
    }
  };

  let pushing = true;
  let kills = 0;
  // Kills and restarts one at a time (the aimed kill runs beside the killer loop).
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = turn.then(fn);
    turn = next.catch(() => undefined);
    return next;
  };
  // The aimed kill: the sender of an accepted delivery dies before it hears the answer.
  let aimed: string | undefined;
  receiver.hold = async (req) => {
    const r = await runCommand('ss', ['-Htnp', 'state', 'established', `( sport = :${req.socket.remotePort} and dport = :${receiver.port} )`], { timeoutMs: 10_000 });
    const pid = Number(/pid=(\d+)/.exec(r.stdout)?.[1]);
    const sender = c.replicas.find((replica) => replica.pid() === pid);
    if (!sender) {
      aimed = `no replica owns the sending socket: ${r.stdout}${r.stderr}`;
      return;
    }
    await exclusive(async () => {
      await sender.kill();
      kills++;
      aimed = sender.name;
      await sleep(500);
      await sender.restart();
    });
  };
  const killer = (async () => {
    while (pushing || kills < KILLS) {
      await sleep(700 + Math.random() * 1500);
      await exclusive(async () => {
        const up = c.replicas.filter((r) => r.running());
        const victim = up[Math.floor(Math.random() * up.length)]!;
        await victim.kill();
        kills++;
        await sleep(300 + Math.random() * 700);
        for (let attempt = 1; ; attempt++) {
          try {
            await victim.restart();
            break;
          } catch (err) {
            if (attempt >= 3) throw err;
          }
        }
      });
    }
  })();

  const workers: Promise<void>[] = [];
  for (let r = 0; r < REPOSITORIES; r++) {
    for (let i = 0; i < TAGS_PER_REPOSITORY; i++) workers.push(tagWorker(`hooks/r${r}`, `t${i}`, i % 2 === 1));
  }
  await Promise.all(workers);
  pushing = false;
  await killer;
  for (const r of c.replicas) await r.restart();
  assert.deepEqual(failures, [], 'every tag change completes after retries');
  const pushedAt = Date.now();

  // Every change arrives (the lease of a killed deliverer lapses; its per-endpoint lock may outlive it).
  const total = [...expected.values()].reduce((n, l) => n + l.length, 0);
  const deadline = Date.now() + 150_000;
  while (receiver.unique().length < total && Date.now() < deadline) await sleep(200);
  const unique = receiver.unique();
  const byTag = new Map<string, [string, string | null][]>();
  for (const e of unique) {
    const key = `${e.repository}:${e.tag}`;
    byTag.set(key, [...(byTag.get(key) ?? []), [e.action, e.digest]]);
  }
  for (const [key, changes] of expected) assert.deepEqual(byTag.get(key) ?? [], changes, `${key}: every change, in order, once (${unique.length} of ${total} events arrived)`);
  assert.deepEqual([...byTag.keys()].sort(), [...expected.keys()].sort(), 'no event for a tag the test did not touch');
  assert.equal(unique.length, total, 'each event once after dedup');
  assert.ok(kills >= KILLS, `${kills} kills`);
  assert.ok(aimed?.startsWith('replica-'), `the aimed kill: ${aimed}`);
  const resent = receiver.accepted.length - unique.length;
  assert.ok(resent >= 1, 'the delivery whose sender was killed before the answer was sent again');
  const retried = [...receiver.refused].filter((id) => unique.some((e) => e.id === id)).length;
  assert.ok(receiver.refused.size > 0 && retried === receiver.refused.size, `${receiver.refused.size} events refused once, ${retried} of them delivered on a retry`);

  t.diagnostic(
    `${total} tag changes on ${expected.size} tags through the balancer, ${kills} replica kills (one aimed at ${aimed} while its delivery was answered), ${retriedSteps} steps retried by the client; ` +
      `${receiver.accepted.length} deliveries accepted, ${resent} duplicates before dedup, ${receiver.refused.size} refused once with 500 then delivered; ` +
      `last event ${Math.round((Date.now() - pushedAt) / 1000)} s after the last push; ${Math.round((Date.now() - started) / 1000)} s`,
  );
});
