/**
 * The behaviour every Coordinator implementation must have: the in-process
 * one (one replica) and the SQL one (several, over one database) run it.
 * `open` gives coordinators over one shared state (replicas), all reading
 * the clock `now`. The tests marked "across replicas" run only when there
 * are at least two.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Coordinator } from '../../src/store/coordinator/coordinator.js';

export interface CoordinatorFixture {
  /** Coordinators sharing state, as replicas would; an in-process one has exactly one. */
  replicas: Coordinator[];
  /** With replicas: how long a claim, fence or lock outlives a replica that stopped (died) without releasing it. */
  lapseMs?: number;
  close(): Promise<void>;
}

/**
 * Whether `p` has settled after a while: a moment that outlasts the SQL
 * coordinator's longest pause between retries (250 ms) and a database
 * round trip, so "still pending" means it really waits. The callers that
 * expect it settled (after a release) give it up to 10 s.
 */
async function settled(p: Promise<unknown>, expect: boolean): Promise<boolean> {
  let done = false;
  const finished = p.then(
    () => (done = true),
    () => (done = true),
  );
  if (expect) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
  } else {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 300));
  }
  return done;
}

export function coordinatorSuite(name: string, open: (clock: { now: () => number }) => Promise<CoordinatorFixture>): void {
  const withCoordinator = (fn: (c: Coordinator[], clock: { t: number }, fixture: CoordinatorFixture) => Promise<void>) => async () => {
    const clock = { t: 1_000_000 };
    const fixture = await open({ now: () => clock.t });
    try {
      await fn(fixture.replicas, clock, fixture);
    } finally {
      await fixture.close();
    }
  };

  describe(`Coordinator: ${name}`, () => {
    test(
      'a fence skips claimed digests, and a claim waits for a fence to lift',
      withCoordinator(async ([c]) => {
        const release = await c!.claim('sha256:a');
        const first = await c!.fence(['sha256:a', 'sha256:b']);
        assert.deepEqual(first.fenced, ['sha256:b'], 'the claimed digest is not fenced');
        const second = await c!.fence(['sha256:b', 'sha256:c']);
        assert.deepEqual(second.fenced, ['sha256:c'], 'a fenced digest is not fenced twice');
        const waiting = c!.claim('sha256:b');
        assert.equal(await settled(waiting, false), false, 'a claim on a fenced digest waits');
        await first.lift();
        assert.equal(await settled(waiting, true), true, 'and goes ahead once the fence is lifted');
        await (await waiting)();
        await release();
        await release(); // a second release does nothing
        await second.lift();
        const again = await c!.fence(['sha256:a', 'sha256:b']);
        assert.deepEqual(again.fenced.sort(), ['sha256:a', 'sha256:b'], 'released claims no longer protect');
        await again.lift();
      }),
    );

    test(
      'claims on one digest count: the digest stays claimed until the last is released',
      withCoordinator(async ([c]) => {
        const r1 = await c!.claim('sha256:x');
        const r2 = await c!.claim('sha256:x');
        await r1();
        assert.deepEqual((await c!.fence(['sha256:x'])).fenced, []);
        await r2();
        const f = await c!.fence(['sha256:x']);
        assert.deepEqual(f.fenced, ['sha256:x']);
        await f.lift();
      }),
    );

    test(
      'locks exclude each other and are taken whole',
      withCoordinator(async ([c]) => {
        const held = await c!.lock(['r:b', 'r:a']);
        assert.equal(await c!.tryLock('r:a'), undefined, 'tryLock on a held lock fails at once');
        const waiting = c!.lock(['r:a', 'r:c']);
        assert.equal(await settled(waiting, false), false, 'a lock on a held key waits');
        const other = await c!.tryLock('r:d');
        assert.ok(other, 'other keys are free');
        await other();
        await held();
        assert.equal(await settled(waiting, true), true);
        await (await waiting)();
        const free = await c!.tryLock('r:a');
        assert.ok(free);
        await free();
      }),
    );

    test(
      'a lease has one holder until released or lapsed',
      withCoordinator(async (replicas, clock) => {
        const [a, b] = replicas;
        assert.equal(await a!.acquireLease('gc', 1000), true);
        assert.equal(await a!.acquireLease('gc', 1000), true, 'the holder renews');
        if (b) {
          assert.equal(await b.acquireLease('gc', 1000), false, 'another replica waits');
          clock.t += 1001;
          assert.equal(await b.acquireLease('gc', 1000), true, 'a lapsed lease passes on');
          assert.equal(await a!.acquireLease('gc', 1000), false);
          await b.releaseLease('gc');
          assert.equal(await a!.acquireLease('gc', 1000), true, 'a released lease is free');
        }
        await a!.releaseLease('gc');
        assert.equal(await a!.acquireLease('gc', 1000), true);
      }),
    );

    test(
      'counters count within their window and start over after it',
      withCoordinator(async ([c], clock) => {
        assert.equal(await c!.read('ip:1', 60_000), undefined);
        assert.deepEqual(await c!.increment('ip:1', 60_000), { count: 1, since: clock.t });
        const start = clock.t;
        clock.t += 10_000;
        assert.deepEqual(await c!.increment('ip:1', 60_000), { count: 2, since: start });
        assert.deepEqual(await c!.read('ip:1', 60_000), { count: 2, since: start });
        assert.equal(await c!.read('ip:2', 60_000), undefined, 'keys are independent');
        clock.t = start + 60_000;
        assert.equal(await c!.read('ip:1', 60_000), undefined, 'the window passed');
        await c!.increment('ip:1', 60_000);
        await c!.reset('ip:1');
        assert.equal(await c!.read('ip:1', 60_000), undefined, 'reset clears');
      }),
    );

    test(
      'keys may hold any character (the login throttle separates with NUL); distinct keys stay distinct',
      withCoordinator(async ([c]) => {
        assert.equal((await c!.increment('login:1.2.3.4\0alice', 60_000)).count, 1);
        assert.equal((await c!.increment('login:1.2.3.4\0alice', 60_000)).count, 2);
        assert.equal((await c!.increment('login:1.2.3.4\\0alice', 60_000)).count, 1, 'a backslash-zero is another key');
        assert.equal((await c!.read('login:1.2.3.4\0alice', 60_000))?.count, 2);
        await c!.reset('login:1.2.3.4\0alice');
        assert.equal(await c!.read('login:1.2.3.4\0alice', 60_000), undefined);
        const lock = await c!.tryLock('a\0b');
        assert.ok(lock);
        assert.equal(await c!.tryLock('a\0b'), undefined);
        await lock();
      }),
    );

    test(
      'across replicas: a claim on one keeps the fence of another off, and a fence holds the claim of another',
      withCoordinator(async ([a, b]) => {
        if (!b) return;
        const claimed = await a!.claim('sha256:a');
        const f = await b.fence(['sha256:a', 'sha256:b']);
        assert.deepEqual(f.fenced, ['sha256:b'], "another replica's claim protects its digest");
        assert.deepEqual((await a!.fence(['sha256:b'])).fenced, [], "another replica's fence is respected");
        const waiting = a!.claim('sha256:b');
        assert.equal(await settled(waiting, false), false, "a claim waits for another replica's fence");
        await f.lift();
        await (await waiting)(); // goes ahead (by polling: the lift happened elsewhere)
        await claimed();
        const again = await b.fence(['sha256:a']);
        assert.deepEqual(again.fenced, ['sha256:a']);
        await again.lift();
      }),
    );

    test(
      'across replicas: locks exclude each other',
      withCoordinator(async ([a, b]) => {
        if (!b) return;
        const held = await a!.lock(['repo:v1', 'repo:v2']);
        assert.equal(await b.tryLock('repo:v2'), undefined);
        const waiting = b.lock(['repo:v1']);
        assert.equal(await settled(waiting, false), false);
        await held();
        await (await waiting)();
      }),
    );

    test(
      'across replicas: what a replica that died held lapses',
      withCoordinator(async ([a, b], clock, fixture) => {
        if (!b || fixture.lapseMs === undefined) return;
        // a "dies": it never releases, and its rows are not renewed.
        await a!.claim('sha256:orphan');
        await a!.tryLock('repo:latest');
        const fenceA = await a!.fence(['sha256:fenced']);
        assert.deepEqual(fenceA.fenced, ['sha256:fenced']);
        assert.deepEqual((await b.fence(['sha256:orphan'])).fenced, []);
        clock.t += fixture.lapseMs + 1;
        const f = await b.fence(['sha256:orphan', 'sha256:fenced']);
        assert.deepEqual(f.fenced.sort(), ['sha256:fenced', 'sha256:orphan'], 'lapsed claims and fences no longer count');
        await f.lift();
        const lock = await b.tryLock('repo:latest');
        assert.ok(lock, 'a lapsed lock can be taken');
        await lock();
      }),
    );
  });
}
