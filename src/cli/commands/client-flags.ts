/** Flags and plumbing shared by the client commands (login, push, copy, ...). */
import { ImageReference } from '../../oci/index.js';
import { parseBytes } from '../../shared/bytes.js';
import { Client, type ClientOptions } from '../../client/client.js';
import { createRenderer, type ProgressFormat, type Renderer } from '../../client/progress.js';
import { ClientError } from '../../client/errors.js';
import { UsageError, type Io } from '../command.js';

export const connectionFlags = {
  insecure: { type: 'boolean' },
  'ca-file': { type: 'string', multiple: true },
} as const;

export const CONNECTION_USAGE = `  --insecure          fall back to plain HTTP when the registry does not speak TLS, as for
                      loopback ones (or set PIER_INSECURE_REGISTRIES=host:port,...)
  --ca-file FILE      trust this extra CA bundle (SSL_CERT_FILE is honoured too)`;

export function parseImageReference(value: string | undefined, what: string, command: string): ImageReference {
  if (!value) throw new UsageError(`${command}: missing ${what} (see 'pier help ${command}')`);
  try {
    return ImageReference.parse(value);
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

/** A registry named on the command line (`host[:port]`, a URL, or nothing for Docker Hub). */
export function registryArgument(value: string | undefined): { registry: string; apiHost: string } {
  let host = (value ?? 'docker.io').replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = 'docker.io';
  return { registry: host, apiHost: host === 'docker.io' ? 'registry-1.docker.io' : host };
}

export function makeClient(io: Io, values: { insecure?: boolean; 'ca-file'?: string[] }, extra: Partial<ClientOptions> = {}): Client {
  return new Client({
    env: io.env,
    insecure: values.insecure ? true : undefined,
    caFiles: values['ca-file'],
    onNotice: (line) => io.stderr.write(`${line}\n`),
    ...extra,
  });
}

export function progressFormat(io: Io, format: string | undefined, quiet: boolean | undefined): ProgressFormat {
  if (quiet) return 'quiet';
  if (format === undefined || format === 'auto') return io.stderr.isTTY ? 'tty' : 'plain';
  if (format === 'json' || format === 'plain' || format === 'tty') return format;
  throw new UsageError(`--format must be auto, tty, plain or json, not ${JSON.stringify(format)}`);
}

/** Progress goes to stdout for json (machine-read), to stderr otherwise. */
export function renderer(io: Io, format: ProgressFormat): Renderer {
  return createRenderer(format, format === 'json' ? io.stdout : (io.stderr));
}

export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = parseBytes(value);
  if (n === undefined) throw new UsageError(`${flag} must be a positive number, not ${JSON.stringify(value)}`);
  if (n <= 0) throw new UsageError(`${flag} must be a positive number`);
  return n;
}

/** Runs `fn` with an AbortSignal tied to Ctrl-C / SIGTERM (a second Ctrl-C exits at once). */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let count = 0;
  const onSignal = () => {
    count++;
    if (count > 1) process.exit(130);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(ac.signal);
  } catch (err) {
    // Ctrl-C: one line and 130, like a shell; the journal lets the next run resume.
    if (ac.signal.aborted && err instanceof ClientError && err.code === 'ERR_ABORTED') {
      throw new UsageError('interrupted; run the same command again to resume', 130);
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export { failureEvent, wantsJson } from '../failure-event.js';
