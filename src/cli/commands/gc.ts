import { formatBytes } from '../../client/index.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient } from './client-flags.js';
import { adminRegistry, outputFormat, pierApi } from './lifecycle-flags.js';

export const gc: Command = {
  name: 'gc',
  summary: 'Collect garbage on a running registry (admin)',
  usage: `Usage: pier gc [REGISTRY] [--dry-run]

Runs online garbage collection on the registry (default: PIER_REGISTRY, else
127.0.0.1:5000) while it keeps serving pushes and pulls: deletes untagged
manifests outside every tag's kept history, and blobs nothing references,
once older than gc.gracePeriod. Prints what it freed.

Options:
  --dry-run           report what would be freed, delete nothing
  --format text|json
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('gc', args, { 'dry-run': { type: 'boolean' }, format: { type: 'string' }, ...connectionFlags });
    if (positionals.length > 1) throw new UsageError("gc: takes at most one REGISTRY (see 'pier help gc')");
    const format = outputFormat(values.format, 'gc');
    const client = makeClient(io, values);
    try {
      const r = await pierApi(client, adminRegistry(io, positionals[0])).gc(values['dry-run'] ?? false);
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return 0;
      }
      const verb = r.dryRun ? 'would free' : 'freed';
      io.stdout.write(
        `GC ${verb} ${formatBytes(r.blobs.bytesFreed, 'docker')}: ${r.blobs.deleted} of ${r.blobs.scanned} blobs, ${r.manifests.deleted} of ${r.manifests.scanned} manifests, ${r.links.deleted} repository links (${r.durationMs} ms)\n`,
      );
      if (r.blobs.skippedRecent + r.blobs.skippedInUse > 0) io.stdout.write(`Kept for now: ${r.blobs.skippedRecent} blobs within the grace period, ${r.blobs.skippedInUse} in use by a push\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
