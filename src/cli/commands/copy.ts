import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference, positiveInt, progressFormat, renderer, withInterrupt } from './client-flags.js';

export const copy: Command = {
  name: 'copy',
  summary: 'Copy an image from one registry or repository to another',
  usage: `Usage: pier copy SRC-REF DEST-REF

Copies an image (every platform of an index, or --platform) between
registries; within one registry, blobs are mounted instead of sent.

Options:
  -j, --jobs N            parallel blob transfers (default 4)
  --platform OS/ARCH      copy one platform
  --format auto|tty|plain|json
  -q, --quiet             print only the digest
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('copy', args, {
      jobs: { type: 'string', short: 'j' },
      platform: { type: 'string' },
      format: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      ...connectionFlags,
    });
    if (positionals.length !== 2) throw new UsageError("copy: needs SRC-REF DEST-REF (see 'pier help copy')");
    const src = parseImageReference(positionals[0], 'SRC-REF', 'copy');
    const dest = parseImageReference(positionals[1], 'DEST-REF', 'copy');
    const format = progressFormat(io, values.format, values.quiet);
    const out = renderer(io, format);
    const client = makeClient(io, values, { onEvent: (e) => out.event(e) });
    try {
      const result = await withInterrupt((signal) => client.copy(src, dest, { jobs: positiveInt(values.jobs, '--jobs'), platform: values.platform, signal }));
      out.close();
      if (format === 'quiet') io.stdout.write(`${result.digest.toString()}\n`);
      return 0;
    } finally {
      out.close();
      await client.close();
    }
  },
};
