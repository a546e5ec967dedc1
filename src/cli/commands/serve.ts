import { setFlagsFromString } from 'node:v8';
import type { Command } from '../command.js';
import { parseFlags } from '../command.js';

/**
 * V8 grows the young generation (new space) from 1 MiB up to 16 MiB per
 * semi-space while start-up keeps objects alive (module code, migrations,
 * Fastify's route tables), and never gives it back: ~13 MB of a registry at
 * rest. Start-up holds its growth factor at 1 (no growth); once listening, the
 * default (2) is back, so a loaded registry grows it as before.
 * docs/decisions/0125-memory-at-rest.md
 */
const HOLD_YOUNG_GENERATION = '--semi-space-growth-factor=1';
const DEFAULT_YOUNG_GENERATION = '--semi-space-growth-factor=2';

export const serve: Command = {
  name: 'serve',
  summary: 'Run the registry',
  usage: `Usage: pier serve [--listen HOST:PORT] [--data DIR] [--config FILE] [--insecure-open]

Runs an OCI Distribution 1.1 registry.

Options:
  --listen HOST:PORT  address to listen on (default 127.0.0.1:5000; env PIER_LISTEN)
  --data DIR          where blobs and the SQLite database live (default ./.pier-data; env PIER_DATA)
  --config FILE       YAML configuration file (env PIER_CONFIG)
  --insecure-open     with no users, serve everyone everything even on a non-loopback
                      address (env PIER_AUTH_INSECURE_OPEN=true); add users instead:
                      pier user add NAME

Every configuration key can also be set by environment variable: see README.md.`,
  async run(args, io) {
    const { values } = parseFlags('serve', args, {
      listen: { type: 'string' },
      data: { type: 'string' },
      config: { type: 'string' },
      'insecure-open': { type: 'boolean' },
    });
    setFlagsFromString(HOLD_YOUNG_GENERATION);
    const [{ loadConfig }, { startRegistry }] = await Promise.all([import('../../registry/config.js'), import('../../registry/server.js')]);
    const config = await loadConfig({
      file: values.config ?? io.env.PIER_CONFIG,
      env: io.env,
      flags: { listen: values.listen, data: values.data },
      ...(values['insecure-open'] ? { overrides: { auth: { insecureOpen: true } } } : {}),
    });
    // Everything the registry creates (database, keys, uploads, blobs) is the service user's alone.
    process.umask(0o077);
    let registry;
    try {
      registry = await startRegistry(config);
    } finally {
      setFlagsFromString(DEFAULT_YOUNG_GENERATION);
    }
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        registry.log.info({ signal }, 'shutting down; finishing in-flight requests');
        registry.close().then(resolve, (err: unknown) => {
          registry.log.error({ err }, 'error during shutdown');
          resolve();
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};
