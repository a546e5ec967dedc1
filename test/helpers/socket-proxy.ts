/**
 * A unix-socket proxy in front of a daemon's socket (the Docker Engine API)
 * that records the request line of every HTTP request passing through, so a
 * test can see what a client asked the daemon (`GET /images/NAME/get`:
 * an export). Bytes are forwarded unchanged, keep-alive included.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';

export interface SocketProxy {
  /** The proxy's socket path (use `unix://PATH` as DOCKER_HOST). */
  path: string;
  /** `METHOD PATH` of every request seen so far, in order. */
  requests: string[];
  close(): Promise<void>;
}

const REQUEST_LINE = /(?:^|\r\n)(GET|HEAD|POST|PUT|DELETE) (\S+) HTTP\/1\.[01]\r\n/g;

export async function startSocketProxy(target: string, dir: string): Promise<SocketProxy> {
  const path = join(dir, 'proxy.sock');
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client);
    sockets.add(upstream);
    let tail = '';
    client.on('data', (d: Buffer) => {
      // Requests to the Engine API here carry no large bodies: scanning the text is enough.
      const text = tail + d.toString('latin1');
      for (const m of text.matchAll(REQUEST_LINE)) requests.push(`${m[1]} ${m[2]}`);
      tail = text.slice(-512).replace(/^[\s\S]*\r\n(?=[^\r\n]*$)/, '\r\n');
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return {
    path,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
