/**
 * Pier behind Debian's nginx in the X-Accel-Redirect mode
 * (`storage.accelRedirect`): Pier authorizes, nginx sends blob files with
 * sendfile. nginx runs as one process (`master_process off`) so its CPU is
 * read from one /proc entry, like the registries'.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Daemon } from './proc.js';
import { startDaemon, stopDaemon, waitFor } from './proc.js';
import { freePort, startPier, type Registry } from './registries.js';

export const NGINX = '/usr/sbin/nginx';
const PREFIX = '/_pier_blobs/';

export interface AccelPier {
  /** Pier itself (behind nginx). */
  readonly pier: Registry;
  readonly nginx: Daemon;
  /** `http://127.0.0.1:PORT` of nginx: what clients use. */
  readonly url: string;
  readonly host: string;
  stop(): Promise<void>;
}

export function hasNginx(): boolean {
  return existsSync(NGINX);
}

export async function startAccelPier(dir: string): Promise<AccelPier> {
  const pier = await startPier(join(dir, 'pier'), 'pier (x-accel)', { PIER_STORAGE_ACCEL_REDIRECT: PREFIX });
  const ngx = join(dir, 'nginx');
  mkdirSync(ngx, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const conf = join(ngx, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${join(ngx, 'nginx.pid')};
error_log ${join(ngx, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(ngx, t)};`).join('\n  ')}
  upstream pier { server ${pier.host}; keepalive 32; }
  server {
    listen ${host};
    client_max_body_size 0;
    location / {
      proxy_pass http://pier;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
    }
    location ${PREFIX} {
      internal;
      alias ${join(pier.dataDir, 'blobs', 'blobs')}/;
      types { }
      default_type application/octet-stream;
      add_header Docker-Content-Digest $upstream_http_docker_content_digest;
    }
  }
}
`,
  );
  const nginx = startDaemon('nginx', NGINX, ['-p', ngx, '-c', conf, '-e', join(ngx, 'error.log')], join(ngx, 'stderr.log'));
  const url = `http://${host}`;
  await waitFor(`nginx at ${url}/v2/`, async () => {
    if (nginx.hasExited()) throw new Error('nginx exited (see its error.log)');
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      return true;
    } catch {
      return false;
    }
  }, 10_000);
  return {
    pier,
    nginx,
    url,
    host,
    async stop() {
      await stopDaemon(nginx);
      await pier.stop();
    },
  };
}
