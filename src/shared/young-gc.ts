/**
 * Frees request bodies' memory soon after use. Node's HTTP parser copies
 * every piece of a request body (up to 64 KiB) into a fresh Buffer whose
 * memory (malloc'd, outside the JS heap) is given back only when V8
 * collects the Buffer object. While an upload streams, the JS heap barely
 * grows, so V8 rarely collects on its own: dead body buffers piled up to
 * ~40 MB of RSS per upload, and the old-generation collections V8 then ran
 * for the external memory cost ~1 CPU-s per GiB on a registry's heap.
 * Bodies die young (they live only until written), so a young-generation
 * collection (a scavenge, well under a millisecond on a quiet heap) after
 * every {@link YOUNG_GC_EVERY} bytes received frees them.
 *
 * V8 exposes collection to JavaScript only under `--expose-gc`; the flag is
 * set at the first call and the `gc` function taken from a fresh context
 * (the flag installs it in contexts created afterwards). If that fails,
 * the hint does nothing. docs/decisions/0129-young-gc-after-upload-bytes.md
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes received (by all uploads of the process together) between two young-generation collections. */
export const YOUNG_GC_EVERY = 4 * 1024 * 1024;

type GcFunction = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let collect: GcFunction | null | undefined;
let since = 0;

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

/** Counts `bytes` of request body taken in; every {@link YOUNG_GC_EVERY} bytes, collects the young generation. */
export function noteBytesReceived(bytes: number): void {
  since += bytes;
  if (since < YOUNG_GC_EVERY) return;
  since = 0;
  if (collect === undefined) collect = gcFunction();
  collect?.({ type: 'minor' });
}
