/**
 * Debian's nginx in front of a registry, for the X-Accel-Redirect mode
 * (`storage.accelRedirect`): a config written into a fresh temp folder,
 * listening on an ephemeral loopback port, proxying everything to the
 * registry and serving blob files from an `internal` location aliased to
 * the registry's blob folder. {@link Nginx.stop} ends it and removes the folder.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './distribution.js';

export const NGINX = '/usr/sbin/nginx';

export interface Nginx {
  /** `127.0.0.1:PORT` */
  host: string;
  stop(): Promise<void>;
}

/**
 * The nginx snippet docs/performance.md and the README show, for a registry
 * at `upstream` whose blob folder is `blobs` (`<storage.path>/blobs/`),
 * with `prefix` as `storage.accelRedirect`.
 */
export function accelServerBlock(listen: string, upstream: string, prefix: string, blobs: string): string {
  return `
    server {
      listen ${listen};
      client_max_body_size 0;
      location / {
        proxy_pass http://${upstream};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Connection "";
        proxy_request_buffering off;
        proxy_buffering off;
      }
      location ${prefix} {
        internal;
        alias ${blobs}/;
        types { }
        default_type application/octet-stream;
        add_header Docker-Content-Digest $upstream_http_docker_content_digest;
        add_header Docker-Distribution-Api-Version registry/2.0;
        add_header Cache-Control "max-age=31536000";
      }
    }`;
}

export async function startNginx(upstream: string, prefix: string, blobs: string): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'pier-nginx-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const conf = join(dir, 'nginx.conf');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(dir, t)};`).join('\n    ');
  await writeFile(
    conf,
    `daemon off;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    ${temp}
    ${accelServerBlock(host, upstream, prefix, blobs)}
}
`,
  );
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      await stop();
      throw new Error(`nginx exited (${child.exitCode}): ${stderr}${log}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      return { host, stop };
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`nginx did not answer at ${host}: ${stderr}`);
      }
      await sleep(50);
    }
  }
}
