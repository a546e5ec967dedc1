/**
 * A runnable image with no internet: one layer holding the machine's
 * static busybox (Debian `busybox-static`) as /bin/busybox with /bin/sh,
 * echo and sleep linked to it; entrypoint /bin/busybox, command sh, so
 * `docker run IMAGE echo hi` and `docker service create IMAGE sleep 30` run.
 * Written as a classic `docker save` archive for `docker load`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { writeDockerArchive, type GeneratedLayer } from '../client/image-files.js';

export const BUSYBOX = '/bin/busybox';

/** Writes `DIR/busybox.tar` (a docker-archive named `repoTag`); returns its path and config digest (the image ID). */
export async function writeBusyboxArchive(dir: string, repoTag: string): Promise<{ path: string; configDigest: string }> {
  const bin = await readFile(BUSYBOX);
  const layerPath = join(dir, 'busybox-layer.tar');
  const p = pack();
  const written = pipeline(p, createWriteStream(layerPath));
  const mtime = new Date(0);
  p.entry({ name: 'bin/', type: 'directory', mode: 0o755, mtime });
  p.entry({ name: 'bin/busybox', mode: 0o755, mtime }, bin);
  for (const l of ['sh', 'echo', 'sleep', 'cat']) p.entry({ name: `bin/${l}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime });
  p.finalize();
  await written;
  const bytes = await readFile(layerPath);
  const layer: GeneratedLayer = { path: layerPath, diffID: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length };
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2026-01-01T00:00:00Z',
      config: { Entrypoint: ['/bin/busybox'], Cmd: ['sh'], Env: ['PATH=/bin'], Labels: { nonce: randomBytes(8).toString('hex') } },
      rootfs: { type: 'layers', diff_ids: [layer.diffID] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'pier test: busybox-static' }],
    }),
  );
  const path = join(dir, 'busybox.tar');
  const { configDigest } = await writeDockerArchive(path, [layer], { repoTag, config });
  return { path, configDigest };
}
