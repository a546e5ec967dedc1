/** Read access to a folder or to the members of an (uncompressed) tar file, behind one interface. */
import { createReadStream, readSync } from 'node:fs';
import { readFile, stat, open, type FileHandle } from 'node:fs/promises';
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
  close(): Promise<void>;
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
  async close(): Promise<void> {}
}

/**
 * Bytes [start, end) of an open file as a stream of positioned reads. Several
 * may run at once on one handle; destroying one never closes the handle
 * (an fs.ReadStream on a shared fd closes it when destroyed, even with
 * autoClose off). Reads are fresh whole buffers, so a gzip worker can take
 * them without a copy.
 */
function rangeStream(fh: FileHandle, start: number, end: number, where: string): Readable {
  let pos = start;
  return new Readable({
    highWaterMark: HWM,
    read() {
      const n = Math.min(HWM, end - pos);
      if (n <= 0) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafeSlow(n);
      fh.read(buf, 0, n, pos).then(
        ({ bytesRead }) => {
          if (this.destroyed) return;
          if (bytesRead === 0) return void this.destroy(new ClientError('ERR_SOURCE', `${where}: truncated archive`));
          pos += bytesRead;
          this.push(bytesRead === n ? buf : buf.subarray(0, bytesRead));
        },
        (err: Error) => this.destroy(err),
      );
    },
  });
}

/**
 * Members of a tar file, read through one open handle with positioned
 * reads: a 100-layer archive is one open(), not one per layer and look.
 */
export class TarFiles implements Files {
  private constructor(
    readonly where: string,
    private readonly fh: FileHandle,
    private readonly entries: Map<string, TarEntry>,
  ) {}

  static async open(path: string): Promise<TarFiles> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (cause) {
      throw new ClientError('ERR_SOURCE', `cannot read ${path}`, { cause });
    }
    try {
      return new TarFiles(path, fh, await indexTar(path, fh));
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private closed = false;
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  /** `length` bytes at `position`, all of them (short reads are continued). Small reads are synchronous. */
  private async readAt(length: number, position: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const bytesRead = length <= 64 * 1024 ? readSync(this.fh.fd, buf, done, length - done, position + done) : (await this.fh.read(buf, done, length - done, position + done)).bytesRead;
      if (bytesRead === 0) throw new ClientError('ERR_SOURCE', `${this.where}: truncated archive`);
      done += bytesRead;
    }
    return buf;
  }

  private entry(path: string): TarEntry {
    const e = this.entries.get(path.replace(/^\.\//, ''));
    if (!e) throw new ClientError('ERR_SOURCE', `${this.where}: no ${path} in the archive`);
    return e;
  }
  async read(path: string): Promise<Buffer> {
    const e = this.entry(path);
    return this.readAt(e.size, e.offset);
  }
  async size(path: string): Promise<number | undefined> {
    return this.entries.get(path.replace(/^\.\//, ''))?.size;
  }
  open(path: string, start = 0): Readable {
    const e = this.entry(path);
    if (e.size === 0 || start >= e.size) return Readable.from([]);
    return rangeStream(this.fh, e.offset + start, e.offset + e.size, this.where);
  }
  async head(path: string, n: number): Promise<Buffer> {
    const e = this.entry(path);
    return this.readAt(Math.min(n, e.size), e.offset);
  }
}
