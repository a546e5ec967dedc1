/**
 * Safe defaults: open only on loopback while no user exists; refusing to
 * start on another address unless --insecure-open; HTTPS from tls.cert and
 * tls.key; policy mistakes in the config named at start; the account
 * commands working on the data folder.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Agent } from 'undici';
import { selfSignedCertificate } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/registry/config.js';
import { PIER_BIN, spawnTestRegistry, startTestRegistry, tempDir } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { basic } from './helpers.js';

function pier(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [PIER_BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

describe('safe defaults', () => {
  test('with no users, Pier refuses to listen on all interfaces and says how to add one', async () => {
    const data = await tempDir();
    try {
      const r = await pier(['serve', '--listen', '0.0.0.0:0', '--data', data]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refusing to serve 0\.0\.0\.0:0 with no users/);
      assert.match(r.stderr, /pier user add NAME/);
      assert.match(r.stderr, /--insecure-open/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  test('--insecure-open serves everyone; once a user exists, logins are required', async () => {
    const data = await tempDir();
    try {
      const open = await spawnTestRegistry({ dataDir: data, listen: '0.0.0.0:0', args: ['--insecure-open'] });
      const port = new URL(open.url).port;
      try {
        assert.equal((await fetch(`http://127.0.0.1:${port}/v2/_catalog`)).status, 200);
        assert.ok(open.logs.some((l) => l.msg === 'insecure-open: serving everyone everything'));
      } finally {
        await open.kill();
      }
      const add = await pier(['user', 'add', 'alice', '--data', data], 'alice-password\n');
      assert.equal(add.code, 0, add.stderr);
      const closed = await spawnTestRegistry({ dataDir: data, listen: '0.0.0.0:0' });
      const url = `http://127.0.0.1:${new URL(closed.url).port}`;
      try {
        assert.equal((await fetch(`${url}/v2/_catalog`)).status, 401);
        assert.equal((await fetch(`${url}/v2/`, { headers: { authorization: basic('alice', 'alice-password') } })).status, 200);
        assert.equal((await fetch(`${url}/v2/`, { headers: { authorization: basic('alice', 'wrong-password') } })).status, 401);
      } finally {
        await closed.kill();
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  test('a user added while the registry runs on loopback closes it within a second', async () => {
    const data = await tempDir();
    const reg = await spawnTestRegistry({ dataDir: data });
    try {
      assert.equal((await fetch(`${reg.url}/v2/_catalog`)).status, 200);
      const add = await pier(['user', 'add', 'bob', '--data', data], 'bob-password\n');
      assert.equal(add.code, 0, add.stderr);
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal((await fetch(`${reg.url}/v2/_catalog`)).status, 401);
      // And the password changed from the command line takes effect without a restart.
      assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 'bob-password') } })).status, 200);
      const passwd = await pier(['user', 'passwd', 'bob', '--data', data], 'bob-new-password\n');
      assert.equal(passwd.code, 0, passwd.stderr);
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 'bob-password') } })).status, 401);
      assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 'bob-new-password') } })).status, 200);
    } finally {
      await reg.kill();
      await rm(data, { recursive: true, force: true });
    }
  });

  test('tls.cert and tls.key serve HTTPS, and the challenge realm says https', async () => {
    const dir = await tempDir();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(path.join(dir, 'tls.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(path.join(dir, 'tls.crt'), selfSignedCertificate(privateKey, '127.0.0.1'));
    const reg = await startTestRegistry({ tls: { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') } });
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    try {
      assert.match(reg.url, /^https:\/\//);
      const { request } = await import('undici');
      const res = await request(`${reg.url}/v2/`, { dispatcher });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
    } finally {
      await dispatcher.close();
      await reg.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a bad policy rule in the config is one line naming it', async () => {
    await assert.rejects(loadConfig({ overrides: { policy: [{ subjects: ['user:a'], repositories: ['x/*'], actions: ['pull', 'fly'] }] } }), /invalid configuration: policy\[0\]: actions must be some of pull, push, delete/);
    await assert.rejects(loadConfig({ overrides: { policy: [{ subjects: ['someone'], repositories: ['x'], actions: ['pull'] }] } }), /policy\[0\]: subject "someone"/);
    await assert.rejects(loadConfig({ overrides: { policy: [{ who: 'x' }] } }), /policy\[0\]\.who: unknown key/);
    await assert.rejects(loadConfig({ env: { PIER_POLICY: 'not json' } }), /policy: must be a list of rules/);
    const ok = await loadConfig({ env: { PIER_POLICY: '[{"subjects":"anonymous","repositories":["public/*"],"actions":["pull"]}]' } });
    assert.deepEqual(ok.policy, [{ subject: 'anonymous', repositories: 'public/*', actions: ['pull'], origin: 'config:0' }]);
  });

  test('anonymous pull granted in the config works with no credentials; push still needs them', async () => {
    const reg = await startTestRegistry({ policy: [{ subjects: ['anonymous'], repositories: ['public/*'], actions: ['pull'] }] });
    try {
      // Rules exist, so the registry is not open even on loopback.
      assert.equal((await fetch(`${reg.url}/v2/public/app/tags/list`)).status, 404);
      assert.equal((await fetch(`${reg.url}/v2/private/app/tags/list`)).status, 401);
      assert.equal((await fetch(`${reg.url}/v2/public/app/blobs/uploads/`, { method: 'POST' })).status, 401);
    } finally {
      await reg.close();
    }
  });

  test('pier user, group, token and policy commands', async () => {
    const data = await tempDir();
    try {
      // Only pier serve creates a database; the account commands work on one.
      await (await spawnTestRegistry({ dataDir: data })).kill();
      const ok = async (args: string[], input?: string) => {
        const r = await pier([...args, '--data', data], input);
        assert.equal(r.code, 0, `pier ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      await ok(['user', 'add', 'carol', '--admin'], 'carol-password\n');
      const short = await pier(['user', 'add', 'dave', '--data', data], 'short\n');
      assert.equal(short.code, 1);
      assert.match(short.stderr, /at least 8 characters/);
      const dup = await pier(['user', 'add', 'carol', '--data', data], 'carol-password\n');
      assert.match(dup.stderr, /user carol already exists/);
      await ok(['group', 'add', 'devs']);
      await ok(['user', 'add', 'dave'], 'dave-password\n');
      await ok(['group', 'join', 'devs', 'dave']);
      assert.match(await ok(['group', 'ls']), /^devs\tdave$/m);
      assert.match(await ok(['policy', 'add', '--subject', 'group:devs', '--repositories', 'team/*', '--actions', 'pull,push']), /added rule 1/);
      assert.match(await ok(['policy', 'ls']), /^1\tgroup:devs\tteam\/\*\tpull,push$/m);
      const secret = (await ok(['token', 'create', '--name', 'ci', '--scope', 'repository:team/app:push,pull', '--expires', '30d'])).trim();
      assert.match(secret, /^pier_[A-Za-z0-9_-]{43}$/);
      assert.match(await ok(['token', 'ls']), /^ci\tlive\trepository:team\/app:push,pull\t-\t/m);
      assert.doesNotMatch(await ok(['token', 'ls']), /pier_/);
      await ok(['token', 'revoke', 'ci']);
      assert.match(await ok(['token', 'ls']), /^ci\trevoked /m);
      assert.match(await ok(['user', 'ls']), /^carol\tadmin\t-\t.*\ndave\t-\tdevs\t/m);
      await ok(['user', 'rm', 'dave']);
      assert.doesNotMatch(await ok(['user', 'ls']), /dave/);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  test('pier user import-htpasswd keeps bcrypt hashes from an htpasswd file', async () => {
    const data = await tempDir();
    const file = path.join(data, 'htpasswd');
    try {
      await (await spawnTestRegistry({ dataDir: data })).kill();
      await run('htpasswd', ['-Bbc', file, 'erin', 'erin-password']);
      await run('htpasswd', ['-mb', file, 'md5user', 'md5-password']);
      const r = await pier(['user', 'import-htpasswd', file, '--data', data]);
      assert.equal(r.code, 1, 'a skipped entry is reported with a non-zero exit');
      assert.match(r.stdout, /imported 1 user\(s\), updated 0, skipped 1/);
      assert.match(r.stderr, /skipped md5user: not a bcrypt hash/);
      const reg = await spawnTestRegistry({ dataDir: data });
      try {
        assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('erin', 'erin-password') } })).status, 200);
        assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('erin', 'nope-nope') } })).status, 401);
      } finally {
        await reg.kill();
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });
});
