/**
 * Free-space accounting for the folders Pier writes to (the fs blob store
 * and the SQLite database's folder). A store asks {@link DiskSpace.ensureRoom}
 * before it takes in new bytes; below the configured minimum the answer is
 * ERR_STORAGE_LOW, so uploads are refused while there is still room for the
 * metadata database (manifest pushes, tag moves, session bookkeeping) and
 * for the writes already under way.
 *
 * Not a reservation in the accounting sense: concurrent writers each see
 * the same free space, so the floor can be undershot by what they have in
 * flight (one check interval each). The minimum should be larger than that.
 *
 * A reading of the volumes (statfs) answers the checks of the next
 * {@link REUSE_MS} while every volume has more than {@link REUSE_HEADROOM}
 * above its floor besides the bytes asked for; nearer the floor every check
 * reads the volumes again. Checks that arrive together share one reading.
 * What is written between two readings is not seen, so the headroom bounds
 * it: the floor holds unless more than 1 GiB is written in 250 ms.
 * (Many uploads at once asked statfs thousands of times a second: 4 % of
 * the event loop in a profile of 50 concurrent pushes; decision 0131.)
 */
import { statfs } from 'node:fs/promises';
import { BlobStoreError } from './blob/blob-store.js';

/** How long (ms) one reading of the volumes may answer checks. */
export const REUSE_MS = 250;
/** A reading is reused only while every volume has this much (bytes) above its floor, besides the bytes asked for. */
export const REUSE_HEADROOM = 1024 ** 3;

/** The configured floor: absolute bytes, or a percentage of the volume's size. */
export type MinFree = { bytes: number } | { percent: number };

export interface VolumeStatus {
  /** What the folder is for: `storage`, `database`. */
  name: string;
  path: string;
  /** Bytes available to this (unprivileged) process. */
  free: number;
  /** Size of the volume in bytes. */
  total: number;
  /** The floor in bytes for this volume. */
  minFree: number;
  /** True when free space is below the floor: new uploads are refused. */
  low: boolean;
}

export interface SpaceGuard {
  /**
   * Throws ERR_STORAGE_LOW when writing `bytes` more would leave less than
   * the minimum free on any watched volume. Errors reading the volume's
   * statistics are ignored (the write itself will report a real failure).
   */
  ensureRoom(bytes: number): Promise<void>;
}

/** A guard that never refuses (no minimum configured). */
export const NO_GUARD: SpaceGuard = { ensureRoom: async () => undefined };

export class DiskSpace implements SpaceGuard {
  private last: { at: number; volumes: VolumeStatus[] } | undefined;
  private inFlight: Promise<VolumeStatus[]> | undefined;

  /** `reuse`: how long and how far from the floor a reading answers checks (tests shrink it). */
  constructor(
    private readonly volumes: { name: string; path: string }[],
    private readonly minFree: MinFree,
    private readonly reuse: { ms: number; headroom: number } = { ms: REUSE_MS, headroom: REUSE_HEADROOM },
  ) {}

  private floor(total: number): number {
    return 'bytes' in this.minFree ? this.minFree.bytes : Math.ceil((total * this.minFree.percent) / 100);
  }

  /** Current free space of every watched folder. */
  async status(): Promise<VolumeStatus[]> {
    const out: VolumeStatus[] = [];
    for (const v of this.volumes) {
      try {
        const s = await statfs(v.path);
        const free = s.bavail * s.bsize;
        const total = s.blocks * s.bsize;
        const minFree = this.floor(total);
        out.push({ ...v, free, total, minFree, low: free < minFree });
      } catch {
        // The folder is gone or unreadable: the stores report that themselves.
      }
    }
    return out;
  }

  /** The last reading if it may answer a check for `bytes` (see the module's comment), else a new one (shared by the checks waiting for it). */
  private async reading(bytes: number): Promise<VolumeStatus[]> {
    const last = this.last;
    const { ms, headroom } = this.reuse;
    if (last && Date.now() - last.at < ms && last.volumes.every((v) => v.free - bytes - headroom >= v.minFree)) return last.volumes;
    this.inFlight ??= this.status().then(
      (volumes) => {
        this.last = { at: Date.now(), volumes };
        this.inFlight = undefined;
        return volumes;
      },
      (err: unknown) => {
        this.inFlight = undefined;
        throw err;
      },
    );
    return this.inFlight;
  }

  async ensureRoom(bytes: number): Promise<void> {
    if ('bytes' in this.minFree ? this.minFree.bytes === 0 : this.minFree.percent === 0) return;
    for (const v of await this.reading(bytes)) {
      if (v.free - bytes < v.minFree) {
        const need = bytes > 0 ? ` for ${bytes} more bytes` : '';
        throw new BlobStoreError('ERR_STORAGE_LOW', `the registry is out of storage: ${v.name} has ${v.free} bytes free${need}, below the minimum of ${v.minFree}`);
      }
    }
  }
}
