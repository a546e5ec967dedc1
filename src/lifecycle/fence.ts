/**
 * The blob fence: how online GC and pushes agree about a digest without
 * stopping the registry (docs/decisions/0020-online-gc.md).
 *
 * A push *claims* a digest for as long as it takes to make the blob
 * visible (commit the upload, link it into the repository, or mount it);
 * GC *fences* a digest while it deletes links or bytes. The two exclude
 * each other: GC skips claimed digests, and a claim waits until a fence
 * on its digest is lifted. Every path that creates a repository link
 * holds a claim, so a link never appears while GC is deleting the blob
 * behind it.
 *
 * In-process by design: the registry is one process over SQLite, and GC
 * runs inside it (on its schedule or through `POST /pier/v1/gc`). A
 * scale-out deployment replaces this with the same protocol on database
 * rows (a claims table and a tombstones table checked in one transaction).
 */
export class BlobFence {
  private readonly claims = new Map<string, number>();
  private readonly fences = new Map<string, Promise<void>>();

  /** Claims `digest`, waiting while GC holds a fence on it. Call the returned function once done. */
  async claim(digest: string): Promise<() => void> {
    for (let fence = this.fences.get(digest); fence; fence = this.fences.get(digest)) await fence;
    this.claims.set(digest, (this.claims.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.claims.get(digest) ?? 1) - 1;
      if (n <= 0) this.claims.delete(digest);
      else this.claims.set(digest, n);
    };
  }

  isClaimed(digest: string): boolean {
    return this.claims.has(digest);
  }

  /**
   * Fences every digest of `digests` that is neither claimed nor fenced
   * already; returns those, and `lift()` to release them.
   */
  fence(digests: Iterable<string>): { fenced: string[]; lift: () => void } {
    const fenced: string[] = [];
    let open!: () => void;
    const lifted = new Promise<void>((resolve) => {
      open = resolve;
    });
    for (const d of digests) {
      if (this.claims.has(d) || this.fences.has(d)) continue;
      this.fences.set(d, lifted);
      fenced.push(d);
    }
    return {
      fenced,
      lift: () => {
        for (const d of fenced) this.fences.delete(d);
        open();
      },
    };
  }
}
