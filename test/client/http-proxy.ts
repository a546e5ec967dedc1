/**
 * An HTTP reverse proxy with a request-body limit, like nginx's
 * `client_max_body_size`: bodies over the limit (or of unknown length) are
 * read and answered with 413. Records every request's method and length.
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpProxy {
  host: string;
  requests: { method: string; path: string; length: number | undefined; status: number }[];
  close(): Promise<void>;
}

export interface HttpProxyOptions {
  maxBody: number;
  /** Changes the response headers the client sees (a registry that misreports something). */
  rewrite?: (req: { method: string; path: string }, headers: IncomingHttpHeaders) => IncomingHttpHeaders;
}

export async function startHttpProxy(target: string, options: HttpProxyOptions): Promise<HttpProxy> {
  const requests: HttpProxy['requests'] = [];
  const server: Server = createServer((req, res) => {
    const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const hasBody = req.method === 'PUT' || req.method === 'PATCH' || req.method === 'POST';
    const tooLarge = hasBody && (length === undefined ? req.headers['transfer-encoding'] !== undefined : length > options.maxBody);
    const entry = { method: req.method ?? '', path: req.url ?? '', length, status: 0 };
    requests.push(entry);
    if (tooLarge) {
      req.resume();
      req.on('end', () => {
        entry.status = 413;
        res.writeHead(413, { 'content-type': 'text/html' }).end('<html><body>413 Request Entity Too Large</body></html>');
      });
      return;
    }
    const [hostname, port] = target.split(':');
    const up = request({ hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      entry.status = upRes.statusCode ?? 0;
      res.writeHead(upRes.statusCode ?? 502, options.rewrite ? options.rewrite({ method: entry.method, path: entry.path }, upRes.headers) : upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
