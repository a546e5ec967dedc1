/**
 * The JSON failure line of a command run with `--format json`. Kept apart
 * from the client's flags so that `main` (loaded by every command) does not
 * load the push client.
 */

/** Whether the command line asks for `--format json` (`--format json` or `--format=json`, before `--`). */
export function wantsJson(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return false;
    if (a === '--format=json' || (a === '--format' && args[i + 1] === 'json')) return true;
  }
  return false;
}

/**
 * The JSON event line `main` writes on stdout when a command run with
 * `--format json` fails (the one line on stderr is written too):
 * `{"type":"error","command":"push","code":"ERR_TLS","message":"…","exitCode":1}`,
 * with `status` when the error came from an HTTP answer.
 */
export function failureEvent(command: string, args: readonly string[], err: unknown, message: string, exitCode: number): string | undefined {
  if (!wantsJson(args)) return undefined;
  const code = (err as { code?: unknown } | null)?.code;
  const status = (err as { status?: unknown } | null)?.status;
  return `${JSON.stringify({
    type: 'error',
    command,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof status === 'number' ? { status } : {}),
    message,
    exitCode,
  })}\n`;
}
