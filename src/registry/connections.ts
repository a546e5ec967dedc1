/**
 * Connection limits, like a front-line server (nginx): every client
 * connection is tracked from accept to close, and the server closes
 *
 * - a connection that has not sent a complete request header within
 *   `headerTimeout` of connecting (silent and slow-header clients);
 * - a keep-alive connection idle for `idleTimeout` between requests;
 * - an upload whose body moves fewer than `minBodyRate × bodyTimeout` bytes
 *   in any window of `bodyTimeout` seconds (a stalled client). A window in
 *   which the server itself was not reading (the body waits in its buffer)
 *   does not count against the client;
 * - at `max` open connections, the oldest connection that is idle or still
 *   sending its header, to make room for a new one ("shedding"). Only when
 *   every connection is busy with a request is the new one refused.
 *
 * So a silent or slow client can hold a slot only until a new client needs
 * it, and never past its timeout. `max` is also kept below the process's
 * open-file limit (less a reserve for the database and upload files), so
 * the server never runs out of descriptors and accept() never fails.
 *
 * TLS: the raw TCP socket is tracked, so a stalled handshake counts as a
 * header-incomplete connection.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  max: number;
  /** Seconds. */
  headerTimeout: number;
  /** Seconds. */
  idleTimeout: number;
  /** Seconds. */
  bodyTimeout: number;
  /** Bytes per second. */
  minBodyRate: number;
}

export type CloseReason = 'header_timeout' | 'idle_timeout' | 'body_rate' | 'shed' | 'refused';

export interface ConnectionEvents {
  /** A connection was opened (`delta` 1) or closed (`delta` -1). */
  onCount?(delta: 1 | -1): void;
  /** The server closed a connection for `reason`. */
  onClose?(reason: CloseReason): void;
}

/** Descriptors kept free for the database, upload files and blob reads. */
const FD_RESERVE = 64;

interface Tracked {
  socket: Socket;
  /** `waiting`: connected or between requests, no complete header yet; `active`: a request is in progress. */
  state: 'waiting' | 'active';
  /** Whether a request has been served on it (idle keep-alive) or not (fresh). */
  served: boolean;
  /** When the state began, ms. */
  since: number;
  req: IncomingMessage | undefined;
  windowStart: number;
  windowBytes: number;
}

/** The soft open-file limit of this process (Linux), or undefined where unknown. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** `max`, lowered to fit under the open-file limit. */
export function effectiveMax(max: number, fdLimit: number | undefined): number {
  if (fdLimit === undefined) return max;
  return Math.max(1, Math.min(max, fdLimit - FD_RESERVE));
}

export class ConnectionGuard {
  /** Insertion order is connection order: the first waiting entry is the oldest to shed. */
  private readonly open = new Map<Socket, Tracked>();
  private readonly timer: NodeJS.Timeout;
  readonly max: number;

  constructor(
    server: Server,
    private readonly limits: ConnectionLimits,
    private readonly events: ConnectionEvents = {},
  ) {
    this.max = effectiveMax(limits.max, openFileLimit());
    // Node's own checks as a second line (its header check runs every 30 s).
    server.headersTimeout = limits.headerTimeout * 1000;
    server.keepAliveTimeout = limits.idleTimeout * 1000;
    server.on('connection', (socket: Socket) => this.accept(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.request(req, res));
    const shortest = Math.min(limits.headerTimeout, limits.idleTimeout, limits.bodyTimeout || Infinity);
    const every = Math.min(1000, Math.max(50, (shortest * 1000) / 4));
    this.timer = setInterval(() => this.sweep(Date.now()), every);
    this.timer.unref();
  }

  /** Open connections now. */
  get size(): number {
    return this.open.size;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private close(t: Tracked, reason: CloseReason): void {
    this.open.delete(t.socket);
    this.events.onClose?.(reason);
    t.socket.destroy();
  }

  private accept(socket: Socket): void {
    if (this.open.size >= this.max) {
      const victim = this.oldestWaiting();
      if (victim) this.close(victim, 'shed');
      else {
        this.events.onClose?.('refused');
        socket.destroy();
        return;
      }
    }
    const now = Date.now();
    this.open.set(socket, { socket, state: 'waiting', served: false, since: now, req: undefined, windowStart: now, windowBytes: 0 });
    this.events.onCount?.(1);
    socket.once('close', () => {
      this.open.delete(socket);
      this.events.onCount?.(-1);
    });
  }

  private oldestWaiting(): Tracked | undefined {
    let oldest: Tracked | undefined;
    for (const t of this.open.values()) {
      if (t.state === 'waiting' && (!oldest || t.since < oldest.since)) oldest = t;
    }
    return oldest;
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as Socket & { _parent?: Socket };
    const t = this.open.get(socket) ?? (socket._parent ? this.open.get(socket._parent) : undefined);
    if (!t) return;
    const now = Date.now();
    t.state = 'active';
    t.req = req;
    t.since = now;
    t.windowStart = now;
    t.windowBytes = t.socket.bytesRead;
    res.once('finish', () => {
      if (t.req !== req) return;
      t.state = 'waiting';
      t.served = true;
      t.req = undefined;
      t.since = Date.now();
    });
  }

  /** Closes every connection past its deadline. */
  sweep(now: number): void {
    const { headerTimeout, idleTimeout, bodyTimeout, minBodyRate } = this.limits;
    for (const t of [...this.open.values()]) {
      if (t.state === 'waiting') {
        const limit = t.served ? idleTimeout : headerTimeout;
        if (limit > 0 && now - t.since >= limit * 1000) this.close(t, t.served ? 'idle_timeout' : 'header_timeout');
        continue;
      }
      const req = t.req;
      if (!req || req.complete || bodyTimeout <= 0 || now - t.windowStart < bodyTimeout * 1000) continue;
      const moved = t.socket.bytesRead - t.windowBytes;
      // Bytes waiting in our buffer mean the server, not the client, is behind.
      const serverBehind = req.readableLength > 0 || t.socket.readableLength > 0;
      if (!serverBehind && moved < minBodyRate * bodyTimeout) {
        this.close(t, 'body_rate');
        continue;
      }
      t.windowStart = now;
      t.windowBytes = t.socket.bytesRead;
    }
  }
}
