/**
 * Parallel gzip, pigz-style: the input is cut into fixed-size chunks, each
 * deflated independently on a worker thread (ending on a sync flush so the
 * raw deflate streams concatenate), and written as ONE gzip member with the
 * CRC-32 and length of the whole input. A chunk that does not compress is
 * framed as stored blocks on the calling thread instead ({@link compresses}
 * decides, by a sample): random or already-compressed layers never wake a
 * worker, and cost a copy rather than a deflate pass.
 * Output is deterministic for a given input and settings, which the diffID
 * cache and resume rely on; {@link gzipCodec} names the settings and the
 * format version, so a change of either never resumes into other bytes.
 *
 * Memory: at most `2 × workers` chunks in flight. Workers: one per core
 * (`PIER_GZIP_WORKERS` overrides, for tuning on shared machines), owned by
 * a {@link GzipWorkers} that its owner closes.
 */
import { Buffer } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import type * as Zlib from 'node:zlib';
import { ClientError } from './errors.js';

// node:zlib and node:worker_threads load at the first compression, not with
// every command that imports this module (decision 0132).
const requireBuiltin = createRequire(import.meta.url);
let zlibModule: typeof Zlib | undefined;
let workerClass: typeof Worker | undefined;
const zlib = (): typeof Zlib => (zlibModule ??= requireBuiltin('node:zlib') as typeof Zlib);
const WorkerThread = (): typeof Worker => (workerClass ??= (requireBuiltin('node:worker_threads') as { Worker: typeof Worker }).Worker);

export interface GzipSettings {
  /** zlib level 0-9 (default 1: fastest). */
  level: number;
  /** Input bytes per independently-deflated chunk (default 1 MiB). */
  chunkSize: number;
}

export const DEFAULT_GZIP: GzipSettings = { level: 1, chunkSize: 1 << 20 };

/** A name for the settings, part of the diffID cache key: other settings give other bytes. */
export function gzipCodec(settings: GzipSettings): string {
  return `gzip-l${settings.level}-c${settings.chunkSize}-v${FORMAT_VERSION}`;
}

/** Bumped whenever the same input and settings would give other bytes (v2: stored chunks framed in JS; v3: memLevel 9). */
const FORMAT_VERSION = 3;

const STORED_MAX = 0xffff;

const PIECE = 4 * 1024;
const PIECES = 4;

/**
 * Whether level-1 deflate shrinks a sample of `data` below 97 %: four 4 KiB
 * pieces spread over it (a full pass would cost 15 times the whole stored
 * path). Deterministic in `data`.
 */
function compresses(data: Uint8Array): boolean {
  if (data.length < PIECE * PIECES * 4) {
    return zlib().deflateRawSync(data, { level: 1 }).length <= data.length * 0.97;
  }
  const sample = Buffer.allocUnsafe(PIECE * PIECES);
  for (let i = 0; i < PIECES; i++) {
    const at = Math.floor((data.length / PIECES) * i);
    sample.set(data.subarray(at, at + PIECE), i * PIECE);
  }
  return zlib().deflateRawSync(sample, { level: 1 }).length <= sample.length * 0.97;
}

/**
 * Raw-deflate stored blocks holding `data` (RFC 1951 3.2.4), byte-aligned
 * as a chunk after a sync flush is; the last block is final when `last`.
 */
function storedBlocks(data: Uint8Array, last: boolean): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / STORED_MAX));
  const out = Buffer.allocUnsafe(data.length + blocks * 5);
  let o = 0;
  for (let b = 0, at = 0; b < blocks; b++, at += STORED_MAX) {
    const len = Math.min(STORED_MAX, data.length - at);
    out[o] = last && b === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(len, o + 1);
    out.writeUInt16LE(~len & 0xffff, o + 3);
    out.set(data.subarray(at, at + len), o + 5);
    o += 5 + len;
  }
  return out;
}

interface Pending {
  /** The thread running the job, once it was handed one. */
  worker?: Worker;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

/**
 * The deflate worker threads of one owner (a {@link Client}, a push, or a
 * lone gzip stream), started at the first chunk that compresses (or by
 * {@link start}) and ended by {@link close}: the owner that opened them
 * closes them, so a command never waits on a thread it forgot. While idle
 * they are also unref'd, so a library caller that never closes does not
 * keep its process alive. A worker that fails fails its jobs and is
 * replaced; jobs after `close` are refused.
 */
export class GzipWorkers {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; data: Uint8Array; last: boolean; level: number }[] = [];
  private busy = 0;
  private nextId = 0;
  private closed = false;

  constructor(readonly size: number = workerCount()) {}

  /** Starts the threads now (one takes ~25 ms to boot), for a push that will compress. */
  start(): void {
    while (!this.closed && this.workers.length < this.size) this.spawn();
  }

  private spawn(): void {
    const w = new (WorkerThread())(new URL('./gzip-worker.js', import.meta.url));
    w.unref();
    w.on('message', (msg: { id: number; data: Uint8Array }) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      this.release(w);
      p?.resolve(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
    });
    w.on('error', (err) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`a gzip worker exited (${code})`)));
    this.workers.push(w);
    this.idle.push(w);
  }

  /** A worker died: its job fails, and a new one takes its place. */
  private lost(w: Worker, err: Error): void {
    const at = this.workers.indexOf(w);
    if (at === -1) return;
    this.workers.splice(at, 1);
    const idleAt = this.idle.indexOf(w);
    if (idleAt !== -1) this.idle.splice(idleAt, 1);
    for (const [id, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      this.busy--;
      p.reject(err);
    }
    if (this.closed) return;
    this.spawn();
    this.pump();
    this.settle();
  }

  private release(w: Worker): void {
    this.busy--;
    this.idle.push(w);
    this.pump();
    this.settle();
  }

  /** Idle threads hold nothing: unref them so an unclosed pool never keeps a process alive. */
  private settle(): void {
    if (this.busy === 0 && this.queue.length === 0) for (const x of this.workers) x.unref();
  }

  deflate(data: Uint8Array, last: boolean, level: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new ClientError('ERR_ABORTED', 'compression stopped'));
    if (this.workers.length === 0) this.start();
    const id = this.nextId++;
    const promise = new Promise<Buffer>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ id, data, last, level });
    this.pump();
    return promise;
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      const p = this.pending.get(job.id);
      if (!p) continue;
      p.worker = w;
      // Transfer the input's memory when it is a whole buffer of its own; copy a slice
      // (of a pooled or concatenated buffer) into one.
      const whole = job.data.byteOffset === 0 && job.data.byteLength === job.data.buffer.byteLength && job.data.buffer instanceof ArrayBuffer;
      const data = whole ? job.data : new Uint8Array(job.data);
      const transfer = data.buffer as ArrayBuffer;
      try {
        w.postMessage({ ...job, data }, [transfer]);
      } catch (err) {
        this.pending.delete(job.id);
        this.idle.push(w);
        p.reject(err as Error);
        continue;
      }
      this.busy++;
      w.ref();
    }
  }

  /** Ends the threads; jobs still queued or running fail with ERR_ABORTED. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = new ClientError('ERR_ABORTED', 'compression stopped');
    for (const p of this.pending.values()) p.reject(stopped);
    this.pending.clear();
    this.queue.length = 0;
    const workers = this.workers.splice(0);
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function workerCount(): number {
  return Math.max(1, Number(process.env.PIER_GZIP_WORKERS) || availableParallelism());
}

const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/**
 * A Transform from uncompressed bytes to one gzip member, deflated on the
 * threads of `workers`. Without `workers`, the stream starts threads of its
 * own (at the first chunk that compresses) and ends them when it ends or is
 * destroyed.
 */
export function createParallelGzip(settings: GzipSettings = DEFAULT_GZIP, workers?: GzipWorkers): Transform {
  // Started at the first chunk that compresses: incompressible layers never start the workers.
  let own: GzipWorkers | undefined;
  const pool = (): GzipWorkers => workers ?? (own ??= new GzipWorkers());
  const maxInFlight = (workers?.size ?? workerCount()) * 2;
  const inFlight: Promise<Buffer>[] = [];
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  let crc = 0;
  let total = 0;
  let headerSent = false;

  function submit(stream: Transform, data: Buffer, last: boolean): void {
    if (!headerSent) {
      stream.push(HEADER);
      headerSent = true;
    }
    crc = zlib().crc32(data, crc);
    total += data.length;
    if (settings.level === 0 || !compresses(data)) inFlight.push(Promise.resolve(storedBlocks(data, last)));
    else {
      const p = pool().deflate(data, last, settings.level);
      // Awaited in order by drainTo; a stream destroyed before then must not leave an unhandled rejection.
      p.catch(() => undefined);
      inFlight.push(p);
    }
  }

  async function drainTo(stream: Transform, keep: number): Promise<void> {
    while (inFlight.length > keep) stream.push(await inFlight.shift()!);
  }

  return new Transform({
    destroy(err, callback) {
      inFlight.length = 0;
      if (!own) return callback(err);
      own.close().then(() => callback(err), () => callback(err));
    },
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      buffered.push(chunk);
      bufferedBytes += chunk.length;
      if (bufferedBytes < settings.chunkSize) return callback();
      // The stream hands chunks over: a lone chunk is used (and transferred to a worker) as is.
      const all = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered, bufferedBytes);
      // Measured once: submitting may transfer (detach) `all` to a worker.
      const length = all.length;
      let offset = 0;
      while (length - offset >= settings.chunkSize) {
        const last = offset + settings.chunkSize === length;
        // Keep the remainder before handing the whole buffer away.
        if (last) buffered = [];
        else if (length - offset - settings.chunkSize < settings.chunkSize) buffered = [Buffer.from(all.subarray(offset + settings.chunkSize))];
        submit(this, all.subarray(offset, offset + settings.chunkSize), false);
        offset += settings.chunkSize;
      }
      if (offset === 0) buffered = [all];
      bufferedBytes = length - offset;
      drainTo(this, maxInFlight - 1).then(() => callback(), callback);
    },
    flush(callback: TransformCallback) {
      submit(this, Buffer.concat(buffered, bufferedBytes), true);
      buffered = [];
      drainTo(this, 0).then(() => {
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(crc >>> 0, 0);
        trailer.writeUInt32LE(total % 2 ** 32, 4);
        this.push(trailer);
        callback();
      }, callback);
      // A stream's own threads end with it (the Transform is destroyed after 'end' by autoDestroy).
    },
  });
}
