/** Read access to a folder or to the members of an (uncompressed) tar file, behind one interface. */
import { createReadStream } from 'node:fs';
import { readFile, stat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClientError } from '../errors.js';
import { indexTar, type TarEntry } from '../tar-index.js';

export interface Files {
  readonly where: string;
  read(path: string, limit?: number): Promise<Buffer>;
  size(path: string): Promise<number | undefined>;
  open(path: string, start?: number): Readable;
  /** The first bytes of a file (format sniffing). */
  head(path: string, n: number): Promise<Buffer>;
}

const HWM = 1 << 20;

export class DirFiles implements Files {
  constructor(readonly where: string) {}
  async read(path: string): Promise<Buffer> {
    try {
      return await readFile(join(this.where, path));
    } catch (cause) {
      throw new ClientError('ERR_SOURCE', `${this.where}: cannot read ${path}`, { cause });
    }
  }
  async size(path: string): Promise<number | undefined> {
    try {
      return (await stat(join(this.where, path))).size;
    } catch {
      return undefined;
    }
  }
  open(path: string, start = 0): Readable {
    return createReadStream(join(this.where, path), { start, highWaterMark: HWM });
  }
  async head(path: string, n: number): Promise<Buffer> {
    const fh = await open(join(this.where, path), 'r');
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}

export class TarFiles implements Files {
  private constructor(
    readonly where: string,
    private readonly entries: Map<string, TarEntry>,
  ) {}

  static async open(path: string): Promise<TarFiles> {
    return new TarFiles(path, await indexTar(path));
  }

  private entry(path: string): TarEntry {
    const e = this.entries.get(path.replace(/^\.\//, ''));
    if (!e) throw new ClientError('ERR_SOURCE', `${this.where}: no ${path} in the archive`);
    return e;
  }
  async read(path: string): Promise<Buffer> {
    const e = this.entry(path);
    const fh = await open(this.where, 'r');
    try {
      const buf = Buffer.alloc(e.size);
      await fh.read(buf, 0, e.size, e.offset);
      return buf;
    } finally {
      await fh.close();
    }
  }
  async size(path: string): Promise<number | undefined> {
    return this.entries.get(path.replace(/^\.\//, ''))?.size;
  }
  open(path: string, start = 0): Readable {
    const e = this.entry(path);
    if (e.size === 0 || start >= e.size) return Readable.from([]);
    return createReadStream(this.where, { start: e.offset + start, end: e.offset + e.size - 1, highWaterMark: HWM });
  }
  async head(path: string, n: number): Promise<Buffer> {
    const e = this.entry(path);
    const fh = await open(this.where, 'r');
    try {
      const buf = Buffer.alloc(Math.min(n, e.size));
      await fh.read(buf, 0, buf.length, e.offset);
      return buf;
    } finally {
      await fh.close();
    }
  }
}
