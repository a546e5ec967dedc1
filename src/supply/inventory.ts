/**
 * Inventory: what an image holds, read from its layers. One layer is read
 * once ({@link readLayer}, a stream through tar) into a
 * {@link LayerInventory} — the facts of each interesting file, and the
 * layer's whiteouts — which is cached per layer digest (SupplyStore). An
 * image's inventory is its layers' merged bottom to top
 * ({@link mergeLayers}): a whiteout (`.wh.NAME`) or an opaque directory
 * (`.wh..wh..opq`) removes what lower layers had there, and a file a later
 * layer rewrites (the dpkg status file) replaces the earlier one whole.
 *
 * Read: the OS (`etc/os-release`, `usr/lib/os-release`); Debian/Ubuntu
 * packages (`var/lib/dpkg/status`, `var/lib/dpkg/status.d/*`) with their
 * source package; Alpine (`lib/apk/db/installed`) with its origin; RPM
 * (the rpmdb in its three backends: `rpmdb.sqlite`, Berkeley DB `Packages`,
 * ndb `Packages.db`: rpmdb.ts, decisions 0121 and 0122); npm (`package.json` of each `node_modules`
 * package); Python (`*.dist-info/METADATA`); Go binaries (the build info:
 * main module and dependencies).
 */
import { createGunzip } from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readRpmDatabase, type RpmDbFormat } from './rpmdb.js';

export type PackageType = 'deb' | 'apk' | 'rpm' | 'npm' | 'pypi' | 'golang';

export interface Package {
  type: PackageType;
  name: string;
  version: string;
  /** Debian: the source package and its version (the names OSV uses); Alpine: the origin; RPM: the source RPM's name and version. */
  source?: string;
  sourceVersion?: string;
}

export interface OsInfo {
  id: string;
  versionId: string;
  prettyName?: string;
}

/** The facts one file gives. */
export interface FileFacts {
  os?: OsInfo;
  packages?: Package[];
  /** The file is one the inventory reads but it could not be parsed: why (one line). */
  error?: string;
}

/** One layer's contribution, keyed by path (no leading slash). Cached per layer digest. */
export interface LayerInventory {
  files: Record<string, FileFacts>;
  /** Paths this layer deletes from the layers below. */
  whiteouts: string[];
  /** Directories whose lower contents this layer hides. */
  opaque: string[];
}

export interface ImageInventory {
  os: OsInfo | undefined;
  packages: Package[];
  /** Files of the image that could not be parsed, as `path: reason` (absent when none; their packages are not known). */
  errors?: string[];
}

/** 2: RPM (the SQLite rpmdb) is read. 3: Berkeley DB and ndb rpmdbs too; parse errors recorded. */
const LAYER_INVENTORY_FORMAT = 3;
/** Bumped when what a layer read yields changes, so cached inventories are read again. */
export const INVENTORY_FORMAT = LAYER_INVENTORY_FORMAT;

/** Largest single metadata file read into memory (a dpkg status file is a few MiB). */
const MAX_FILE = 64 * 1024 * 1024;
/** How far into an executable the Go build info is looked for. */
const GO_SCAN_LIMIT = 256 * 1024 * 1024;
const GO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');

type Kind = 'os' | 'dpkg' | 'apk' | 'rpm-sqlite' | 'rpm-bdb' | 'rpm-ndb' | 'npm' | 'python';

/** Where rpm keeps its database, per backend (`var/lib/rpm` classically, `usr/lib/sysimage/rpm` on SUSE and newer Fedora). */
const RPM_FILES: Record<string, Kind> = {
  'var/lib/rpm/rpmdb.sqlite': 'rpm-sqlite',
  'usr/lib/sysimage/rpm/rpmdb.sqlite': 'rpm-sqlite',
  'var/lib/rpm/Packages': 'rpm-bdb',
  'usr/lib/sysimage/rpm/Packages': 'rpm-bdb',
  'var/lib/rpm/Packages.db': 'rpm-ndb',
  'usr/lib/sysimage/rpm/Packages.db': 'rpm-ndb',
};

function kindOf(p: string): Kind | undefined {
  if (p === 'etc/os-release' || p === 'usr/lib/os-release') return 'os';
  if (p === 'var/lib/dpkg/status' || /^var\/lib\/dpkg\/status\.d\/[^/]+$/.test(p)) return 'dpkg';
  if (p === 'lib/apk/db/installed') return 'apk';
  if (Object.hasOwn(RPM_FILES, p)) return RPM_FILES[p];
  if (/(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(p)) return 'npm';
  if (/\.dist-info\/METADATA$/.test(p)) return 'python';
  return undefined;
}

function normalize(name: string): string {
  return name.replace(/^\.?\/+/, '').replace(/^\.\//, '').replace(/\/+$/, '');
}

// ---- parsers of one file each

export function parseOsRelease(text: string): OsInfo | undefined {
  const v: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) v[m[1]!] = m[2]!.replace(/^["']|["']$/g, '');
  }
  if (!v.ID) return undefined;
  return { id: v.ID, versionId: v.VERSION_ID ?? '', ...(v.PRETTY_NAME ? { prettyName: v.PRETTY_NAME } : {}) };
}

/** Stanzas of a deb822 file (dpkg status, apk installed uses its own {@link parseApkInstalled}). */
function stanzas(text: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  let cur: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (Object.keys(cur).length) out.push(cur);
      cur = {};
      last = undefined;
      continue;
    }
    if (/^\s/.test(line)) {
      if (last) cur[last] += `\n${line.trim()}`;
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i);
    cur[last] = line.slice(i + 1).trim();
  }
  if (Object.keys(cur).length) out.push(cur);
  return out;
}

/** Installed packages of a dpkg status file, with `Source:` (name and optional `(version)`) resolved. */
export function parseDpkgStatus(text: string): Package[] {
  const out: Package[] = [];
  for (const s of stanzas(text)) {
    if (!s.Package || !s.Version) continue;
    // status.d files (distroless) carry no Status; a status file's removed packages say so.
    if (s.Status !== undefined && !/\binstalled$/.test(s.Status)) continue;
    const m = /^(\S+)(?:\s+\((.+)\))?$/.exec(s.Source ?? '');
    out.push({ type: 'deb', name: s.Package, version: s.Version, source: m?.[1] ?? s.Package, sourceVersion: m?.[2] ?? s.Version });
  }
  return out;
}

export function parseApkInstalled(text: string): Package[] {
  const out: Package[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const v: Record<string, string> = {};
    for (const line of block.split('\n')) if (line[1] === ':') v[line[0]!] = line.slice(2);
    if (v.P && v.V) out.push({ type: 'apk', name: v.P, version: v.V, source: v.o ?? v.P, sourceVersion: v.V });
  }
  return out;
}

export function parsePackageJson(text: string): Package[] {
  try {
    const j = JSON.parse(text) as { name?: unknown; version?: unknown };
    if (typeof j.name === 'string' && typeof j.version === 'string' && j.name && j.version) return [{ type: 'npm', name: j.name, version: j.version }];
  } catch {
    // not JSON: not a package
  }
  return [];
}

/** A wheel's METADATA headers: `Name:` and `Version:`; the name as PEP 503 normalizes it. */
export function parsePythonMetadata(text: string): Package[] {
  let name: string | undefined;
  let version: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') break;
    const m = /^(Name|Version):\s*(.+)$/.exec(line);
    if (m?.[1] === 'Name') name = m[2]!.trim();
    if (m?.[1] === 'Version') version = m[2]!.trim();
  }
  return name && version ? [{ type: 'pypi', name: name.toLowerCase().replace(/[-_.]+/g, '-'), version }] : [];
}

/**
 * Go build info (Go 1.18+ inline format): after the 32-byte header that
 * starts with the magic, two varint-prefixed strings, the Go version and
 * the module info (`path`, `mod`, `dep`, `=>` lines between 16-byte
 * sentinels). Returns the main module (unless `(devel)`), its
 * dependencies (replacements win), and the standard library as `stdlib`.
 */
export function parseGoBuildInfo(buf: Buffer): Package[] {
  if (buf.length < 32 || !buf.subarray(0, GO_MAGIC.length).equals(GO_MAGIC)) return [];
  if ((buf[15]! & 0x2) === 0) return [];
  let off = 32;
  const readString = (): string | undefined => {
    let len = 0;
    let shift = 0;
    for (;;) {
      if (off >= buf.length || shift > 35) return undefined;
      const b = buf[off++]!;
      len |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    if (off + len > buf.length) return undefined;
    const s = buf.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  const goVersion = readString();
  const modinfo = readString();
  if (goVersion === undefined || modinfo === undefined) return [];
  const out: Package[] = [];
  if (/^go\d/.test(goVersion)) out.push({ type: 'golang', name: 'stdlib', version: goVersion.replace(/^go/, '').split(' ')[0]! });
  const lines = (modinfo.length >= 33 ? modinfo.slice(16, -16) : modinfo).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i]!.split('\t');
    if ((f[0] === 'mod' || f[0] === 'dep') && f[1] && f[2] && f[2] !== '(devel)') {
      const next = lines[i + 1]?.split('\t');
      if (next?.[0] === '=>' && next[1] && next[2]) {
        out.push({ type: 'golang', name: next[1], version: next[2] });
        i++;
      } else {
        out.push({ type: 'golang', name: f[1], version: f[2] });
      }
    }
  }
  return out;
}

/** The facts of one file; a file of a kind read here that does not parse gives its error instead. */
async function factsOf(kind: Kind, data: Buffer): Promise<FileFacts | undefined> {
  try {
    return await parseFile(kind, data);
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0]! };
  }
}

const RPM_FORMAT: Record<'rpm-sqlite' | 'rpm-bdb' | 'rpm-ndb', RpmDbFormat> = { 'rpm-sqlite': 'sqlite', 'rpm-bdb': 'bdb', 'rpm-ndb': 'ndb' };

async function parseFile(kind: Kind, data: Buffer): Promise<FileFacts | undefined> {
  const text = kind === 'rpm-sqlite' || kind === 'rpm-bdb' || kind === 'rpm-ndb' ? '' : data.toString('utf8');
  switch (kind) {
    case 'os': {
      const os = parseOsRelease(text);
      return os ? { os } : undefined;
    }
    case 'dpkg':
      return { packages: parseDpkgStatus(text) };
    case 'apk':
      return { packages: parseApkInstalled(text) };
    case 'rpm-sqlite':
    case 'rpm-bdb':
    case 'rpm-ndb':
      return { packages: await readRpmDatabase(RPM_FORMAT[kind], data) };
    case 'npm': {
      const packages = parsePackageJson(text);
      return packages.length ? { packages } : undefined;
    }
    case 'python': {
      const packages = parsePythonMetadata(text);
      return packages.length ? { packages } : undefined;
    }
  }
}

/** Watches an executable's bytes for the Go build info header and keeps what follows it. */
class GoScanner {
  private tail: Buffer = Buffer.alloc(0);
  private found: Buffer[] | undefined;
  private foundBytes = 0;
  private seen = 0;

  push(chunk: Buffer): void {
    if (this.found) {
      if (this.foundBytes < 64 * 1024) {
        this.found.push(chunk);
        this.foundBytes += chunk.length;
      }
      return;
    }
    if (this.seen > GO_SCAN_LIMIT) return;
    this.seen += chunk.length;
    const hay = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const at = hay.indexOf(GO_MAGIC);
    if (at >= 0) {
      this.found = [hay.subarray(at)];
      this.foundBytes = hay.length - at;
      return;
    }
    this.tail = hay.subarray(Math.max(0, hay.length - GO_MAGIC.length));
  }

  packages(): Package[] {
    return this.found ? parseGoBuildInfo(Buffer.concat(this.found)) : [];
  }
}

/**
 * A zstd decoder as a stream: fzstd's streaming `Decompress` (pure
 * JavaScript; Node 20's zlib has no zstd). Corrupt input fails the stream.
 */
export async function zstdDecoder(): Promise<Transform> {
  // Loaded at the first zstd layer, not when the registry starts (decision 0133).
  const { Decompress } = await import('fzstd');
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        decoder.push(chunk);
        callback();
      } catch (err) {
        callback(new Error(`not valid zstd data: ${(err as Error).message}`));
      }
    },
    flush(callback) {
      try {
        decoder.push(new Uint8Array(0), true);
        callback();
      } catch (err) {
        callback(new Error(`not valid zstd data: ${(err as Error).message}`));
      }
    },
  });
  // fzstd may reuse its output buffer: copy each chunk out.
  const decoder = new Decompress((data) => {
    if (data.length > 0) out.push(Buffer.from(data));
  });
  return out;
}

/**
 * Reads one layer (a tar, gzip- or zstd-compressed or not, as its media
 * type says) into its inventory.
 */
export async function readLayer(data: Readable, compression: 'gzip' | 'zstd' | 'none'): Promise<LayerInventory> {
  const inventory: LayerInventory = { files: {}, whiteouts: [], opaque: [] };
  // tar-stream and fzstd load at the first layer read, not when the registry
  // starts (decision 0133); an error the stream raises meanwhile is kept, not unhandled.
  let early: Error | undefined;
  const keep = (err: Error) => (early ??= err);
  data.on('error', keep);
  const { extract } = await import('tar-stream');
  const unzstd = compression === 'zstd' ? await zstdDecoder() : undefined;
  data.off('error', keep);
  if (early !== undefined) throw early;
  const tar = extract();
  const done = new Promise<void>((resolve) => {
    tar.on('entry', (header, stream, next) => {
      const p = normalize(header.name);
      const base = p.slice(p.lastIndexOf('/') + 1);
      const dir = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (base === '.wh..wh..opq') inventory.opaque.push(dir);
      else if (base.startsWith('.wh.')) inventory.whiteouts.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
      const kind = header.type === 'file' ? kindOf(p) : undefined;
      const executable = header.type === 'file' && ((header.mode ?? 0) & 0o111) !== 0 && (header.size ?? 0) > 1024 && kind === undefined;
      if (kind && (header.size ?? 0) <= MAX_FILE) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          void factsOf(kind, Buffer.concat(chunks)).then((facts) => {
            if (facts) inventory.files[p] = facts;
            next();
          });
        });
      } else if (executable) {
        const go = new GoScanner();
        stream.on('data', (c: unknown) => go.push(c as Buffer));
        stream.on('end', () => {
          const packages = go.packages();
          if (packages.length) inventory.files[p] = { packages };
          next();
        });
      } else {
        stream.on('end', () => next());
        stream.resume();
      }
    });
    tar.on('finish', resolve);
  });
  const piped = compression === 'gzip' ? pipeline(data, createGunzip(), tar) : unzstd ? pipeline(data, unzstd, tar) : pipeline(data, tar);
  await Promise.all([piped, done]);
  return inventory;
}

/** Layers bottom to top into the image's inventory: whiteouts and opaque directories remove what is below. */
export function mergeLayers(layers: LayerInventory[]): ImageInventory {
  const files = new Map<string, FileFacts>();
  const under = (p: string, dir: string) => dir === '' || p === dir || p.startsWith(`${dir}/`);
  for (const layer of layers) {
    for (const dir of layer.opaque) for (const p of [...files.keys()]) if (p !== dir && under(p, dir)) files.delete(p);
    for (const w of layer.whiteouts) for (const p of [...files.keys()]) if (under(p, w)) files.delete(p);
    for (const [p, facts] of Object.entries(layer.files)) files.set(p, facts);
  }
  let os: OsInfo | undefined;
  const packages: Package[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const p of [...files.keys()].sort()) {
    const facts = files.get(p)!;
    if (facts.error !== undefined) errors.push(`${p}: ${facts.error}`);
    if (facts.os && (!os || p === 'etc/os-release')) os = facts.os;
    for (const pkg of facts.packages ?? []) {
      const key = `${pkg.type}\0${pkg.name}\0${pkg.version}`;
      if (seen.has(key)) continue;
      seen.add(key);
      packages.push(pkg);
    }
  }
  return { os, packages, ...(errors.length ? { errors } : {}) };
}

/** Reads a whole stream (small documents: an SBOM, an attestation). */
export async function readAll(stream: Readable, limit = MAX_FILE): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new Error(`document larger than ${limit} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

