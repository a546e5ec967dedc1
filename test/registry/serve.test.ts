/** `pier serve` as a process: configuration errors, logs, graceful shutdown. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, ConfigError } from '../../src/registry/config.js';
import { sha256 } from '../helpers/images.js';
import { PIER_BIN, spawnTestRegistry, tempDir } from '../helpers/registry.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function pier(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PIER_BIN, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('configuration', () => {
  test('file, environment and flags layer in that order', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const file = path.join(dir, 'pier.yaml');
    await writeFile(file, 'listen: 127.0.0.1:6000\nuploads:\n  maxAge: 2h\n  maxChunkSize: 8MiB\nlog:\n  level: warn\n');
    const config = await loadConfig({ file, env: { PIER_LOG_LEVEL: 'error', PIER_UPLOADS_AUTOMATIC_MOUNT: 'false' }, flags: { listen: '127.0.0.1:7000' } });
    assert.equal(config.listen, '127.0.0.1:7000');
    assert.equal(config.uploads.maxAge, 7200);
    assert.equal(config.uploads.maxChunkSize, 8 * 1024 * 1024);
    assert.equal(config.uploads.automaticMount, false);
    assert.equal(config.log.level, 'error');
  });

  test('bad values name their key', async () => {
    await assert.rejects(loadConfig({ env: { PIER_UPLOADS_MAX_AGE: 'soon' } }), (e: unknown) => e instanceof ConfigError && e.message.includes('uploads.maxAge'));
    await assert.rejects(loadConfig({ overrides: { uploads: { colour: 'red' } } }), /uploads\.colour: unknown key/);
    await assert.rejects(loadConfig({ flags: { listen: 'nowhere' } }), /listen: must be HOST:PORT/);
  });

  test('a key of a union variant is required only for its type, and refused for another', async () => {
    await assert.rejects(loadConfig({ env: { PIER_STORAGE_TYPE: 's3' } }), /storage\.s3\.bucket: required when storage\.type is s3/);
    await assert.rejects(loadConfig({ overrides: { storage: { s3: { bucket: 'b' } } } }), /storage\.s3\.bucket: only for storage\.type s3 \(storage\.type is fs\)/);
    await assert.rejects(loadConfig({ env: { PIER_DATABASE_TYPE: 'postgres', PIER_DATABASE_URL: 'postgres://x/y', PIER_DATABASE_PATH: 'p.db' } }), /database\.path: only for database\.type sqlite/);
    await assert.rejects(loadConfig({ env: { PIER_DATABASE_TYPE: 'postgres' } }), /database\.url: required when database\.type is postgres/);
    const s3 = await loadConfig({ overrides: { storage: { type: 's3', s3: { bucket: 'images', region: 'eu-west-1' } }, database: { type: 'postgres', url: 'postgres://db/pier' } } });
    assert.deepEqual(s3.storage, {
      type: 's3',
      bucket: 'images',
      region: 'eu-west-1',
      endpoint: undefined,
      accessKeyId: undefined,
      secretAccessKey: undefined,
      forcePathStyle: false,
      redirect: false,
      timeout: 60,
      minFree: { percent: 1 },
    });
    const rgw = await loadConfig({ env: { PIER_STORAGE_TYPE: 's3', PIER_STORAGE_S3_BUCKET: 'b', PIER_STORAGE_S3_ENDPOINT: 'http://127.0.0.1:7480', PIER_STORAGE_S3_REDIRECT: 'true' } });
    assert.ok(rgw.storage.type === 's3' && rgw.storage.forcePathStyle && rgw.storage.redirect && rgw.storage.region === 'us-east-1');
    await assert.rejects(loadConfig({ env: { PIER_STORAGE_TYPE: 's3', PIER_STORAGE_S3_BUCKET: 'b', PIER_STORAGE_S3_ACCESS_KEY_ID: 'k' } }), /storage\.s3\.secretAccessKey: set both/);
    assert.deepEqual(s3.database, { type: 'postgres', url: 'postgres://db/pier' });
  });

  test('pier serve refuses an S3 bucket it cannot reach with one line naming it', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const env = { PIER_STORAGE_TYPE: 's3', PIER_STORAGE_S3_BUCKET: 'images', PIER_STORAGE_S3_ENDPOINT: 'http://127.0.0.1:1', PIER_STORAGE_S3_ACCESS_KEY_ID: 'k', PIER_STORAGE_S3_SECRET_ACCESS_KEY: 's' };
    const { code, stderr } = await pier(['serve', '--listen', '127.0.0.1:0', '--data', dir], env);
    assert.notEqual(code, 0);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, /bucket images at http:\/\/127\.0\.0\.1:1/);
    assert.ok(!stderr.includes('    at '), 'no stack trace');
  });

  test('pier serve gives up on an S3 endpoint that accepts connections and never answers (storage.s3.timeout), with one line', async () => {
    // What a full Ceph OSD looks like from outside: RGW takes the request and blocks. Without a timeout, start hangs.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const dir = await tempDir();
    dirs.push(dir);
    try {
      const env = { PIER_STORAGE_TYPE: 's3', PIER_STORAGE_S3_BUCKET: 'images', PIER_STORAGE_S3_ENDPOINT: `http://127.0.0.1:${port}`, PIER_STORAGE_S3_ACCESS_KEY_ID: 'k', PIER_STORAGE_S3_SECRET_ACCESS_KEY: 's', PIER_STORAGE_S3_TIMEOUT: '1s' };
      const { code, stderr } = await pier(['serve', '--listen', '127.0.0.1:0', '--data', dir], env);
      assert.notEqual(code, 0);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, new RegExp(`bucket images at http://127\\.0\\.0\\.1:${port}`));
      assert.ok(held.length > 0, 'pier reached the endpoint');
    } finally {
      for (const s of held) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('pier serve with an unreachable PostgreSQL says so in one line, without the password', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const { code, stderr } = await pier(['serve', '--listen', '127.0.0.1:0', '--data', dir], { PIER_DATABASE_TYPE: 'postgres', PIER_DATABASE_URL: 'postgres://pier:secret@127.0.0.1:1/pier' });
    assert.notEqual(code, 0);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, /cannot connect to PostgreSQL at postgres:\/\/pier:\*\*\*@127\.0\.0\.1:1\/pier/);
    assert.ok(!stderr.includes('secret'), 'the password is not printed');
    assert.ok(!stderr.includes('    at '), 'no stack trace');
  });

  for (const [label, setup, key] of [
    ['an unknown key in the file', 'storage:\n  kind: fs\n', 'storage.kind'],
    ['a bad enum value', 'log:\n  level: loud\n', 'log.level'],
    ['a YAML syntax error', 'listen: [\n', 'not valid YAML'],
  ] as const) {
    test(`pier serve refuses to start on ${label}, with one line`, async () => {
      const dir = await tempDir();
      dirs.push(dir);
      const file = path.join(dir, 'pier.yaml');
      await writeFile(file, setup);
      const { code, stderr } = await pier(['serve', '--config', file, '--data', dir]);
      assert.notEqual(code, 0);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.ok(stderr.includes(key), stderr);
      assert.ok(!stderr.includes('    at '), 'no stack trace');
    });
  }

  test('a busy port is one clear line', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dir = await tempDir();
    dirs.push(dir);
    const { code, stderr } = await pier(['serve', '--listen', `127.0.0.1:${port}`, '--data', dir]);
    server.close();
    assert.notEqual(code, 0);
    assert.match(stderr.trim(), /address already in use$/);
  });
});

describe('running', () => {
  test('one log line per request, and SIGTERM lets an in-flight upload finish', { timeout: 60_000 }, async () => {
    const dataDir = await tempDir();
    dirs.push(dataDir);
    const reg = await spawnTestRegistry({ dataDir });
    const start = await fetch(`${reg.url}/v2/slow/app/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location')!;
    const data = randomBytes(256 * 1024);
    const { port } = new URL(reg.url);
    // A PATCH whose body arrives in two halves, with SIGTERM in between.
    const done = new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'PATCH', path: location, headers: { 'content-length': data.length, 'content-type': 'application/octet-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(data.subarray(0, 100_000));
      setTimeout(() => {
        reg.process.kill('SIGTERM');
        setTimeout(() => req.end(data.subarray(100_000)), 300);
      }, 200);
    });
    assert.equal(await done, 202);
    const exitCode = await new Promise<number | null>((r) => {
      if (reg.process.exitCode !== null) r(reg.process.exitCode);
      else reg.process.once('exit', (c) => r(c));
    });
    assert.equal(exitCode, 0);
    const line = reg.logs.find((l) => l.msg === 'request' && l.method === 'PATCH');
    assert.ok(line, 'the PATCH was logged');
    assert.equal(line.status, 202);
    assert.equal(line.in, data.length);
    assert.equal(typeof line.ms, 'number');

    // The data survived: a restarted registry finishes the upload.
    const again = await spawnTestRegistry({ dataDir });
    try {
      const put = await fetch(`${again.url}${location}?digest=${sha256(data)}`, { method: 'PUT' });
      assert.equal(put.status, 201);
    } finally {
      await again.kill();
    }
  });
});
