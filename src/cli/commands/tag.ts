import { isTag } from '../../oci/index.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';

export const tag: Command = {
  name: 'tag',
  summary: 'Tag an image in a registry (no blob is sent)',
  usage: `Usage: pier tag REF NEWTAG

Points NEWTAG, in REF's repository, at the manifest REF names.

Options:
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('tag', args, { ...connectionFlags });
    if (positionals.length !== 2) throw new UsageError("tag: needs REF NEWTAG (see 'pier help tag')");
    const ref = parseImageReference(positionals[0], 'REF', 'tag');
    const newTag = positionals[1]!;
    if (!isTag(newTag)) throw new UsageError(`tag: invalid tag ${JSON.stringify(newTag)}`);
    const client = makeClient(io, values);
    try {
      const r = await client.tag(ref, newTag);
      io.stdout.write(`${newTag}: digest: ${r.digest.toString()} size: ${r.size}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
