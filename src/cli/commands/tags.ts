import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';

export const tags: Command = {
  name: 'tags',
  summary: "List a repository's tags",
  usage: `Usage: pier tags REPO

Prints every tag of REPO (e.g. 127.0.0.1:5000/app), one per line.

Options:
  --format text|json
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('tags', args, { format: { type: 'string' }, ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("tags: needs REPO (see 'pier help tags')");
    const ref = parseImageReference(positionals[0], 'REPO', 'tags');
    const client = makeClient(io, values);
    try {
      const list = await client.tags(ref);
      io.stdout.write(values.format === 'json' ? `${JSON.stringify(list)}\n` : list.map((t) => `${t}\n`).join(''));
      return 0;
    } finally {
      await client.close();
    }
  },
};
