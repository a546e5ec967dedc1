import { isFileDestination, parseDestination, type DestinationSpec } from '../../client/index.js';
import type { ImageReference } from '../../oci/index.js';
import { parseFlags, UsageError, type Command, type Io } from '../command.js';
import type { Scope } from '../scope.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference, positiveInt, progressFormat, renderer, withInterrupt } from './client-flags.js';

export const DEST_USAGE = `DEST is one of:
  oci:DIR[:TAG]                       an OCI image layout folder (created, or added to)
  oci-archive:FILE[:TAG]              a tar of an OCI image layout
  docker-archive:FILE[:NAME[:TAG]]    a 'docker save' tarball, for 'docker load' and 'podman load'
TAG and NAME default to the source's tag and name. Every blob is checked
against its digest as it arrives; on any failure DEST is left as it was.`;

export const pullFlags = {
  jobs: { type: 'string', short: 'j' },
  platform: { type: 'string' },
  format: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  ...connectionFlags,
} as const;

export function checkPlatform(value: string | undefined): void {
  if (value !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(value)) {
    throw new UsageError(`--platform must look like linux/amd64 or linux/arm64/v8`);
  }
}

/** Parses a file DEST, turning its mistakes into one usage line. */
export async function fileDestination(value: string): Promise<DestinationSpec> {
  try {
    return await parseDestination(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** What `pier pull` and `pier copy REF FILE-DEST` share: client, progress, Ctrl-C, the digest line. */
export async function runPull(
  io: Io,
  scope: Scope,
  src: ImageReference,
  dest: DestinationSpec,
  values: { jobs?: string; platform?: string; format?: string; quiet?: boolean; insecure?: boolean; 'ca-file'?: string[] },
): Promise<number> {
  const jobs = positiveInt(values.jobs, '--jobs');
  const format = progressFormat(io, values.format, values.quiet);
  const out = scope.use(renderer(io, format));
  const client = scope.use(makeClient(io, values, { onEvent: (e) => out.event(e) }));
  const result = await withInterrupt((signal) => client.pull(src, dest, { jobs, platform: values.platform, signal }));
  out.close();
  if (format === 'quiet') io.stdout.write(`${result.digest.toString()}\n`);
  return 0;
}

export const pull: Command = {
  name: 'pull',
  summary: 'Pull an image from a registry into an OCI layout, oci-archive or docker-archive',
  usage: `Usage: pier pull REF DEST

Writes the image REF names (every platform of an index, or --platform) to files.
${DEST_USAGE}

Options:
  -j, --jobs N            parallel blob downloads (default 4)
  --platform OS/ARCH      pull one platform of an index (docker-archive: default this machine's)
  --format auto|tty|plain|json   progress display (json: one event per line on stdout)
  -q, --quiet             print only the digest
${CONNECTION_USAGE}`,
  async run(args, io, scope) {
    const { values, positionals } = parseFlags('pull', args, pullFlags);
    if (positionals.length !== 2) throw new UsageError("needs REF DEST (see 'pier help pull')");
    checkPlatform(values.platform);
    const src = parseImageReference(positionals[0], 'REF', 'pull');
    if (!isFileDestination(positionals[1]!)) throw new UsageError(`DEST must be oci:DIR, oci-archive:FILE or docker-archive:FILE, not ${JSON.stringify(positionals[1])} (to copy between registries: pier copy)`);
    const dest = await fileDestination(positionals[1]!);
    return runPull(io, scope, src, dest, values);
  },
};
