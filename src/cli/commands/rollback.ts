import { Digest } from '../../oci/digest.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference, positiveInt } from './client-flags.js';
import { pierApi } from './lifecycle-flags.js';

export const rollback: Command = {
  name: 'rollback',
  summary: 'Point a tag back at an earlier version',
  usage: `Usage: pier rollback REPO:TAG [--steps N | --to DIGEST]

Moves TAG back to the digest it pointed at before (or N versions back, or
to DIGEST, which must be one of its versions: see 'pier history'). Nothing
is uploaded; the move is recorded in the tag's history as a rollback by you.

Options:
  --steps N           go back N versions (default 1)
  --to DIGEST         go back to this version
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('rollback', args, { steps: { type: 'string' }, to: { type: 'string' }, ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("rollback: needs REPO:TAG (see 'pier help rollback')");
    const ref = parseImageReference(positionals[0], 'REPO:TAG', 'rollback');
    if (!ref.tag) throw new UsageError('rollback: name a tag (REPO:TAG), not a digest');
    if (values.steps !== undefined && values.to !== undefined) throw new UsageError('rollback: give --steps or --to, not both');
    let target: { to: string } | { steps: number };
    if (values.to !== undefined) {
      const to = Digest.tryParse(values.to);
      if (!to) throw new UsageError(`rollback: --to must be a digest like sha256:..., not ${JSON.stringify(values.to)}`);
      target = { to: to.toString() };
    } else {
      target = { steps: positiveInt(values.steps, '--steps') ?? 1 };
    }
    const client = makeClient(io, values);
    try {
      const r = await pierApi(client, ref).rollback(ref.repository, ref.tag, target);
      io.stdout.write(`Rolled back ${ref.registry}/${r.repository}:${r.tag}: ${r.from ?? '(deleted)'} -> ${r.to}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
