import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient } from './client-flags.js';
import { adminRegistry, outputFormat, pierApi, short } from './lifecycle-flags.js';

export const retention: Command = {
  name: 'retention',
  summary: 'Apply the retention rules now, or show what they would delete (admin)',
  usage: `Usage: pier retention [REGISTRY] --dry-run|--apply

Evaluates the registry's retention rules (retention.rules) and lists the tags
they do not keep; with --apply, deletes them (each deletion is recorded in the
tag's history with actor "retention"; the next GC frees the space).

Options:
  --dry-run           only list what would be deleted
  --apply             delete
  --format text|json
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('retention', args, { 'dry-run': { type: 'boolean' }, apply: { type: 'boolean' }, format: { type: 'string' }, ...connectionFlags });
    if (positionals.length > 1) throw new UsageError("retention: takes at most one REGISTRY (see 'pier help retention')");
    if (values['dry-run'] === values.apply) throw new UsageError('retention: give exactly one of --dry-run or --apply');
    const format = outputFormat(values.format, 'retention');
    const client = makeClient(io, values);
    try {
      const r = await pierApi(client, adminRegistry(io, positionals[0])).retention(values.apply ?? false);
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return 0;
      }
      for (const d of r.deleted) io.stdout.write(`${r.dryRun ? 'would delete' : 'deleted'}  ${d.repository}:${d.tag}  ${short(d.digest)}  pushed ${d.pushedAt}${d.pulledAt ? `, pulled ${d.pulledAt}` : ''}\n`);
      io.stdout.write(`${r.deleted.length} tag(s) ${r.dryRun ? 'would be deleted' : 'deleted'}, ${r.kept} kept\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
