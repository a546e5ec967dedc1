import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient } from './client-flags.js';
import { adminRegistry, pierApi } from './lifecycle-flags.js';

export const webhook: Command = {
  name: 'webhook',
  summary: 'Send a sample event to a configured webhook (admin)',
  usage: `Usage: pier webhook test NAME [--registry HOST]

Asks the registry (default: PIER_REGISTRY, else 127.0.0.1:5000) to send a
signed sample event of type "test" to the webhook NAME now, and prints the
receiver's answer. The attempt appears in the webhook's delivery log.

Options:
  --registry HOST
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('webhook', args, { registry: { type: 'string' }, ...connectionFlags });
    if (positionals[0] !== 'test' || positionals.length !== 2) throw new UsageError("webhook: usage is 'pier webhook test NAME' (see 'pier help webhook')");
    const name = positionals[1]!;
    const client = makeClient(io, values);
    try {
      const r = await pierApi(client, adminRegistry(io, values.registry)).webhookTest(name);
      if (r.ok) {
        io.stdout.write(`Webhook ${name}: delivered (HTTP ${r.status}, ${r.ms} ms)\n`);
        return 0;
      }
      io.stderr.write(`pier webhook: ${name}: not delivered: ${r.error ?? `HTTP ${r.status}`}\n`);
      return 1;
    } finally {
      await client.close();
    }
  },
};
