import { formatBytes } from '../../client/index.js';
import { parseFlags, UsageError, type Command } from '../command.js';
import { CONNECTION_USAGE, connectionFlags, makeClient, parseImageReference } from './client-flags.js';
import { pierApi } from './lifecycle-flags.js';
import { scanSummary } from './scan.js';

export const inspect: Command = {
  name: 'inspect',
  summary: 'Show an image: manifest, config, platforms, sizes',
  usage: `Usage: pier inspect REF

Options:
  --format text|json   json prints manifest, config, platforms and sizes as one document
  --raw                print the manifest exactly as the registry serves it
${CONNECTION_USAGE}`,
  async run(args, io) {
    const { values, positionals } = parseFlags('inspect', args, { format: { type: 'string' }, raw: { type: 'boolean' }, ...connectionFlags });
    if (positionals.length !== 1) throw new UsageError("inspect: needs REF (see 'pier help inspect')");
    const ref = parseImageReference(positionals[0], 'REF', 'inspect');
    const client = makeClient(io, values);
    try {
      const info = await client.inspect(ref);
      if (values.raw) {
        io.stdout.write(`${JSON.stringify(info.manifest, null, 2)}\n`);
        return 0;
      }
      if (values.format === 'json') {
        io.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return 0;
      }
      const lines = [`Name:       ${info.reference}`, `Digest:     ${info.digest}`, `MediaType:  ${info.mediaType}`];
      if (info.platforms) {
        lines.push('Platforms:');
        for (const p of info.platforms) lines.push(`  ${p.platform.padEnd(16)} ${p.digest}  ${formatBytes(p.size, 'docker')}`);
      }
      if (info.layers) {
        const cfg = info.config as { os?: string; architecture?: string; created?: string; config?: { Entrypoint?: string[]; Cmd?: string[] } } | undefined;
        if (cfg?.os) lines.push(`Platform:   ${cfg.os}/${cfg.architecture ?? '?'}`);
        if (cfg?.created) lines.push(`Created:    ${cfg.created}`);
        if (cfg?.config?.Entrypoint || cfg?.config?.Cmd) lines.push(`Command:    ${JSON.stringify([...(cfg.config.Entrypoint ?? []), ...(cfg.config.Cmd ?? [])])}`);
        lines.push(`Size:       ${formatBytes(info.totalSize ?? 0, 'docker')} (compressed)`, `Layers:     ${info.layers.length}`);
        for (const l of info.layers) lines.push(`  ${l.digest}  ${formatBytes(l.size, 'docker').padStart(8)}`);
      }
      // Pier registries report the image's vulnerability scan; other registries have none (left out).
      const scanned = await pierApi(client, ref)
        .scan(ref.repository, info.digest, false)
        .catch(() => undefined);
      if (scanned) lines.push(`Vulnerabilities: ${scanSummary(scanned)}`);
      io.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
