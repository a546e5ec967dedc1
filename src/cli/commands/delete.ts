import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete an image manifest from a registry',
  usage: `Usage: pier delete REF

Deletes the manifest REF names (a tag is resolved to its digest first, so
every tag pointing at it goes too, as the distribution API defines).

Options:
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('delete', args, { ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("delete: needs REF (see 'pier help delete')");
    const ref = parseImageReference(positionals[0], 'REF', 'delete');
    const client = makeClient(io, values);
    try {
      const digest = await client.delete(ref);
      io.stdout.write(`Deleted: ${digest.toString()}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
