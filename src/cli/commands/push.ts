import { writeFile } from 'node:fs/promises';
import { ImageReference } from '../../oci/index.js';
import type { Compression } from '../../client/push.js';
import { openSource } from '../../client/sources/index.js';
import { UsageError, parseFlags, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, positiveInt, progressFormat, renderer, withInterrupt } from './client-flags.js';

export const push: Command = {
  name: 'push',
  summary: 'Push an image to a registry (from a daemon, docker save tarball or OCI layout)',
  usage: `Usage: pier push SOURCE [DEST]

SOURCE is one of:
  oci:PATH[:TAG]                an OCI image layout folder
  oci-archive:PATH[:TAG]        a tar of an OCI image layout
  docker-archive:PATH[:IMAGE]   'docker save' output (classic or Docker 25+ OCI layout, gzipped or not)
  docker-daemon:NAME[:TAG]      an image in the Docker Engine at DOCKER_HOST (or /var/run/docker.sock)
  NAME[:TAG]                    the same as docker-daemon:NAME[:TAG], like 'docker push'
DEST is an image reference (ubuntu = docker.io/library/ubuntu:latest); omitted, the source's name.

Only blobs the registry lacks are sent; blobs known to be in another repository
of the same registry are mounted; an interrupted push resumes when run again.

Options:
  -j, --jobs N            parallel blob uploads (default 4)
  --chunk-size SIZE       upload in PATCH chunks of SIZE bytes (e.g. 16M); default one streamed PUT
  --compression gzip|none how uncompressed layers are sent (default gzip)
  --platform OS/ARCH      push only this platform of a multi-platform image
  --format auto|tty|plain|json   progress display (json: one event per line on stdout)
  -q, --quiet             print only the digest
  --digestfile FILE       write the manifest digest to FILE
${CONNECTION_USAGE}`,
  async run(args, io, scope) {
    const { values, positionals } = parseFlags('push', args, {
      jobs: { type: 'string', short: 'j' },
      'chunk-size': { type: 'string' },
      compression: { type: 'string' },
      platform: { type: 'string' },
      format: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      digestfile: { type: 'string' },
      ...connectionFlags,
    });
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError("push: needs SOURCE [DEST] (see 'pier help push')");
    const compression = (values.compression ?? 'gzip') as Compression;
    if (compression !== 'gzip' && compression !== 'none') throw new UsageError('push: --compression must be gzip or none');
    if (values.platform !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(values.platform)) {
      throw new UsageError('push: --platform must look like linux/amd64 or linux/arm64/v8');
    }
    const jobs = positiveInt(values.jobs, '--jobs');
    const chunkSize = positiveInt(values['chunk-size'], '--chunk-size');
    const format = progressFormat(io, values.format, values.quiet);
    const out = scope.use(renderer(io, format));
    const source = scope.use(await openSource(positionals[0]!, io.env));
    const client = scope.use(makeClient(io, values, { onEvent: (e) => out.event(e) }));
    let destText = positionals[1];
    if (!destText) {
      await source.root();
      destText = source.defaultName;
      if (!destText) throw new UsageError(`${source.description} carries no image name; give DEST`);
    }
    let dest: ImageReference;
    try {
      dest = ImageReference.parse(destText);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const result = await withInterrupt((signal) => client.push(source, dest, { jobs, chunkSize, compression, platform: values.platform, signal }));
    out.close();
    if (values.digestfile) await writeFile(values.digestfile, `${result.digest.toString()}\n`);
    if (format === 'quiet') io.stdout.write(`${result.digest.toString()}\n`);
    return 0;
  },
};
