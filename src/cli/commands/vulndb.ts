import { readOsvRecords } from '../../client/osv-files.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient } from './client-flags.js';
import { adminRegistry, outputFormat, pierApi } from './lifecycle-flags.js';

export const vulndb: Command = {
  name: 'vulndb',
  summary: 'Import an OSV vulnerability database into a running registry (admin), or show its state',
  usage: `Usage: pier vulndb import PATH [--registry HOST]
       pier vulndb status [--registry HOST]

import: reads OSV records from PATH — a directory tree of OSV JSON files
(read recursively), per-ecosystem all.zip exports, or one such file — and
sends them to the registry (default: PIER_REGISTRY, else 127.0.0.1:5000).
The registry records the database's date (its newest record) and matches
every stored image again from its stored inventory. Nothing is downloaded.
Warns when the database is older than scanning.maxDatabaseAge.

Options:
  --registry HOST     the registry (default: PIER_REGISTRY, else 127.0.0.1:5000)
  --format text|json
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('vulndb', args, { registry: { type: 'string' }, format: { type: 'string' }, ...connectionFlags });
    const [sub, pathArg, ...rest] = positionals;
    if (rest.length || (sub === 'import' && !pathArg) || (sub === 'status' && pathArg) || (sub !== 'import' && sub !== 'status')) throw new UsageError("vulndb: use 'pier vulndb import PATH' or 'pier vulndb status' (see 'pier help vulndb')");
    const format = outputFormat(values.format, 'vulndb');
    const client = makeClient(io, values);
    try {
      const api = pierApi(client, adminRegistry(io, values.registry));
      if (sub === 'status') {
        const s = await api.vulnDb();
        if (format === 'json') io.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        else io.stdout.write(s.generation === 0 ? 'No vulnerability database imported\n' : `Database of ${s.databaseDate}: ${s.records} records, imported ${s.importedAt} (generation ${s.generation})${s.stale ? ', STALE' : ''}\n`);
        return 0;
      }
      let accepted = 0;
      const rejected: { id?: string; error: string }[] = [];
      const read = await readOsvRecords(pathArg!, async (records) => {
        const r = await api.vulnDbRecords(records);
        accepted += r.accepted;
        rejected.push(...r.rejected);
      });
      if (read.records === 0) throw new UsageError(`vulndb: no OSV records (*.json, *.zip) under ${pathArg!}`);
      const state = await api.vulnDbFinish(read.newest ?? new Date().toISOString(), accepted);
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify({ ...state, accepted, rejected }, null, 2)}\n`);
      } else {
        io.stdout.write(`Imported ${accepted} records from ${read.files} files; database of ${state.databaseDate ?? '?'} (generation ${state.generation}); stored images are being matched again\n`);
        for (const r of rejected.slice(0, 10)) io.stderr.write(`rejected ${r.id ?? '(no id)'}: ${r.error}\n`);
        if (rejected.length > 10) io.stderr.write(`... and ${rejected.length - 10} more rejected\n`);
      }
      if (state.stale) io.stderr.write(`warning: the vulnerability database is from ${state.databaseDate ?? '?'}, older than ${Math.round(state.maxAgeSeconds / 86400)} days (scanning.maxDatabaseAge)\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
