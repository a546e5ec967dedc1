/**
 * A TCP proxy the test controls: counts bytes client→server, can cut every
 * connection once a number of bytes has passed, and can throttle.
 */
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';

export interface TcpProxy {
  host: string;
  /** Bytes sent by clients through the proxy, in all. */
  readonly bytesUp: number;
  /** Cut the connection carrying the byte that crosses this total (once). */
  breakAfter(totalBytes: number): void;
  /** Limit upstream throughput (bytes/s, per connection); 0 = unlimited. */
  throttle(bytesPerSecond: number): void;
  readonly breaks: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let bytesUp = 0;
  let breakAt = Infinity;
  let breaks = 0;
  let rate = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', cleanup);
    upstream.on('error', cleanup);
    client.on('close', cleanup);
    upstream.on('close', cleanup);
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('data', (d: Buffer) => {
      if (bytesUp + d.length >= breakAt) {
        const allowed = Math.max(0, breakAt - bytesUp);
        bytesUp += allowed;
        breakAt = Infinity;
        breaks++;
        upstream.write(d.subarray(0, allowed), () => {
          // Give the server a moment to take in what it got, then cut both sides.
          setTimeout(() => {
            client.resetAndDestroy();
            upstream.destroy();
          }, 100);
        });
        client.pause();
        return;
      }
      bytesUp += d.length;
      const ok = upstream.write(d);
      if (rate > 0) {
        client.pause();
        setTimeout(() => client.resume(), Math.ceil((d.length / rate) * 1000));
      } else if (!ok) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    get bytesUp() {
      return bytesUp;
    },
    get breaks() {
      return breaks;
    },
    breakAfter(total: number) {
      breakAt = total;
    },
    throttle(r: number) {
      rate = r;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
