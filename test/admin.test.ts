/**
 * Administration over the network (issue 10 item 6), as users run it: a
 * real `pier serve` child process, and the built `pier` CLI spawned for
 * every command. The first admin is added over HTTP while the loopback
 * registry has no user; then users, groups, tokens and policy rules are
 * managed with --registry and the credentials of `pier login`, every change
 * audited. A registry gets its first admin from auth.initialAdmin at start.
 * The local mode never creates a database.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PIER_BIN, spawnTestRegistry, tempDir, type SpawnedRegistry } from './helpers/registry.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a child process, with a timeout, in `cwd`. */
function pier(args: string[], options: { env: NodeJS.ProcessEnv; stdin?: string; cwd?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PIER_BIN, ...args], { env: options.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

/** A private HOME (docker config for `pier login`) and no PIER_* from the outside. */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PIER_') && !k.startsWith('DOCKER_')) env[k] = v;
  return { ...env, HOME: home, DOCKER_CONFIG: path.join(home, 'docker'), XDG_CACHE_HOME: path.join(home, 'cache'), REGISTRY_AUTH_FILE: path.join(home, 'auth.json') };
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function oneLine(r: Run): void {
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line expected: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('administration over the network', () => {
  let dir: string;
  let reg: SpawnedRegistry;
  let root: NodeJS.ProcessEnv;
  let host: string;
  const ok = async (args: string[], stdin?: string, env = root): Promise<string> => {
    const r = await pier([...args, '--registry', host], { env, ...(stdin === undefined ? {} : { stdin }) });
    assert.equal(r.code, 0, `pier ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    dir = await tempDir('pier-admin-');
    reg = await spawnTestRegistry({ dataDir: path.join(dir, 'data') });
    host = reg.host;
    root = cleanEnv(path.join(dir, 'root-home'));
  });
  after(async () => {
    await reg?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  test('the first admin is added over HTTP while the loopback registry has no user; then it is closed', async () => {
    assert.equal((await fetch(`${reg.url}/v2/_catalog`)).status, 200, 'open while no user exists');
    assert.equal(await ok(['user', 'add', 'root', '--admin'], 'root-password\n'), 'added user root (admin)\n');
    assert.equal((await fetch(`${reg.url}/v2/_catalog`)).status, 401, 'closed at once, not a second later');
    const anonymous = await pier(['user', 'ls', '--registry', host], { env: root });
    assert.equal(anonymous.code, 1);
    oneLine(anonymous);
    const login = await pier(['login', host, '-u', 'root', '--password-stdin'], { env: root, stdin: 'root-password\n' });
    assert.equal(login.code, 0, login.stderr);
    assert.match(await ok(['user', 'ls']), /^root\tadmin\t-\t\d{4}-/m);
  });

  test('users, groups, policy and tokens over HTTP, each change in effect at once and audited', async () => {
    assert.equal(await ok(['user', 'add', 'alice'], 'alice-password\n'), 'added user alice\n');
    const dup = await pier(['user', 'add', 'alice', '--registry', host], { env: root, stdin: 'alice-password\n' });
    assert.equal(dup.code, 1);
    oneLine(dup);
    assert.match(dup.stderr, /^pier user: adding user alice: 127\.0\.0\.1:\d+: user alice already exists$/m);
    const short = await pier(['user', 'add', 'bob', '--registry', host], { env: root, stdin: 'short\n' });
    assert.equal(short.code, 1);
    assert.match(short.stderr, /at least 8 characters/);

    await ok(['group', 'add', 'devs']);
    assert.equal(await ok(['group', 'join', 'devs', 'alice']), 'added alice to devs\n');
    assert.match(await ok(['group', 'ls']), /^devs\talice$/m);
    assert.match(await ok(['policy', 'add', '--subject', 'group:devs', '--repositories', 'team/*', '--actions', 'pull,push']), /^added rule (\d+): group:devs may pull,push team\/\*$/m);
    assert.match(await ok(['policy', 'ls']), /^\d+\tgroup:devs\tteam\/\*\tpull,push$/m);
    assert.match(await ok(['user', 'ls']), /^alice\t-\tdevs\t/m);

    // alice may now push to team/*, and is not an admin.
    const alice = cleanEnv(path.join(dir, 'alice-home'));
    const aliceLogin = await pier(['login', host, '-u', 'alice', '--password-stdin'], { env: alice, stdin: 'alice-password\n' });
    assert.equal(aliceLogin.code, 0, aliceLogin.stderr);
    const start = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic('alice', 'alice-password') } });
    assert.equal(start.status, 202);
    const denied = await pier(['user', 'ls', '--registry', host], { env: alice });
    assert.equal(denied.code, 1);
    oneLine(denied);
    assert.match(denied.stderr, /listing users needs an admin; alice is not one/);

    const secret = (await ok(['token', 'create', '--name', 'ci', '--scope', 'repository:team/app:push,pull', '--expires', '30d'])).trim();
    assert.match(secret, /^pier_[A-Za-z0-9_-]{43}$/);
    assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('ci', secret) } })).status, 200);
    const tokens = await ok(['token', 'ls']);
    assert.match(tokens, /^ci\tlive\trepository:team\/app:push,pull\t-\tcreated \S+\texpires \d{4}-/m);
    assert.doesNotMatch(tokens, /pier_/);
    await ok(['token', 'revoke', 'ci']);
    assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('ci', secret) } })).status, 401, 'revoked at once');
    assert.match(await ok(['token', 'ls']), /^ci\trevoked /m);

    await ok(['user', 'passwd', 'alice'], 'alice-new-password\n');
    assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'alice-password') } })).status, 401);
    assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'alice-new-password') } })).status, 200);
    assert.equal(await ok(['user', 'admin', 'alice', 'true']), 'alice is now an admin\n');
    assert.match(await ok(['user', 'ls']), /^alice\tadmin\tdevs\t/m);

    const rules = await ok(['policy', 'ls']);
    const id = /^(\d+)\tgroup:devs/m.exec(rules)![1]!;
    assert.equal(await ok(['policy', 'rm', id]), `removed rule ${id}\n`);
    assert.equal(await ok(['group', 'leave', 'devs', 'alice']), 'removed alice from devs\n');
    await ok(['group', 'rm', 'devs']);
    assert.equal(await ok(['group', 'ls']), '');
    await ok(['user', 'rm', 'alice']);
    assert.doesNotMatch(await ok(['user', 'ls']), /alice/);
    const gone = await pier(['user', 'rm', 'alice', '--registry', host], { env: root });
    assert.equal(gone.code, 1);
    oneLine(gone);

    // Every change is in the audit log, by root, from loopback.
    const audit = await pier(['audit', '--json', '--limit', '100', '--data', reg.dataDir], { env: root });
    assert.equal(audit.code, 0, audit.stderr);
    const entries = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { actor: string; action: string; target: string; ip: string });
    const actions = entries.filter((e) => e.actor === 'root').map((e) => `${e.action} ${e.target}`);
    for (const expected of ['user-add alice', 'group-add devs', 'group-member-add devs alice', 'token-create ci ', 'token-revoke ci', 'user-password alice', 'user-admin alice admin=true', `policy-remove #${id}`, 'group-member-remove devs alice', 'group-remove devs', 'user-remove alice']) {
      assert.ok(actions.some((a) => (expected.endsWith(' ') ? a.startsWith(expected) : a === expected)), `audit has ${expected}: ${actions.join('; ')}`);
    }
    assert.equal(entries.filter((e) => e.actor === 'root' && e.action === 'user-add' && e.target === 'alice').length, 1, 'each change is recorded once');
    assert.ok(entries.some((e) => e.actor === 'anonymous' && e.action === 'user-add' && e.target === 'root (admin)'), 'the first admin, added while open');
  });

  test('import-htpasswd over HTTP', async () => {
    const file = path.join(dir, 'htpasswd');
    // bcrypt of "erin-password" (htpasswd -B); an MD5 entry is skipped.
    const { execFileSync } = await import('node:child_process');
    execFileSync('htpasswd', ['-Bbc', file, 'erin', 'erin-password']);
    execFileSync('htpasswd', ['-mb', file, 'md5user', 'md5-password']);
    const r = await pier(['user', 'import-htpasswd', file, '--registry', host], { env: root });
    assert.equal(r.code, 1, 'a skipped entry is a non-zero exit');
    assert.equal(r.stdout, 'imported 1 user(s), updated 0, skipped 1\n');
    assert.match(r.stderr, /skipped md5user: not a bcrypt hash/);
    assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('erin', 'erin-password') } })).status, 200);
  });
});

describe('auth.initialAdmin', () => {
  test('creates the first admin at start from a password file or the environment, and never changes it', async () => {
    const dir = await tempDir('pier-initial-');
    const data = path.join(dir, 'data');
    const secretFile = path.join(dir, 'admin-password');
    await writeFile(secretFile, 'from-the-file-pw\n');
    try {
      let reg = await spawnTestRegistry({ dataDir: data, env: { PIER_AUTH_INITIAL_ADMIN_NAME: 'boss', PIER_AUTH_INITIAL_ADMIN_PASSWORD_FILE: secretFile } });
      try {
        assert.equal((await fetch(`${reg.url}/v2/_catalog`)).status, 401, 'not open: a user exists');
        assert.equal((await fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: basic('boss', 'from-the-file-pw') } })).status, 200);
        const env = cleanEnv(path.join(dir, 'home'));
        const login = await pier(['login', reg.host, '-u', 'boss', '--password-stdin'], { env, stdin: 'from-the-file-pw\n' });
        assert.equal(login.code, 0, login.stderr);
        const ls = await pier(['user', 'ls', '--registry', reg.host], { env });
        assert.match(ls.stdout, /^boss\tadmin\t/m);
      } finally {
        await reg.kill();
      }
      // A later start with another password leaves the existing admin alone.
      reg = await spawnTestRegistry({ dataDir: data, env: { PIER_AUTH_INITIAL_ADMIN_NAME: 'boss', PIER_AUTH_INITIAL_ADMIN_PASSWORD: 'another-password' } });
      try {
        assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('boss', 'from-the-file-pw') } })).status, 200);
        assert.equal((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('boss', 'another-password') } })).status, 401);
      } finally {
        await reg.kill();
      }
      const short = await pier(['serve', '--listen', '127.0.0.1:0', '--data', path.join(dir, 'other')], { env: { ...cleanEnv(dir), PIER_AUTH_INITIAL_ADMIN_PASSWORD: 'short' } });
      assert.equal(short.code, 1);
      oneLine(short);
      assert.match(short.stderr, /auth\.initialAdmin: the password must have at least 8 characters/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('local mode', () => {
  test('never creates a database: a folder without one is one line naming it', async () => {
    const dir = await tempDir('pier-local-');
    try {
      const env = cleanEnv(dir);
      const empty = path.join(dir, 'empty');
      const r = await pier(['user', 'add', 'carol', '--data', empty], { env, stdin: 'carol-password\n' });
      assert.equal(r.code, 1);
      oneLine(r);
      assert.match(r.stderr, new RegExp(`no Pier database in ${empty.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} .*--data DIR.*--registry HOST`));
      assert.equal(existsSync(empty), false, 'the folder is not created');

      // With no --data, in a folder with no .pier-data: nothing appears there either.
      for (const args of [['user', 'add', 'carol'], ['group', 'ls'], ['token', 'ls'], ['policy', 'ls'], ['audit']]) {
        const run = await pier(args, { env, cwd: dir, stdin: 'carol-password\n' });
        assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
        oneLine(run);
        assert.match(run.stderr, /no Pier database in .*\.pier-data/);
      }
      assert.equal(existsSync(path.join(dir, '.pier-data')), false);
      assert.deepEqual((await readdir(dir)).filter((n) => n !== 'cache'), [], 'nothing was created in the working folder');

      // A folder `pier serve` made works.
      const data = path.join(dir, 'data');
      const reg = await spawnTestRegistry({ dataDir: data });
      await reg.kill();
      const add = await pier(['user', 'add', 'carol', '--data', data], { env, stdin: 'carol-password\n' });
      assert.equal(add.code, 0, add.stderr);
      const both = await pier(['user', 'ls', '--data', data, '--registry', '127.0.0.1:1'], { env });
      assert.equal(both.code, 2);
      assert.match(both.stderr, /give --registry or --data\/--config, not both/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
