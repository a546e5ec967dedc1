/**
 * Namespace quotas hold on bytes actually stored, whatever way they
 * arrive: a monolithic POST with a chunked body (no Content-Length), a
 * chunked PATCH, a mount from a namespace without a quota, an automatic
 * mount (no `from`), and eight uploads at once. Each test reports the
 * overshoot (bytes the namespace stores beyond its quota; must be ≤ 0).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import { blob, type TestBlob } from '../helpers/images.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;
const LIMIT = 2 * MiB;

/** A body sent with chunked transfer encoding (no Content-Length), in 64 KiB pieces. */
function chunkedBody(data: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) {
        controller.close();
        return;
      }
      controller.enqueue(data.subarray(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    },
  });
}

async function send(url: string, init: RequestInit & { duplex?: 'half' }): Promise<number> {
  try {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    return res.status;
  } catch {
    // The registry may answer (and close) before it has read a refused body: the client sees a reset.
    return -1;
  }
}

describe('quotas on bytes actually stored', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startTestRegistry({ quotas: [{ namespace: 'q*', limit: '2MiB' }] });
  });
  after(async () => {
    await reg?.close();
  });

  async function overshoot(t: TestContext, namespace: string, what: string): Promise<number> {
    const stored = await reg.lifecycle.usage.namespaceBytes(namespace);
    const over = stored - LIMIT;
    t.diagnostic(`${what}: ${namespace} stores ${stored} bytes of a ${LIMIT} quota; overshoot ${Math.max(0, over)} bytes`);
    assert.ok(over <= 0, `${what}: the namespace stores ${stored} bytes, ${over} beyond its quota`);
    return stored;
  }

  const monolithic = (repo: string, b: TestBlob, chunked: boolean) =>
    send(`${reg.url}/v2/${repo}/blobs/uploads/?digest=${b.digest}`, {
      method: 'POST',
      body: chunked ? chunkedBody(b.data) : b.data,
      headers: { 'content-type': 'application/octet-stream' },
      ...(chunked ? { duplex: 'half' as const } : {}),
    });

  test('a monolithic POST with a chunked body (no Content-Length) is counted as it arrives', async (t) => {
    const big = blob(randomBytes(5 * MiB));
    assert.notEqual(await monolithic('qa/app', big, true), 201);
    await overshoot(t, 'qa', 'chunked monolithic POST of 5 MiB');
    assert.equal(await send(`${reg.url}/v2/qa/app/blobs/${big.digest}`, { method: 'HEAD' }), 404);
    // What fits still goes in, chunked or not: nothing was left reserved.
    const fits = blob(randomBytes(MiB));
    assert.equal(await monolithic('qa/app', fits, true), 201);
    assert.equal(await monolithic('qa/app', blob(randomBytes(MiB - 4096)), false), 201);
    await overshoot(t, 'qa', 'after filling it');
  });

  test('a chunked PATCH of unknown length stops at the quota', async (t) => {
    const start = await fetch(`${reg.url}/v2/qe/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    const status = await send(`${reg.url}${location}`, { method: 'PATCH', body: chunkedBody(randomBytes(5 * MiB)), duplex: 'half', headers: { 'content-type': 'application/octet-stream' } });
    assert.notEqual(status, 202);
    const state = await fetch(`${reg.url}${location}`);
    const received = Number(state.headers.get('range')?.split('-')[1] ?? -1) + 1;
    t.diagnostic(`chunked PATCH of 5 MiB: the session holds ${received} bytes of a ${LIMIT} quota`);
    assert.ok(received <= LIMIT, `the upload holds ${received} bytes`);
    await overshoot(t, 'qe', 'chunked PATCH');
  });

  test('a mount from a namespace without a quota counts against the target namespace', async (t) => {
    const big = blob(randomBytes(5 * MiB));
    assert.equal(await monolithic('free/src', big, false), 201);
    const status = await send(`${reg.url}/v2/qb/app/blobs/uploads/?mount=${big.digest}&from=free/src`, { method: 'POST' });
    assert.notEqual(status, 201);
    assert.equal(await send(`${reg.url}/v2/qb/app/blobs/${big.digest}`, { method: 'HEAD' }), 404);
    await overshoot(t, 'qb', 'mount of 5 MiB from free/src');
    // A small one fits, and a blob the namespace already stores mounts for nothing.
    const small = blob(randomBytes(MiB));
    assert.equal(await monolithic('free/src', small, false), 201);
    assert.equal(await send(`${reg.url}/v2/qb/app/blobs/uploads/?mount=${small.digest}&from=free/src`, { method: 'POST' }), 201);
    assert.equal(await send(`${reg.url}/v2/qb/other/blobs/uploads/?mount=${small.digest}&from=qb/app`, { method: 'POST' }), 201);
    assert.equal(await overshoot(t, 'qb', 'after mounting 1 MiB twice'), MiB);
  });

  test('an automatic mount (no from) counts against the target namespace', async (t) => {
    const big = blob(randomBytes(5 * MiB));
    assert.equal(await monolithic('free/auto', big, false), 201);
    const status = await send(`${reg.url}/v2/qc/app/blobs/uploads/?mount=${big.digest}`, { method: 'POST' });
    assert.notEqual(status, 201);
    assert.equal(await send(`${reg.url}/v2/qc/app/blobs/${big.digest}`, { method: 'HEAD' }), 404);
    await overshoot(t, 'qc', 'automatic mount of 5 MiB');
  });

  for (const chunked of [false, true]) {
    test(`eight concurrent 1 MiB uploads${chunked ? ' with chunked bodies' : ''}: only what fits is stored`, async (t) => {
      const ns = chunked ? 'qf' : 'qd';
      const blobs = Array.from({ length: 8 }, () => blob(randomBytes(MiB)));
      const statuses = await Promise.all(blobs.map((b, i) => monolithic(`${ns}/app${i}`, b, chunked)));
      const accepted = statuses.filter((s) => s === 201).length;
      t.diagnostic(`8 concurrent 1 MiB uploads${chunked ? ' (chunked)' : ''}: ${accepted} accepted, statuses ${statuses.join(' ')}`);
      assert.ok(accepted >= 1 && accepted <= 2, `${accepted} accepted`);
      assert.equal(await overshoot(t, ns, `8 concurrent uploads${chunked ? ' (chunked)' : ''}`), accepted * MiB);
    });
  }

  test('eight concurrent chunked PATCH sessions: only what fits is stored', async (t) => {
    const sessions = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const res = await fetch(`${reg.url}/v2/qg/app${i}/blobs/uploads/`, { method: 'POST' });
        await res.arrayBuffer();
        return res.headers.get('location')!;
      }),
    );
    const blobs = sessions.map(() => blob(randomBytes(MiB)));
    const statuses = await Promise.all(
      sessions.map(async (location, i) => {
        const patched = await send(`${reg.url}${location}`, { method: 'PATCH', body: blobs[i]!.data, headers: { 'content-type': 'application/octet-stream' } });
        if (patched !== 202) return patched;
        return send(`${reg.url}${location}?digest=${blobs[i]!.digest}`, { method: 'PUT' });
      }),
    );
    const accepted = statuses.filter((s) => s === 201).length;
    t.diagnostic(`8 concurrent PATCH sessions of 1 MiB: ${accepted} committed, statuses ${statuses.join(' ')}`);
    assert.ok(accepted >= 1 && accepted <= 2, `${accepted} committed`);
    assert.equal(await overshoot(t, 'qg', '8 concurrent PATCH sessions'), accepted * MiB);
  });
});
