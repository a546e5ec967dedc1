import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference, positiveInt } from './client-flags.js';
import { outputFormat, pierApi, short } from './lifecycle-flags.js';

export const history: Command = {
  name: 'history',
  summary: "Show every change of a tag (who moved it, when, from what to what)",
  usage: `Usage: pier history REPO:TAG

Prints the tag's changes, newest first: create, move, delete and rollback,
with time, actor and old -> new digest; then its versions, marking those the
registry keeps (history.keep) and can roll back to.

Options:
  --limit N           show at most N changes
  --format text|json
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('history', args, { limit: { type: 'string' }, format: { type: 'string' }, ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("history: needs REPO:TAG (see 'pier help history')");
    const ref = parseImageReference(positionals[0], 'REPO:TAG', 'history');
    if (!ref.tag) throw new UsageError('history: name a tag (REPO:TAG), not a digest');
    const format = outputFormat(values.format, 'history');
    const client = makeClient(io, values);
    try {
      const h = await pierApi(client, ref).history(ref.repository, ref.tag, positiveInt(values.limit, '--limit'));
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify(h, null, 2)}\n`);
        return 0;
      }
      io.stdout.write(`${ref.repository}:${ref.tag} -> ${h.current ?? '(deleted)'}\n\n`);
      io.stdout.write(`${'WHEN'.padEnd(24)}  ${'ACTION'.padEnd(8)}  ${'ACTOR'.padEnd(16)}  CHANGE\n`);
      for (const c of h.changes) {
        io.stdout.write(`${c.at.padEnd(24)}  ${c.action.padEnd(8)}  ${c.actor.padEnd(16)}  ${short(c.oldDigest)} -> ${short(c.newDigest)}\n`);
      }
      io.stdout.write(`\nVersions (newest first; * = kept, can be rolled back to):\n`);
      h.versions.forEach((v, i) => io.stdout.write(`  ${v.kept ? '*' : ' '} ${String(i).padStart(2)}  ${v.digest}  since ${v.since}\n`));
      return 0;
    } finally {
      await client.close();
    }
  },
};
