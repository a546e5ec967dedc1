/**
 * SHA-256 of upload bodies computed on a worker thread, so that the main
 * thread (which parses requests and copies bodies) and the hash use both
 * cores. With many uploads at once hashing was the largest share of the
 * main thread's time, and the main thread bounded the wall time
 * (decision 0135).
 *
 * Each running hash lives in the worker under a number. Updates are
 * messages, answered in order: a view of a `SharedArrayBuffer` (a pooled
 * batch) is read in place, any other bytes are copied into the message.
 * The caller must not change shared bytes until their update resolves.
 *
 * If the worker fails or exits, every hash it held is lost: pending and
 * later updates resolve, and {@link ThreadHash.digest} resolves to
 * undefined, which callers take as "re-read the bytes" (the fs store's
 * commit does). A new worker starts for hashes begun afterwards.
 *
 * The worker starts with the first hash and stops {@link IDLE_MS} after the
 * last one is disposed, so a registry at rest holds no thread; it keeps
 * the process alive only while an answer is awaited.
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Bytes hashed between two young-generation collections in the worker. */
const GC_EVERY = 32 * 1024 * 1024;
/** How long the worker stays after its last hash is disposed. */
const IDLE_MS = 30_000;

const WORKER_SOURCE = `
(() => {
  const { parentPort } = require('node:worker_threads');
  const { createHash } = require('node:crypto');
  // The young generation's collector: a global once --expose-gc is set (it may already be).
  let collect = typeof globalThis.gc === 'function' ? globalThis.gc : undefined;
  if (collect === undefined) {
    try {
      require('node:v8').setFlagsFromString('--expose-gc');
      collect = require('node:vm').runInNewContext('gc');
    } catch {}
  }
  const hashes = new Map();
  let sinceGc = 0;
  parentPort.on('message', (m) => {
    if (m.op === 'drop') { hashes.delete(m.id); return; }
    let h = hashes.get(m.id);
    if (h === undefined) { h = createHash('sha256'); hashes.set(m.id, h); }
    if (m.op === 'update') {
      h.update(m.bytes);
      parentPort.postMessage({ seq: m.seq });
      // Each message's view keeps its (shared) buffer alive until this thread collects it;
      // its heap barely grows, so it would rarely collect on its own.
      sinceGc += m.bytes.length;
      if (sinceGc >= ${GC_EVERY} && typeof collect === 'function') { sinceGc = 0; collect({ type: 'minor' }); }
    } else parentPort.postMessage({ seq: m.seq, hex: h.copy().digest('hex') });
  });
})();
`;

/** Requests answered by the worker (each gets a sequence number); 'drop' is not answered. */
type Request = { op: 'update'; id: number; bytes: Uint8Array } | { op: 'digest'; id: number };

/** One worker and the requests waiting for its answers. */
class HashWorker {
  readonly worker: Worker;
  private readonly waiting = new Map<number, (hex: string | undefined) => void>();
  private seq = 0;
  failed = false;

  constructor(onGone: (worker: HashWorker) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, name: 'pier-hash' });
    this.worker.on('message', (m: { seq: number; hex?: string }) => {
      const done = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if (this.waiting.size === 0) this.worker.unref();
      done?.(m.hex);
    });
    const gone = () => {
      if (this.failed) return;
      this.failed = true;
      for (const done of this.waiting.values()) done(undefined);
      this.waiting.clear();
      onGone(this);
    };
    this.worker.on('error', gone);
    this.worker.on('exit', gone);
    // After the listeners: the thread keeps the process alive only while an answer is awaited.
    this.worker.unref();
  }

  /** Sends `message`; resolves with the worker's answer (undefined once the worker is gone). */
  ask(message: Request): Promise<string | undefined> {
    if (this.failed) return Promise.resolve(undefined);
    const seq = ++this.seq;
    return new Promise((resolve) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(seq, resolve);
      this.worker.postMessage({ ...message, seq });
    });
  }

  tell(message: { op: 'drop'; id: number }): void {
    if (!this.failed) this.worker.postMessage(message);
  }
}

let current: HashWorker | undefined;
let live = 0;
let nextId = 0;
let idleTimer: NodeJS.Timeout | undefined;

function worker(): HashWorker {
  if (idleTimer !== undefined) {
    clearTimeout(idleTimer);
    idleTimer = undefined;
  }
  current ??= new HashWorker((gone) => {
    if (current === gone) current = undefined;
  });
  return current;
}

function released(): void {
  live -= 1;
  if (live > 0 || current === undefined) return;
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    const stopping = current;
    current = undefined;
    void stopping?.worker.terminate();
  }, IDLE_MS);
  idleTimer.unref();
}

/** A running SHA-256 whose updates may complete later. */
export interface RunningHash {
  /** Adds `bytes`; resolves once they were read (shared bytes may be changed then). */
  update(bytes: Uint8Array): Promise<void>;
  /** The hex digest of every byte added so far (the hash can go on), or undefined if it was lost. */
  digest(): Promise<string | undefined>;
  /** Frees the hash; later digests are undefined. */
  dispose(): void;
}

/** A running SHA-256 on the calling thread. */
export class InlineHash implements RunningHash {
  private hash: Hash | undefined = createHash('sha256');

  update(bytes: Uint8Array): Promise<void> {
    this.hash?.update(bytes);
    return Promise.resolve();
  }

  digest(): Promise<string | undefined> {
    return Promise.resolve(this.hash?.copy().digest('hex'));
  }

  dispose(): void {
    this.hash = undefined;
  }
}

/** A running SHA-256 on the hash thread. */
export class ThreadHash implements RunningHash {
  private readonly id = ++nextId;
  private readonly owner = worker();
  private disposed = false;

  constructor() {
    live += 1;
  }

  /** Adds `bytes`; resolves once the worker has read them (shared bytes may be changed then). */
  async update(bytes: Uint8Array): Promise<void> {
    await this.owner.ask({ op: 'update', id: this.id, bytes });
  }

  /** The hex digest of every byte added so far (the hash can go on), or undefined if it was lost. */
  async digest(): Promise<string | undefined> {
    if (this.disposed) return undefined;
    return this.owner.ask({ op: 'digest', id: this.id });
  }

  /** Frees the hash in the worker; later digests are undefined. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.owner.tell({ op: 'drop', id: this.id });
    released();
  }
}

/** Whether a hash thread is running now. */
export function hashThreadRunning(): boolean {
  return current !== undefined;
}

/** Stops the hash thread now; the hashes it held are lost (their digests are undefined). */
export async function stopHashThread(): Promise<void> {
  const stopping = current;
  current = undefined;
  await stopping?.worker.terminate();
}

/**
 * A running SHA-256 that picks its thread at its first update: the hash
 * thread if `busy()` says the main thread has other uploads to serve then,
 * the calling thread otherwise. Alone, an upload hashes faster and cheaper
 * inline (1 GiB: 2.5–3.0 CPU-s inline, 3.1–3.6 on the thread, whose
 * messages and wake-ups cost more than they save); with many at once the
 * main thread is the bound, and hashing was its largest share (decision
 * 0135).
 */
export class ChoosingHash implements RunningHash {
  private chosen: RunningHash | undefined;
  private disposed = false;

  constructor(private readonly busy: () => boolean) {}

  private hash(): RunningHash {
    this.chosen ??= this.busy() ? new ThreadHash() : new InlineHash();
    return this.chosen;
  }

  update(bytes: Uint8Array): Promise<void> {
    if (this.disposed) return Promise.resolve();
    return this.hash().update(bytes);
  }

  digest(): Promise<string | undefined> {
    if (this.disposed) return Promise.resolve(undefined);
    // No bytes yet: the empty digest needs no thread.
    this.chosen ??= new InlineHash();
    return this.chosen.digest();
  }

  dispose(): void {
    this.disposed = true;
    this.chosen?.dispose();
  }

  /** Where the hash runs: undefined before the first update (for tests). */
  get thread(): 'inline' | 'worker' | undefined {
    return this.chosen === undefined ? undefined : this.chosen instanceof ThreadHash ? 'worker' : 'inline';
  }
}
