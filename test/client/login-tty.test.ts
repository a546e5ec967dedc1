/**
 * `pier login` on a real terminal (a pty from util-linux `script`): it asks
 * for the user name and the password, the password is not echoed, the
 * credentials land in DOCKER_CONFIG, and a push with them works. Answers are
 * typed only once their prompt is on the screen, as a person would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, PIER, USER, isolatedEnv, runPier, startTarget, type Target } from './harness.js';
import { generateLayers, writeOciLayout } from './image-files.js';

let work: Awaited<ReturnType<typeof isolatedEnv>>;
let target: Target;

before(async () => {
  work = await isolatedEnv();
  target = await startTarget('htpasswd');
});
after(async () => {
  await target?.stop();
  await work?.cleanup();
});

/** Runs `command` on a pty; each answer is typed when its prompt appears. Returns the screen and exit code. */
function onTerminal(command: string, answers: { after: string; type: string }[], env: NodeJS.ProcessEnv): Promise<{ screen: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let next = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const onOutput = (d: Buffer) => {
      screen += d.toString();
      const a = answers[next];
      if (a && screen.includes(a.after)) {
        next++;
        // A moment for the prompt to switch the terminal mode after writing the question.
        setTimeout(() => child.stdin.write(a.type), 100);
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ screen, code });
    });
  });
}

describe('pier login on a terminal', { timeout: 60_000 }, () => {
  test('prompts, does not echo the password, stores the credentials', async () => {
    const { screen, code } = await onTerminal(
      `${process.execPath} ${PIER} login ${target.host}`,
      [
        { after: 'Username:', type: `${USER}\r` },
        { after: 'Password:', type: `${PASSWORD}\r` },
      ],
      work.env,
    );
    assert.equal(code, 0, screen);
    assert.ok(!screen.includes(PASSWORD), `the password appeared on the screen: ${JSON.stringify(screen)}`);
    assert.equal(screen.split(USER).length - 1, 1, `the user name is echoed once: ${JSON.stringify(screen)}`);
    assert.match(screen, /Username: [^\r\n]+\r?\nPassword: /, `one line per prompt: ${JSON.stringify(screen)}`);
    assert.match(screen, /Login Succeeded/i);
    const config = JSON.parse(await readFile(join(work.env.DOCKER_CONFIG!, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(Buffer.from(config.auths[target.host]!.auth, 'base64').toString(), `${USER}:${PASSWORD}`);

    const layers = await generateLayers(join(work.dir, 'layers'), [{ size: 100_000 }]);
    await writeOciLayout(join(work.dir, 'layout'), layers, { tag: 'v1' });
    const push = await runPier(['push', '--quiet', `oci:${join(work.dir, 'layout')}:v1`, `${target.host}/tty/a:v1`], { env: work.env });
    assert.equal(push.code, 0, push.stderr);
  });

  test('Ctrl-C at the password prompt cancels with exit 130 and stores nothing new', async () => {
    const env = { ...work.env, DOCKER_CONFIG: join(work.dir, 'docker-cancel') };
    const { code } = await onTerminal(`${process.execPath} ${PIER} login -u ${USER} ${target.host}`, [{ after: 'Password:', type: '\u0003' }], env);
    assert.equal(code, 130);
    await assert.rejects(readFile(join(env.DOCKER_CONFIG, 'config.json')));
  });
});
