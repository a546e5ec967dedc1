/** The `pier` entry point: the lazy command table, help and unknown commands. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commands } from '../src/cli/commands/index.js';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/command.js';

function capture(): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const io = {
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: (s: string) => ((err += s), true) },
    stdin: process.stdin,
    env: {},
  } as unknown as Io;
  return { io, out: () => out, err: () => err };
}

test('every entry loads the command it names, with the same summary', async () => {
  for (const entry of commands) {
    const command = await entry.load();
    assert.equal(command.name, entry.name);
    assert.equal(command.summary, entry.summary, `summary of ${entry.name}`);
  }
});

test('help lists every command; an unknown command is one line and exit 2', async () => {
  const help = capture();
  assert.equal(await main(['help'], help.io), 0);
  for (const entry of commands) assert.ok(help.out().includes(entry.name));
  const unknown = capture();
  assert.equal(await main(['nope'], unknown.io), 2);
  assert.equal(unknown.err().trim().split('\n').length, 1);
  const usage = capture();
  assert.equal(await main(['push', '--help'], usage.io), 0);
  assert.match(usage.out(), /Usage: pier push/);
});
