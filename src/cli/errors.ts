/** Turns any error into the one line `main` prints, and an exit code. */
import { UsageError } from './command.js';

export function describeError(err: unknown): { message: string; exitCode: number } {
  if (err instanceof UsageError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof Error) {
    const parts = [err.message];
    let cause: unknown = err.cause;
    while (cause instanceof Error && parts.length < 4) {
      if (!parts.some((p) => p.includes(cause instanceof Error ? cause.message : ''))) parts.push(cause.message);
      cause = cause.cause;
    }
    const code = (err as { code?: unknown }).code;
    const unexpected = !(typeof code === 'string');
    return { message: parts.join(': ') + (unexpected ? ' (unexpected error; PIER_DEBUG=1 shows details)' : ''), exitCode: 1 };
  }
  return { message: String(err), exitCode: 1 };
}
