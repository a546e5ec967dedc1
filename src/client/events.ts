/** Events the push and pull engines report, rendered by progress.ts (TTY, plain, JSON). */

/** `pulling`/`pulled`: a blob read from a registry into a file destination (`pier pull`). */
export type BlobStatus = 'preparing' | 'waiting' | 'pushing' | 'exists' | 'mounted' | 'pushed' | 'pulling' | 'pulled';

export type PushEvent =
  /** `id` is the first 12 hex digits of the blob's digest (or diffID before compression). */
  | { type: 'blob'; id: string; kind: 'layer' | 'config'; status: BlobStatus; digest?: string; size?: number; from?: string }
  | { type: 'progress'; id: string; current: number; total?: number }
  /** A layer is being compressed (the diffID cache had no answer). */
  | { type: 'compress'; id: string; diffID: string }
  /** An upload continues where the registry left it. */
  | { type: 'resume'; id: string; offset: number }
  | { type: 'retry'; id?: string; attempt: number; delay: number; reason: string }
  | { type: 'warning'; message: string }
  | { type: 'manifest'; reference: string; digest: string; size: number; mediaType: string; tag?: string }
  /** A pull finished: the image is at `destination` (`oci:DIR:TAG`, ...). */
  | { type: 'saved'; destination: string; digest: string };

export type EventSink = (event: PushEvent) => void;

export function shortId(digest: { encoded: string }): string {
  return digest.encoded.slice(0, 12);
}
