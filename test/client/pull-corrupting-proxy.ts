/**
 * An HTTP reverse proxy in front of a registry that corrupts chosen blobs:
 * the body of a GET for a listed digest has one byte flipped in the middle
 * (length and headers unchanged), like a bad disk or a broken middlebox.
 * Every other request passes through untouched. A `stall`ed blob sends
 * half its body and then nothing, to catch a pull in the middle; a `cut`
 * one is reset half way, once.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export interface CorruptingProxy {
  host: string;
  /** Digests (`sha256:...`) whose GET bodies are corrupted. */
  readonly corrupt: Set<string>;
  /** Digests whose GET bodies stop after their first half and never finish (until close). */
  readonly stall: Set<string>;
  /** Digests whose next GET body is cut (connection reset) after its first half; each is cut once. */
  readonly cut: Set<string>;
  /** Every blob GET seen: its digest and Range header. */
  readonly blobGets: { digest: string; range?: string }[];
  /** How many bodies were corrupted so far. */
  readonly corrupted: number;
  close(): Promise<void>;
}

function flipAt(position: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (position >= seen && position < seen + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[position - seen] = chunk[position - seen]! ^ 0xff;
      }
      seen += chunk.length;
      cb(null, chunk);
    },
  });
}

export async function startCorruptingProxy(target: string): Promise<CorruptingProxy> {
  const corrupt = new Set<string>();
  const stall = new Set<string>();
  const cut = new Set<string>();
  const blobGets: { digest: string; range?: string }[] = [];
  let corrupted = 0;
  const [hostname, port] = target.split(':');
  const server: Server = createServer((req, res) => {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec((req.url ?? '').split('?')[0]!);
    if (m && req.method === 'GET') blobGets.push({ digest: m[1]!, range: req.headers.range });
    const up = request({ hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const length = Number(upRes.headers['content-length'] ?? 0);
      if (req.method === 'GET' && upRes.statusCode === 200 && m && corrupt.has(m[1]!) && length > 0) {
        corrupted++;
        upRes.pipe(flipAt(Math.floor(length / 2))).pipe(res);
      } else if (req.method === 'GET' && upRes.statusCode === 200 && m && cut.has(m[1]!) && length > 0) {
        cut.delete(m[1]!);
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          const room = Math.max(0, Math.floor(length / 2) - sent);
          sent += chunk.length;
          if (room > 0) res.write(chunk.subarray(0, room));
          if (room < chunk.length) {
            upRes.destroy();
            res.socket?.resetAndDestroy();
          }
        });
      } else if (req.method === 'GET' && upRes.statusCode === 200 && m && stall.has(m[1]!) && length > 0) {
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          const room = Math.max(0, Math.floor(length / 2) - sent);
          if (room > 0) res.write(chunk.subarray(0, room));
          sent += chunk.length;
        });
      } else {
        upRes.pipe(res);
      }
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${own}`,
    corrupt,
    stall,
    cut,
    blobGets,
    get corrupted() {
      return corrupted;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
