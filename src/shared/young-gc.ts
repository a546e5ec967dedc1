/**
 * Frees request bodies' memory soon after use. Node's HTTP parser copies
 * every piece of a request body (up to 64 KiB) into a fresh Buffer whose
 * memory (malloc'd, outside the JS heap) is given back only when V8
 * collects the Buffer object. While an upload streams, the JS heap barely
 * grows, so V8 rarely collects on its own: dead body buffers piled up to
 * ~40 MB of RSS per upload, and the old-generation collections V8 then ran
 * for the external memory cost ~1 CPU-s per GiB on a registry's heap.
 * Body pieces die young (the fs store copies each into a pooled batch as it
 * arrives), so a young-generation collection (a scavenge, well under a
 * millisecond on a quiet heap) after every {@link YOUNG_GC_EVERY} bytes
 * received frees them.
 *
 * V8 exposes collection to JavaScript only under `--expose-gc`; the flag is
 * set at the first call and the `gc` function taken from a fresh context
 * (the flag installs it in contexts created afterwards). If that fails,
 * the hint does nothing. docs/decisions/0129-young-gc-after-upload-bytes.md
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes received between two young-generation collections, per upload receiving at the time (up to {@link YOUNG_GC_SCALE_MAX}). */
export const YOUNG_GC_EVERY = 4 * 1024 * 1024;
/** The interval stops growing at this many uploads receiving. */
export const YOUNG_GC_SCALE_MAX = 4;

type GcFunction = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let collect: GcFunction | null | undefined;
let since = 0;
let receivingNow = 0;

function gcFunction(): GcFunction | null {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as GcFunction;
  try {
    setFlagsFromString('--expose-gc');
    const fn: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof fn === 'function' ? (fn as GcFunction) : null;
  } catch {
    return null;
  }
}

/**
 * Marks one upload as receiving until the returned function is called (once
 * or more). The interval between collections grows with the uploads
 * receiving, up to {@link YOUNG_GC_SCALE_MAX} times: a scavenge costs in
 * proportion to the young objects still alive, and every request in
 * flight keeps some (measured with 50 pushes of 3 layers at once: 770
 * scavenges of ~1.2 ms a round at 4 MiB, 210 at 16 MiB; decision 0134).
 * One upload alone keeps the 4 MiB that its peak RSS needs.
 */
export function receiving(): () => void {
  receivingNow += 1;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    receivingNow -= 1;
  };
}

/** Uploads receiving now (marked with {@link receiving}). */
export function uploadsReceiving(): number {
  return receivingNow;
}

/** Counts `bytes` of request body taken in; every {@link YOUNG_GC_EVERY} bytes per upload receiving (up to 4), collects the young generation. */
export function noteBytesReceived(bytes: number): void {
  since += bytes;
  if (since < YOUNG_GC_EVERY * Math.min(Math.max(1, receivingNow), YOUNG_GC_SCALE_MAX)) return;
  since = 0;
  if (collect === undefined) collect = gcFunction();
  collect?.({ type: 'minor' });
}
