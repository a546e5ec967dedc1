import type { ScanResponse } from '../../client/pier-api.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';
import { outputFormat, pierApi } from './lifecycle-flags.js';

/** One line: status and counts by severity (also used by pier inspect). */
export function scanSummary(s: ScanResponse): string {
  if (s.status !== 'done') return `${s.status}${s.error ? ` (${s.error})` : ''}`;
  const c = s.counts;
  return `${c.critical} critical, ${c.high} high, ${c.medium} medium, ${c.low} low, ${c.unknown} unknown (${s.packages} packages${s.database.generation === 0 ? ', no vulnerability database imported' : ''})`;
}

export const scan: Command = {
  name: 'scan',
  summary: 'Scan an image in a registry for known vulnerabilities now, and show the findings',
  usage: `Usage: pier scan REF

Asks the registry to scan the image now (its inventory, matched against the
imported OSV database; see pier vulndb) and prints the findings: package,
installed and fixed versions, IDs, by severity.

Options:
  --format text|json
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('scan', args, { format: { type: 'string' }, ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("scan: needs REF (see 'pier help scan')");
    const ref = parseImageReference(positionals[0], 'REF', 'scan');
    const format = outputFormat(values.format, 'scan');
    const client = makeClient(io, values);
    try {
      const s = await pierApi(client, ref).scan(ref.repository, ref.digest?.toString() ?? ref.tag ?? 'latest', true);
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return 0;
      }
      io.stdout.write(`${ref.repository}@${s.digest}\n${s.os ? `OS:       ${s.os.prettyName ?? `${s.os.id} ${s.os.versionId}`}\n` : ''}Findings: ${scanSummary(s)}\n`);
      if (s.findings.length) {
        io.stdout.write(`\n${'SEVERITY'.padEnd(9)}  ${'ID'.padEnd(20)}  ${'PACKAGE'.padEnd(24)}  ${'INSTALLED'.padEnd(20)}  FIXED\n`);
        for (const f of s.findings) io.stdout.write(`${f.severity.padEnd(9)}  ${f.id.padEnd(20)}  ${(f.source ? `${f.package} (${f.source})` : f.package).padEnd(24)}  ${f.installed.padEnd(20)}  ${f.fixed ?? '-'}\n`);
      }
      for (const e of s.inventoryErrors ?? []) io.stderr.write(`warning: not read (its packages are not scanned): ${e}\n`);
      if (s.database.stale) io.stderr.write(`warning: the vulnerability database is ${s.database.generation === 0 ? 'not imported' : `from ${s.database.databaseDate ?? '?'}`} (older than scanning.maxDatabaseAge)\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
