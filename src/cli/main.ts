/**
 * The `pier` entry point: finds the command, runs it, and turns every error
 * into one line on stderr and an exit code. Set PIER_DEBUG=1 for stacks.
 */
import { commands } from './commands/index.js';
import type { Io } from './command.js';
import { describeError } from './errors.js';

const defaultIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };

function helpText(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'pier: an OCI registry and a daemonless push client',
    '',
    'Usage: pier COMMAND [OPTIONS]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'pier help COMMAND' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    const command = topic ? commands.find((c) => c.name === topic) : undefined;
    if (topic && !command) {
      io.stderr.write(`pier: unknown command '${topic}'\n`);
      return 2;
    }
    io.stdout.write(`${command ? (await command.load()).usage : helpText()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    io.stdout.write(`pier ${await version()}\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.stderr.write(`pier: unknown command '${name}' (see 'pier help')\n`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    const { message, exitCode } = describeError(err);
    io.stderr.write(`pier ${name}: ${message}\n`);
    if (io.env.PIER_DEBUG) io.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    return exitCode;
  }
}

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
