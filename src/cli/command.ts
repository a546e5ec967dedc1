/**
 * The shape of a CLI command. Commands are thin: they parse their
 * arguments, call the library, and print. `main` turns errors into exit codes.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PierError } from '../oci/pier-error.js';
import type { Scope } from './scope.js';

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export interface Command {
  name: string;
  /** One line for `pier help`. */
  summary: string;
  /** Full usage text for `pier help NAME` and `pier NAME --help`. */
  usage: string;
  /** Runs the command; what it registers in `scope` is closed by `main` when it returns or throws. */
  run(args: string[], io: Io, scope: Scope): Promise<number>;
}

/**
 * A mistake by the user (bad flag, missing argument, unreachable registry):
 * printed as one line, exit code `exitCode`, never a stack trace.
 */
export class UsageError extends PierError {
  readonly code = 'ERR_USAGE';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** node:util parseArgs with strict checking and errors turned into UsageError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: string[],
  options: T,
): { values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true }>>['values']; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message} (see 'pier help ${command}')`);
  }
}
