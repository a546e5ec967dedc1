/**
 * The gzip worker threads belong to an owner that ends them: a process that
 * compresses through a stream's own threads, or through a GzipWorkers it
 * closes, exits by itself; jobs after close are refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import { GzipWorkers } from '../../src/client/gzip.js';

const GZIP = new URL('../../src/client/gzip.js', import.meta.url).href;

/** Runs an ESM program in a child node; resolves with its exit code and stdout, or null when it had to be killed. */
async function runNode(program: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: Buffer; killed: boolean }> {
  const dir = await mkdtemp(join(tmpdir(), 'pier-gzip-test-'));
  try {
    const file = join(dir, 'program.mjs');
    await writeFile(file, program);
    return await spawnNode(file, timeoutMs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function spawnNode(file: string, timeoutMs: number): Promise<{ code: number | null; stdout: Buffer; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), killed });
    });
  });
}

test('a process that compresses on worker threads exits by itself, with either owner', { timeout: 60_000 }, async () => {
  for (const owner of ['stream', 'pool']) {
    const program = `
      import { createParallelGzip, GzipWorkers } from ${JSON.stringify(GZIP)};
      import { Readable } from 'node:stream';
      const text = Buffer.from('pier '.repeat(700_000));
      const workers = ${owner === 'pool' ? 'new GzipWorkers(2)' : 'undefined'};
      const chunks = [];
      for await (const c of Readable.from([text.subarray(0, 1_000_000), text.subarray(1_000_000)]).pipe(createParallelGzip({ level: 1, chunkSize: 1 << 20 }, workers))) chunks.push(c);
      await workers?.close();
      process.stdout.write(Buffer.concat(chunks));
    `;
    const r = await runNode(program);
    assert.equal(r.killed, false, `${owner}: the process did not exit by itself`);
    assert.equal(r.code, 0);
    assert.equal(gunzipSync(r.stdout).toString(), 'pier '.repeat(700_000));
  }
});

test('after close, a job is refused with ERR_ABORTED', async () => {
  const workers = new GzipWorkers(1);
  workers.start();
  const ok = await workers.deflate(Buffer.from('abc'.repeat(1000)), true, 1);
  assert.ok(ok.length > 0);
  await workers.close();
  await assert.rejects(workers.deflate(Buffer.from('abc'), true, 1), { code: 'ERR_ABORTED' });
});
