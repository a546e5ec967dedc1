/**
 * The bottom of the client's HTTP stack: one request over Node's own
 * `http`/`https` with keep-alive agents. Node's built-in HTTP parser is
 * native; undici's is WebAssembly, compiled at the first request of every
 * process (~85 ms here) after ~30 ms of loading — most of a re-push's time
 * for a command that lives a fraction of a second (decision 0023).
 *
 * TLS: an error raised on a new connection after TCP connected and before
 * the TLS handshake finished is thrown as a {@link TlsHandshakeError} (its
 * cause is Node's error), so the transport can tell "this port does not
 * speak TLS" from a network failure (decision 0040).
 *
 * Timeouts: `headersTimeout` counts from the end of the request body to the
 * response headers; `idleTimeout` is the longest silence on a socket in
 * either direction (a stalled upload or download).
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls';
import { ClientError } from './errors.js';
import { PierError } from '../oci/pier-error.js';

export interface PoolRequest {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  path: string;
  method: string;
  headers?: Record<string, string>;
  body?: Uint8Array | Readable;
  signal?: AbortSignal;
  /** Milliseconds from the end of the request body to the response headers. */
  headersTimeout?: number;
  /**
   * Only find out whether the server speaks TLS: the handshake trusts no
   * certificate, so it always fails — as `not-tls` when the port speaks
   * plain HTTP, on the certificate when it speaks TLS. Costs no CA parsing.
   */
  tlsProbe?: boolean;
}

export interface PoolResponse {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export interface HttpPoolOptions {
  /** Extra CA certificate files (PEM), added to Node's roots. `SSL_CERT_FILE` is honoured too. */
  caFiles?: string[];
  env?: NodeJS.ProcessEnv;
  /** Connections per origin (default 16). */
  connections?: number;
  /** Connect through a unix socket (the Docker Engine API). */
  socketPath?: string;
  headersTimeout?: number;
  idleTimeout?: number;
}

/** A failure before a response: carries a Node-style `code` so errors.ts can classify it. */
class PoolError extends PierError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'PoolError';
  }
}

/** An error before the TLS handshake finished, on a connection whose TCP connect succeeded. */
export class TlsHandshakeError extends PierError {
  readonly code = 'ERR_TLS_HANDSHAKE';
  constructor(cause: unknown) {
    super(`TLS handshake failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'TlsHandshakeError';
  }
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ClientError('ERR_CONFIG', `cannot read the CA certificates in ${path} (--ca-file or SSL_CERT_FILE)`, { cause });
  }
}

function abortError(): Error {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

export class HttpPool {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly headersTimeout: number;
  private readonly idleTimeout: number;
  private readonly socketPath: string | undefined;
  /** Node's roots plus the extra CA files, when there are extra files. */
  private readonly ca: string[] | undefined;
  private context: SecureContext | undefined;
  private probeContext: SecureContext | undefined;

  constructor(options: HttpPoolOptions = {}) {
    const env = options.env ?? process.env;
    const files = [...(options.caFiles ?? [])];
    if (env.SSL_CERT_FILE) files.push(env.SSL_CERT_FILE);
    // Extra CAs are added to Node's bundled roots, not instead of them.
    this.ca = files.length > 0 ? [...rootCertificates, ...files.map(readCaFile)] : undefined;
    // Idle keep-alive sockets close after 30 s (and sooner when the server's Keep-Alive header says so),
    // so a socket the registry has already dropped is rarely picked up after a pause.
    const agent = { keepAlive: true, timeout: 30_000, maxSockets: options.connections ?? 16, maxFreeSockets: options.connections ?? 16, scheduling: 'lifo' as const };
    this.http = new HttpAgent(agent);
    this.https = new HttpsAgent(agent);
    this.headersTimeout = options.headersTimeout ?? 300_000;
    this.idleTimeout = options.idleTimeout ?? 300_000;
    this.socketPath = options.socketPath;
  }

  request(req: PoolRequest): Promise<PoolResponse> {
    return new Promise((resolve, reject) => {
      if (req.signal?.aborted) return reject(abortError());
      const url = new URL(req.origin);
      const secure = url.protocol === 'https:';
      const headers: OutgoingHttpHeaders = { ...req.headers };
      const body = req.body;
      if (body instanceof Uint8Array) headers['content-length'] = body.byteLength;
      else if (body === undefined && req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'DELETE') headers['content-length'] = 0;
      let settled = false;
      let answeredEarly = false;
      let headersTimer: NodeJS.Timeout | undefined;
      // A new TLS connection: 'connected' once TCP is up, 'secure' once the handshake is done.
      let tlsStage: 'none' | 'connecting' | 'connected' | 'secure' = 'none';
      const fail = (err: Error) => {
        clearTimeout(headersTimer);
        if (body instanceof Readable) body.destroy();
        if (settled) return;
        settled = true;
        reject(req.signal?.aborted ? abortError() : tlsStage === 'connected' && !(err instanceof PoolError) ? new TlsHandshakeError(err) : err);
      };
      const options = {
        method: req.method,
        path: req.path,
        headers,
        agent: secure ? this.https : this.http,
        ...(secure && req.tlsProbe ? { secureContext: (this.probeContext ??= createSecureContext({ ca: [] })) } : secure && this.ca ? { secureContext: this.secureContext(this.ca) } : {}),
        timeout: this.idleTimeout,
        ...(this.socketPath ? { socketPath: this.socketPath } : { hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || (secure ? 443 : 80) }),
        ...(req.signal ? { signal: req.signal } : {}),
      };
      const r = (secure ? httpsRequest : httpRequest)(options, (res: IncomingMessage) => {
        clearTimeout(headersTimer);
        settled = true;
        if (body instanceof Readable && !body.readableEnded && !r.writableFinished) {
          // Answered before the whole body was taken (a 413, a 401): stop sending, let the caller
          // read the answer, then drop the connection, which cannot carry another request.
          answeredEarly = true;
          body.unpipe(r);
          body.destroy();
          const drop = () => r.destroy();
          res.once('end', drop);
          res.once('close', drop);
        }
        const out: PoolResponse['headers'] = {};
        for (const [name, values] of Object.entries(res.headersDistinct)) {
          if (values) out[name] = values.length === 1 ? values[0] : values;
        }
        resolve({ statusCode: res.statusCode ?? 0, headers: out, body: res });
      });
      if (secure) {
        r.on('socket', (socket: Socket) => {
          if (r.reusedSocket || (socket as TLSSocket).encrypted === undefined) return;
          tlsStage = socket.connecting ? 'connecting' : 'connected';
          socket.once('connect', () => {
            if (tlsStage === 'connecting') tlsStage = 'connected';
          });
          socket.once('secureConnect', () => {
            tlsStage = 'secure';
          });
        });
      }
      r.on('error', fail);
      r.on('timeout', () => r.destroy(new PoolError(`no data for ${Math.round(this.idleTimeout / 1000)} s`, 'ETIMEDOUT')));
      r.on('finish', () => {
        if (settled) return;
        const ms = req.headersTimeout ?? this.headersTimeout;
        headersTimer = setTimeout(() => r.destroy(new PoolError(`no response headers within ${Math.round(ms / 1000)} s`, 'ETIMEDOUT')), ms);
        headersTimer.unref();
      });
      if (body instanceof Readable) {
        // Not stream.pipeline: stopping the body after an early answer must not destroy the request
        // (and with it the response being read).
        body.once('error', (err) => r.destroy(err));
        body.once('close', () => {
          // A body that stops short (destroyed without an error) must not leave the request waiting.
          if (!answeredEarly && !body.readableEnded && !r.writableFinished) r.destroy(new PoolError('the request body stopped before its end', 'ECONNABORTED'));
        });
        body.pipe(r);
      } else {
        r.end(body);
      }
    });
  }

  /**
   * One TLS context for every connection, built at the first HTTPS request.
   * Given as `ca` to the agent instead, Node would parse the ~150 roots
   * plus the files again for each new connection (~150 ms each here).
   */
  private secureContext(ca: string[]): SecureContext {
    return (this.context ??= createSecureContext({ ca }));
  }

  /** Closes idle connections; requests in flight are cut. */
  close(): Promise<void> {
    this.http.destroy();
    this.https.destroy();
    return Promise.resolve();
  }
}
