/**
 * RPM databases, in each of rpm's three backends; every one holds one RPM
 * header blob per installed package:
 *
 * - SQLite (`rpmdb.sqlite`, rpm >= 4.16: Fedora 33+, RHEL/Rocky/Alma 9):
 *   the `Packages` table, read here ({@link readRpmSqlite});
 * - Berkeley DB (`var/lib/rpm/Packages`, RHEL/CentOS 7–8, Amazon Linux 2)
 *   and ndb (`usr/lib/sysimage/rpm/Packages.db`, SUSE): read through
 *   `@snyk/rpm-parser`, imported only when such a file is met
 *   ({@link readRpmDatabase}; decision 0122).
 * The header format (rpm's
 * headerImport / lib/header.c, "Package File Format" in rpm's docs):
 *
 *   [magic 8E AD E8 01 + 4 reserved bytes]   optional; the database omits it
 *   il: int32 BE   number of index entries
 *   dl: int32 BE   bytes in the data store
 *   il × { tag: int32, type: int32, offset: int32, count: int32 }   (BE)
 *   data store: dl bytes; STRING is NUL-terminated, INT32 is BE, aligned
 *
 * Read: NAME (1000), VERSION (1001), RELEASE (1002), EPOCH (1003, INT32),
 * ARCH (1022), SOURCERPM (1044).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Package } from './inventory.js';

const MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
const TYPE_INT32 = 4;
const TYPE_STRING = 6;
const TYPE_I18NSTRING = 9;
const TAG = { name: 1000, version: 1001, release: 1002, epoch: 1003, arch: 1022, sourceRpm: 1044 } as const;
/** Headers past these are refused as corrupt (rpm's own limits: HEADER_TAGS_MAX, HEADER_DATA_MAX). */
const MAX_ENTRIES = 0xffff;
const MAX_DATA = 256 * 1024 * 1024;

export interface RpmHeader {
  name: string;
  version: string;
  release: string;
  epoch: number | undefined;
  arch: string | undefined;
  sourceRpm: string | undefined;
}

/** The fields Pier needs of one RPM header blob; throws on a malformed header. */
export function parseRpmHeader(blob: Buffer): RpmHeader {
  let base = 0;
  if (blob.length >= 8 && blob.subarray(0, 4).equals(MAGIC)) base = 8;
  if (blob.length < base + 8) throw new Error('RPM header too short');
  const il = blob.readUInt32BE(base);
  const dl = blob.readUInt32BE(base + 4);
  if (il > MAX_ENTRIES || dl > MAX_DATA) throw new Error(`RPM header too large (${il} entries, ${dl} bytes)`);
  const store = base + 8 + il * 16;
  if (store + dl > blob.length) throw new Error('RPM header truncated');
  const strings = new Map<number, string>();
  const ints = new Map<number, number>();
  for (let i = 0; i < il; i++) {
    const at = base + 8 + i * 16;
    const tag = blob.readUInt32BE(at);
    const type = blob.readUInt32BE(at + 4);
    const offset = blob.readUInt32BE(at + 8);
    const count = blob.readUInt32BE(at + 12);
    if (offset >= dl) continue;
    if (type === TYPE_STRING || type === TYPE_I18NSTRING) {
      const start = store + offset;
      const end = blob.indexOf(0, start);
      if (end < 0 || end > store + dl) throw new Error(`RPM header string of tag ${tag} is not terminated`);
      strings.set(tag, blob.toString('utf8', start, end));
    } else if (type === TYPE_INT32 && count >= 1 && offset + 4 <= dl) {
      ints.set(tag, blob.readUInt32BE(store + offset));
    }
  }
  const name = strings.get(TAG.name);
  const version = strings.get(TAG.version);
  const release = strings.get(TAG.release);
  if (!name || !version || release === undefined) throw new Error('RPM header without NAME, VERSION or RELEASE');
  return { name, version, release, epoch: ints.get(TAG.epoch), arch: strings.get(TAG.arch), sourceRpm: strings.get(TAG.sourceRpm) };
}

/** `openssl-3.0.7-24.el9.src.rpm` → name `openssl`, version `3.0.7-24.el9`. */
export function parseSourceRpm(file: string): { name: string; version: string } | undefined {
  const m = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(file);
  return m ? { name: m[1]!, version: `${m[2]!}-${m[3]!}` } : undefined;
}

/** An installed package as the inventory holds it: version `[epoch:]version-release`, the source RPM's name as `source`. */
export function rpmPackage(h: RpmHeader): Package {
  const version = `${h.epoch ? `${h.epoch}:` : ''}${h.version}-${h.release}`;
  const source = h.sourceRpm ? parseSourceRpm(h.sourceRpm) : undefined;
  return { type: 'rpm', name: h.name, version, ...(source ? { source: source.name, sourceVersion: `${h.epoch ? `${h.epoch}:` : ''}${source.version}` } : {}) };
}

/**
 * The packages of an rpmdb.sqlite file's bytes. SQLite opens files, not
 * buffers of a WAL database, so the bytes go to a private temporary file
 * (removed before returning). A header that does not parse is skipped
 * (gpg-pubkey pseudo-packages have no SOURCERPM, and are kept).
 */
export function readRpmSqlite(bytes: Buffer): Package[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pier-rpmdb-'));
  try {
    const file = path.join(dir, 'rpmdb.sqlite');
    writeFileSync(file, bytes, { mode: 0o600 });
    // Not read-only: a WAL-mode database (rpm's) without its -shm file cannot be opened read-only. The copy is private.
    const db = new Database(file, { fileMustExist: true });
    try {
      const rows = db.prepare('SELECT blob FROM Packages ORDER BY hnum').all() as { blob: Buffer }[];
      const out: Package[] = [];
      for (const r of rows) {
        try {
          const h = parseRpmHeader(Buffer.from(r.blob));
          if (h.name === 'gpg-pubkey') continue;
          out.push(rpmPackage(h));
        } catch {
          // one damaged header does not hide the others
        }
      }
      return out;
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BDB_HASH_MAGIC = 0x061561;

/**
 * The library reads a truncated Berkeley DB file as one with no packages;
 * its metadata page (db_page.h DBMETA: magic at 12, page size at 20, last
 * page number at 32, in the writer's byte order) says how long it must be.
 */
function checkBerkeleyLength(bytes: Buffer): void {
  if (bytes.length < 36) return; // too short for a metadata page: the library reports it
  const le = bytes.readUInt32LE(12) === BDB_HASH_MAGIC;
  if (!le && bytes.readUInt32BE(12) !== BDB_HASH_MAGIC) return;
  const pageSize = le ? bytes.readUInt32LE(20) : bytes.readUInt32BE(20);
  const lastPage = le ? bytes.readUInt32LE(32) : bytes.readUInt32BE(32);
  if (bytes.length < (lastPage + 1) * pageSize) throw new Error(`not a readable Berkeley DB rpm database: truncated (${bytes.length} of ${(lastPage + 1) * pageSize} bytes)`);
}

/** The backend of an rpm database file, by its path. */
export type RpmDbFormat = 'sqlite' | 'bdb' | 'ndb';

/**
 * The packages of an rpm database file's bytes, in any backend, as the
 * same records (gpg-pubkey pseudo-packages left out). Berkeley DB and ndb
 * go through `@snyk/rpm-parser` (loaded on first use); it reports a file
 * it cannot read as an `error` rather than throwing, and that is thrown
 * here as one line. Rejects a file that is not a database of its format.
 */
export async function readRpmDatabase(format: RpmDbFormat, bytes: Buffer): Promise<Package[]> {
  if (format === 'sqlite') return readRpmSqlite(bytes);
  if (format === 'bdb') checkBerkeleyLength(bytes);
  const parser = await import('@snyk/rpm-parser');
  const result = format === 'bdb' ? await parser.getPackages(bytes) : await parser.getPackagesNdb(bytes);
  if (result.error) throw new Error(`not a readable ${format === 'bdb' ? 'Berkeley DB' : 'ndb'} rpm database: ${result.error.message}`);
  return result.response
    .filter((p) => p.name !== 'gpg-pubkey')
    .map((p) => rpmPackage({ name: p.name, version: p.version, release: p.release, epoch: p.epoch, arch: p.arch, sourceRpm: p.sourceRPM }));
}
