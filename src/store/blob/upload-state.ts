/**
 * Where an object-store upload session keeps its state: in the database,
 * shared by every replica, so a chunk may land on any of them (Quay keeps
 * its upload state the same way). Not in a process, not in a signed URL.
 *
 * A session is the bytes received so far, held as S3 multipart parts
 * (each at least 5 MiB, in order) followed by small staged objects (the
 * tail that is not yet a part). `size` is always the parts' bytes plus the
 * staged bytes: what a client resumes from.
 *
 * One writer at a time: a writer first {@link UploadStateStore.acquire}s
 * the session with a token for a while, renews it while it works, and every
 * {@link UploadStateStore.save} is fenced by that token, so a writer that
 * lost the session (it expired and another took it) can never overwrite the
 * newer state.
 */

/** One multipart part, numbered from 1 in byte order. */
export interface UploadPart {
  number: number;
  etag: string;
  size: number;
}

/** One staged object (a tail shorter than a part), in byte order. */
export interface StagedChunk {
  key: string;
  size: number;
}

export interface UploadState {
  /** Bytes received: the parts' sizes plus the staged chunks'. */
  size: number;
  /** The object store's multipart upload id, once the first part is written. */
  multipartId: string | undefined;
  parts: UploadPart[];
  staged: StagedChunk[];
  /** The parts were completed into the session's object (commit got that far; no more appends). */
  assembled: boolean;
}

export type AcquireResult = 'held' | 'busy' | 'missing';

export interface UploadStateStore {
  /** Records a new, empty session. */
  create(id: string): Promise<void>;
  /** The session's state, or undefined if there is none. */
  get(id: string): Promise<UploadState | undefined>;
  /**
   * Takes (or, with the same token, renews) the session for `ttlMs`.
   * 'busy' when another token holds it and has not expired.
   */
  acquire(id: string, token: string, ttlMs: number): Promise<AcquireResult>;
  /** Lets go of the session if `token` holds it. */
  release(id: string, token: string): Promise<void>;
  /** Writes the state if `token` still holds the session; false when it does not (or the session is gone). */
  save(id: string, token: string, state: UploadState): Promise<boolean>;
  /** Forgets the session; unknown ids are ignored. */
  delete(id: string): Promise<void>;
  /** Sessions not written to since `before` and not held by a writer. */
  idleSince(before: Date): Promise<string[]>;
}
