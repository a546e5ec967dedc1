/**
 * Random access into an uncompressed tar file: one pass over the headers
 * (seeking past contents; synchronous 512-byte reads, a few microseconds
 * each, where awaiting each would cost a thread-pool round trip) gives each
 * regular file's offset and size, so a
 * layer inside a `docker save` tarball or an OCI archive can be streamed
 * straight from disk, any number of times, from any offset.
 */
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ClientError } from './errors.js';

export interface TarEntry {
  offset: number;
  size: number;
}

function field(buf: Buffer, start: number, length: number): string {
  const slice = buf.subarray(start, start + length);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul === -1 ? length : nul).toString('utf8');
}

function octal(buf: Buffer, start: number, length: number): number {
  if ((buf[start]! & 0x80) !== 0) {
    // base-256 (GNU) for sizes over 8 GiB
    let n = 0;
    for (let i = start + 1; i < start + length; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = field(buf, start, length).trim();
  return s ? parseInt(s, 8) : 0;
}

function normalise(name: string): string {
  return name.replace(/^\.\//, '').replace(/^\/+/, '');
}

/** Maps member names (without a leading `./`) of the tar open as `fh` to their content's location. Symlinks are resolved. */
export async function indexTar(path: string, fh: FileHandle): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const links = new Map<string, string>();
  try {
    const { size: fileSize } = await fh.stat();
    const header = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    while (pos + 512 <= fileSize) {
      const bytesRead = readSync(fh.fd, header, 0, 512, pos);
      if (bytesRead < 512) break;
      if (header.every((b) => b === 0)) break;
      const size = octal(header, 124, 12);
      const type = String.fromCharCode(header[156] || 0x30);
      const dataOffset = pos + 512;
      const next = dataOffset + Math.ceil(size / 512) * 512;
      if (type === 'L' || type === 'x') {
        const data = Buffer.alloc(size);
        readSync(fh.fd, data, 0, size, dataOffset);
        if (type === 'L') longName = field(data, 0, size);
        else {
          for (const rec of data.toString('utf8').split('\n')) {
            const m = /^\d+ path=(.*)$/.exec(rec);
            if (m) paxPath = m[1];
          }
        }
        pos = next;
        continue;
      }
      const prefix = field(header, 345, 155);
      const base = field(header, 0, 100);
      const name = normalise(paxPath ?? longName ?? (prefix ? `${prefix}/${base}` : base));
      longName = undefined;
      paxPath = undefined;
      if (type === '0' || type === '\0' || type === '7') entries.set(name, { offset: dataOffset, size });
      else if (type === '1' || type === '2') {
        const target = field(header, 157, 100);
        const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/') + 1) : '';
        links.set(name, type === '1' ? normalise(target) : normalise(target.startsWith('/') ? target : dir + target));
      }
      pos = next;
    }
  } catch (cause) {
    throw new ClientError('ERR_SOURCE', `reading tar ${path}`, { cause });
  }
  for (const [name, target] of links) {
    let t = target;
    for (let i = 0; i < 8 && !entries.has(t) && links.has(t); i++) t = links.get(t)!;
    const resolved = entries.get(t.split('/').reduce<string[]>((acc, p) => (p === '..' ? acc.slice(0, -1) : p === '.' ? acc : [...acc, p]), []).join('/'));
    if (resolved) entries.set(name, resolved);
  }
  return entries;
}
