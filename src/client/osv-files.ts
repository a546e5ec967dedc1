/**
 * Reading an OSV database from files, for `pier vulndb import`: a
 * directory tree of OSV JSON files (read recursively), per-ecosystem
 * `all.zip` exports (as osv.dev publishes them), or one such file. The
 * records go to the registry in batches; the client only parses JSON, the
 * registry validates each record.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { ClientError } from './errors.js';

/** Calls `batch` with records, about `batchBytes` of JSON at a time; returns how many records and the newest `modified`. */
export async function readOsvRecords(root: string, batch: (records: unknown[]) => Promise<void>, batchBytes = 4 * 1024 * 1024): Promise<{ records: number; files: number; newest: string | undefined }> {
  let pending: unknown[] = [];
  let pendingBytes = 0;
  let records = 0;
  let files = 0;
  let newest: string | undefined;
  const add = async (text: string, where: string) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ClientError('ERR_SOURCE', `${where}: not JSON (${(err as Error).message})`);
    }
    for (const r of Array.isArray(value) ? (value as unknown[]) : [value]) {
      const modified = (r as { modified?: unknown } | null)?.modified;
      if (typeof modified === 'string' && !Number.isNaN(Date.parse(modified)) && (newest === undefined || Date.parse(modified) > Date.parse(newest))) newest = modified;
      pending.push(r);
      records++;
    }
    pendingBytes += text.length;
    if (pendingBytes >= batchBytes) {
      const out = pending;
      pending = [];
      pendingBytes = 0;
      await batch(out);
    }
  };
  const visit = async (p: string): Promise<void> => {
    const s = await stat(p).catch((err: NodeJS.ErrnoException) => {
      throw new ClientError('ERR_SOURCE', `cannot read ${p}: ${err.code ?? err.message}`);
    });
    if (s.isDirectory()) {
      for (const e of (await readdir(p)).sort()) await visit(path.join(p, e));
    } else if (p.endsWith('.zip')) {
      files++;
      let entries: Record<string, Uint8Array>;
      try {
        entries = unzipSync(await readFile(p), { filter: (f) => f.name.endsWith('.json') });
      } catch (err) {
        throw new ClientError('ERR_SOURCE', `${p}: not a zip archive (${(err as Error).message})`);
      }
      for (const name of Object.keys(entries).sort()) await add(Buffer.from(entries[name]!).toString('utf8'), `${p}:${name}`);
    } else if (p.endsWith('.json')) {
      files++;
      await add(await readFile(p, 'utf8'), p);
    }
  };
  await visit(root);
  if (pending.length) await batch(pending);
  return { records, files, newest };
}
