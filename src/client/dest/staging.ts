/**
 * The temporary folder a pull writes into: created next to the destination
 * (same file system, so the final step is a rename), removed on discard.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { ClientError } from '../errors.js';

export class Staging {
  private constructor(
    /** The staging folder. */
    readonly dir: string,
    private readonly destination: string,
    /** The first parent folder this pull created (removed again on discard when still empty). */
    private readonly createdParent: string | undefined,
  ) {}

  /** Creates `.NAME.pier-XXXXXX` beside `destination`. */
  static async create(destination: string): Promise<Staging> {
    const parent = dirname(destination);
    try {
      const created = await mkdir(parent, { recursive: true });
      return new Staging(await mkdtemp(join(parent, `.${basename(destination)}.pier-`)), destination, created);
    } catch (cause) {
      throw new ClientError('ERR_CONFIG', `cannot write beside ${destination}`, { cause });
    }
  }

  /**
   * Streams `body` through `transforms` into `path` (relative to the staging
   * folder) under a temporary name, syncs it, and renames it into place only
   * when the whole pipeline succeeded.
   */
  async writeStream(path: string, body: Readable, transforms: Transform[] = []): Promise<void> {
    const full = join(this.dir, path);
    await mkdir(dirname(full), { recursive: true });
    const part = `${full}.part-${randomBytes(4).toString('hex')}`;
    // flush: the file is fsynced before the stream closes it.
    await pipeline([body, ...transforms, createWriteStream(part, { flush: true, highWaterMark: 1 << 20 })]);
    await rename(part, full);
  }

  async writeBytes(path: string, bytes: Uint8Array): Promise<void> {
    const full = join(this.dir, path);
    await mkdir(dirname(full), { recursive: true });
    const fh = await open(full, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /**
   * Packs the staging folder (files in sorted order, folders first) into a
   * tar at the destination: written to a temporary name beside it, synced,
   * then renamed over it.
   */
  async packInto(): Promise<void> {
    const files = await listFiles(this.dir);
    const part = `${this.dir}.tar`;
    const tar = pack();
    try {
      const writing = pipeline(tar, createWriteStream(part, { flush: true, highWaterMark: 1 << 20 }));
      const dirs = new Set<string>();
      for (const file of files) {
        const rel = relative(this.dir, file).split('\\').join('/');
        const parts = rel.split('/');
        for (let i = 1; i < parts.length; i++) {
          const d = parts.slice(0, i).join('/');
          if (dirs.has(d)) continue;
          dirs.add(d);
          tar.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
        }
        const { size } = await stat(file);
        const entry = tar.entry({ name: rel, size, mode: 0o644, mtime: new Date(0) });
        await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), entry);
      }
      tar.finalize();
      await writing;
    } catch (err) {
      tar.destroy();
      await rm(part, { force: true });
      throw err;
    }
    try {
      await rename(part, this.destination);
    } catch (cause) {
      await rm(part, { force: true });
      throw new ClientError('ERR_CONFIG', `cannot write ${this.destination}`, { cause });
    }
  }

  /** Removes the staging folder; after a failed pull, also the parent folders it created (when empty). */
  async discard(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await rm(`${this.dir}.tar`, { force: true });
    if (!this.createdParent || (await exists(this.destination))) return;
    for (let d = dirname(this.destination); d.length >= this.createdParent.length; d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(full)));
    else if (e.isFile()) out.push(full);
  }
  return out;
}
