/** Plumbing shared by the lifecycle commands (history, rollback, gc, retention, webhook): the /pier/v1 API client. */
import { PierApi } from '../../client/pier-api.js';
import type { Client } from '../../client/index.js';
import type { Io } from '../command.js';
import { UsageError } from '../command.js';
import { registryArgument } from './client-flags.js';

/** The registry an admin command talks to: the argument, else PIER_REGISTRY, else 127.0.0.1:5000. */
export function adminRegistry(io: Io, value: string | undefined): { registry: string; apiHost: string } {
  return registryArgument(value ?? io.env.PIER_REGISTRY ?? '127.0.0.1:5000');
}

export function pierApi(client: Client, ref: { registry: string; apiHost: string }): PierApi {
  return new PierApi(client.registry(ref));
}

export function outputFormat(value: string | undefined, command: string): 'text' | 'json' {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new UsageError(`${command}: --format must be text or json, not ${JSON.stringify(value)}`);
}

export function short(digest: string | undefined | null): string {
  return digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '-';
}
