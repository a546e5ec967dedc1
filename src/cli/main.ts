/**
 * The `pier` entry point: finds the command, runs it, and turns every error
 * into one line on stderr and an exit code. Set PIER_DEBUG=1 for stacks.
 *
 * Each run gets a {@link Scope}: what the command opens (clients, sources,
 * worker threads, renderers) it registers there, and `main` closes it when
 * the command returns or throws, so the process exits by itself on every
 * path; nothing calls `process.exit`.
 */
import { commands, type CommandEntry } from './commands/index.js';
import type { Command, Io } from './command.js';
import { describeError } from './errors.js';
import { failureEvent } from './failure-event.js';
import { withExamples } from './examples.js';
import { Scope } from './scope.js';

const defaultIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };

/** How long after its command has finished a process may still be alive before it says why. */
const LINGER_MS = 10_000;

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
    "Run 'pier help COMMAND' for a command's options, 'pier --version' for the version.",
  ].join('\n');
}

function usageOf(command: Command): string {
  return withExamples(command.name, command.usage);
}

/**
 * `pier NAME: message`, where a message that already starts with the
 * command's name (`push: needs SOURCE`, `user add: missing NAME`) is not
 * prefixed again.
 */
export function errorLine(name: string, message: string): string {
  const own = message.startsWith(`${name}: `) || new RegExp(`^${name} [a-z][a-z-]*: `).test(message);
  return own ? `pier ${message}` : `pier ${name}: ${message}`;
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === '-v') return run(find('version')!, [], io);
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    const entry = topic ? find(topic) : undefined;
    if (topic && !entry) {
      io.stderr.write(`pier: unknown command '${topic}' (see 'pier help')\n`);
      return 2;
    }
    io.stdout.write(`${entry ? usageOf(await entry.load()) : helpText()}\n`);
    return first === undefined ? 2 : 0;
  }
  const entry = find(first);
  if (!entry) {
    io.stderr.write(`pier: unknown command '${first}' (see 'pier help')\n`);
    return 2;
  }
  return run(entry, rest, io);
}

function find(name: string): CommandEntry | undefined {
  return commands.find((c) => c.name === name);
}

async function run(entry: CommandEntry, args: string[], io: Io): Promise<number> {
  const command = await entry.load();
  if (args.includes('--help') || args.includes('-h') || (entry.subcommands && args.length === 0)) {
    // A command with subcommands, alone, lists them.
    io.stdout.write(`${usageOf(command)}\n`);
    return 0;
  }
  const scope = new Scope();
  let code: number;
  try {
    code = await command.run(args, io, scope);
  } catch (err) {
    code = report(entry.name, err, io, args);
  }
  try {
    await scope.close();
  } catch (err) {
    if (code === 0) code = report(entry.name, err, io, args);
  }
  if (io === defaultIo) watchLinger(entry.name, io);
  return code;
}

function report(name: string, err: unknown, io: Io, args: string[]): number {
  const { message, exitCode } = describeError(err);
  io.stderr.write(`${errorLine(name, message)}\n`);
  // With --format json the failure is also a JSON event on stdout.
  const event = failureEvent(name, args, err, message, exitCode);
  if (event) io.stdout.write(event);
  if (io.env.PIER_DEBUG) io.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  return exitCode;
}

/**
 * A diagnosis, not a cure: if something still holds the process
 * {@link LINGER_MS} after the command is done, say what (the timer is
 * unref'd, so it fires only then).
 */
function watchLinger(name: string, io: Io): void {
  const timer = setTimeout(() => {
    const held = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    io.stderr.write(`pier ${name}: finished ${LINGER_MS / 1000} s ago but still held open by ${held.join(', ') || 'nothing visible'}; this is a bug, please report it\n`);
  }, LINGER_MS);
  timer.unref();
}
