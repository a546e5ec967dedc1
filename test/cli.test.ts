/**
 * The `pier` entry point as users run it: the built bin/pier.js as a child
 * process. Help, version, examples, subcommand lists, one-line errors with
 * one prefix, and bash completion run in a real bash.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { commands } from '../src/cli/commands/index.js';
import { EXAMPLES } from '../src/cli/examples.js';
import { isolatedEnv, runPier } from './client/harness.js';

let work: Awaited<ReturnType<typeof isolatedEnv>>;
before(async () => {
  work = await isolatedEnv();
});
after(async () => {
  await work?.cleanup();
});

const version = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** `pier ARGS` run in the temp folder (so a command that wrongly creates files is seen). */
function pier(args: string[]) {
  return runPier(args, { env: work.env, timeoutMs: 30_000, cwd: work.dir });
}

/** Runs the completion function for a command line (`pier push --j`) in bash; returns the candidates. */
function complete(script: string, line: string): Promise<string[]> {
  const words = line.split(' ');
  const program = `${script}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_pier; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--norc', '--noprofile', '-c', program], { cwd: work.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.split('\n').filter(Boolean));
      else reject(new Error(`bash exited ${code}: ${err}`));
    });
  });
}

describe('pier (the built command)', { timeout: 120_000 }, () => {
  test('every entry loads the command it names, with the same summary', async () => {
    for (const entry of commands) {
      const command = await entry.load();
      assert.equal(command.name, entry.name);
      assert.equal(command.summary, entry.summary, `summary of ${entry.name}`);
    }
  });

  test('help lists every command; an unknown command is one line and exit 2', async () => {
    const [help, unknown, usage, none] = await Promise.all([pier(['help']), pier(['nope']), pier(['push', '--help']), pier([])]);
    assert.equal(help.code, 0);
    for (const entry of commands) assert.match(help.stdout, new RegExp(`^  ${entry.name} `, 'm'));
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, "pier: unknown command 'nope' (see 'pier help')\n");
    assert.equal(usage.code, 0);
    assert.match(usage.stdout, /^Usage: pier push/);
    assert.equal(none.code, 2, 'pier alone prints the help and fails, as a script calling it wrongly should');
    assert.match(none.stdout, /Commands:/);
  });

  test('pier --version, -v and version print the version; pier help version explains it', async () => {
    const runs = await Promise.all([pier(['--version']), pier(['-v']), pier(['version'])]);
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `pier ${version}\n`);
      assert.equal(r.stderr, '');
    }
    const help = await pier(['help', 'version']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: pier version\n {7}pier --version \| -v/);
  });

  test("every command's help has an example", async () => {
    // Every command has examples in the table help prints from; three are run as users see them.
    for (const c of commands) assert.ok(EXAMPLES[c.name]?.some((e) => e.includes('pier ')), `an example for ${c.name}`);
    const helps = await Promise.all(['push', 'user', 'completion'].map(async (name) => ({ name, run: await pier(['help', name]) })));
    for (const { name, run } of helps) {
      assert.equal(run.code, 0, `${name}: ${run.stderr}`);
      const shown = run.stdout.split(/\nExamples?:\n/)[1];
      assert.ok(shown, `pier help ${name} shows examples`);
      for (const e of EXAMPLES[name]!) assert.ok(shown.includes(`  ${e}`), `pier help ${name} shows ${e}`);
    }
  });

  test('user, group, token and policy alone list their subcommands and touch nothing', async () => {
    const expected: Record<string, string[]> = {
      user: ['add', 'passwd', 'rm', 'ls', 'import-htpasswd'],
      group: ['add', 'rm', 'ls', 'join', 'leave'],
      token: ['create', 'ls', 'revoke'],
      policy: ['add', 'ls', 'rm'],
    };
    const before = await readdir(work.dir);
    for (const [name, subs] of Object.entries(expected)) {
      const r = await pier([name]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, '');
      for (const sub of subs) assert.match(r.stdout, new RegExp(`pier ${name} ${sub}\\b`), `pier ${name} lists ${sub}`);
    }
    assert.deepEqual(await readdir(work.dir), before, 'no database or folder was created');
  });

  test('errors are one line with one command prefix, never a stack', async () => {
    const cases: [string[], RegExp][] = [
      [['push'], /^pier push: needs SOURCE \[DEST\]/],
      [['push', '--bogus'], /^pier push: Unknown option '--bogus'/],
      [['push', '--compression', 'zstd', 'oci:/nonexistent', 'x/y'], /^pier push: --compression must be gzip or none/],
      [['push', 'oci:/nonexistent/layout', '127.0.0.1:1/x:v1'], /^pier push: oci:\/nonexistent\/layout is not an OCI image layout/],
      [['push', 'oci:/nonexistent/layout', 'UPPER/x:v1'], /^pier push: /],
      [['version', 'extra'], /^pier version: takes no arguments/],
      [['completion', 'fish'], /^pier completion: name a shell: bash/],
      [['tags'], /^pier tags: /],
    ];
    const runs = await Promise.all(cases.map(([args]) => pier(args)));
    for (const [i, r] of runs.entries()) {
      const [args, pattern] = cases[i]!;
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /^pier (\S+): \1[: ]/, `no doubled prefix: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  test('pier completion bash completes commands, subcommands, flags and push sources in bash', async () => {
    const r = await pier(['completion', 'bash']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /complete -F _pier pier/);
    assert.deepEqual((await complete(r.stdout, 'pier pu')).sort(), ['pull', 'push']);
    assert.deepEqual((await complete(r.stdout, 'pier user a')).sort(), ['add', 'admin']);
    assert.deepEqual(await complete(r.stdout, 'pier push --j'), ['--jobs']);
    assert.deepEqual(await complete(r.stdout, 'pier push docker-a'), ['docker-archive:']);
    assert.deepEqual(await complete(r.stdout, 'pier help ver'), ['version']);
    assert.deepEqual(await complete(r.stdout, 'pier --ver'), ['--version']);
  });
});
