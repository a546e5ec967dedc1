import { isFileDestination } from '../../client/index.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, makeClient, parseImageReference, positiveInt, progressFormat, renderer, withInterrupt } from './client-flags.js';
import { DEST_USAGE, checkPlatform, fileDestination, pullFlags, runPull } from './pull.js';

export const copy: Command = {
  name: 'copy',
  summary: 'Copy an image from one registry or repository to another, or to files',
  usage: `Usage: pier copy SRC-REF DEST-REF
       pier copy SRC-REF DEST

Copies an image (every platform of an index, or --platform) between
registries; within one registry, blobs are mounted instead of sent.
With a file DEST it is 'pier pull'.
${DEST_USAGE}

Options:
  -j, --jobs N            parallel blob transfers (default 4)
  --platform OS/ARCH      copy one platform
  --format auto|tty|plain|json
  -q, --quiet             print only the digest
${CONNECTION_USAGE}`,
  async run(args, io, scope) {
    const { values, positionals } = parseFlags('copy', args, pullFlags);
    if (positionals.length !== 2) throw new UsageError("copy: needs SRC-REF DEST-REF (see 'pier help copy')");
    checkPlatform(values.platform);
    const src = parseImageReference(positionals[0], 'SRC-REF', 'copy');
    if (isFileDestination(positionals[1]!)) return runPull(io, scope, src, await fileDestination(positionals[1]!), values);
    const dest = parseImageReference(positionals[1], 'DEST-REF', 'copy');
    const format = progressFormat(io, values.format, values.quiet);
    const out = scope.use(renderer(io, format));
    const client = scope.use(makeClient(io, values, { onEvent: (e) => out.event(e) }));
    const result = await withInterrupt((signal) => client.copy(src, dest, { jobs: positiveInt(values.jobs, '--jobs'), platform: values.platform, signal }));
    out.close();
    if (format === 'quiet') io.stdout.write(`${result.digest.toString()}\n`);
    return 0;
  },
};
