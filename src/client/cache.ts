/**
 * What the client remembers between runs, under `$XDG_CACHE_HOME/pier`
 * (default `~/.cache/pier`):
 *
 *     mounts.log                  registry, blob, repository: where blobs were pushed (mount sources)
 *     diffids.log                 uncompressed layer + codec → digest, size of its compressed form
 *     uploads/<sha256 of key>.json  resume journal: an unfinished upload session
 *     images/<alg>-<hex>.json     a daemon image seen before: its config bytes and raw layer sizes
 *
 * The two logs are append-only JSON lines, read once per process (later
 * lines win) and appended to through one descriptor, several records per
 * write: a 100-layer push costs a few writes, not hundreds of file
 * creations. Appends of whole lines with O_APPEND never interleave
 * between concurrent `pier` processes; a torn last line (a crash mid-write)
 * is skipped, and the next write starts on a new line. A log is compacted
 * (rewritten and renamed over) when it holds far more lines than entries;
 * another `pier` appending at that moment writes to the replaced file and
 * loses those records (hints only). The journal keeps one file per upload, written
 * to a temp file and renamed. Everything here is a hint: a missing or stale
 * entry costs time, never correctness (the registry is always asked).
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Digest } from '../oci/index.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME ?? homedir(), '.cache'), 'pier');
}

export interface CompressedForm {
  digest: string;
  size: number;
  mediaType: string;
}

/** A Docker daemon image pushed before: enough to push it again without exporting it. */
export interface KnownImage {
  /** The image config, exactly (its digest is the daemon's image ID). */
  config: Buffer;
  /** The uncompressed size of each layer, in diff_ids order. */
  layerSizes: number[];
}

export interface JournalEntry {
  registry: string;
  repository: string;
  /** The blob digest, or `diffid:<digest>:<codec>` for a layer compressed on the fly. */
  blob: string;
  location: string;
  updatedAt: string;
}

interface MountRecord {
  registry: string;
  digest: string;
  repository: string;
}

interface DiffIdRecord extends CompressedForm {
  diffID: string;
  codec: string;
}

/** Repositories remembered per blob, most recent first. */
const MOUNT_SOURCES = 8;
/** Entries a log keeps when compacted (the most recently written). */
const MAX_ENTRIES = 20_000;

function isString(v: unknown): v is string {
  return typeof v === 'string';
}

/**
 * An append-only file of JSON records, folded into a map when first read.
 * `fold` applies one record (later ones win); `records` gives the map back
 * as records, for compaction.
 */
class RecordLog<R, V> {
  private state: Promise<Map<string, V>> | undefined;
  private handle: Promise<FileHandle> | undefined;
  private pending: string[] = [];
  /** The write batching the records appended this turn. */
  private flushing: Promise<void> | undefined;
  /** Writes run one after another, so the file keeps the order records were folded in. */
  private writing: Promise<void> = Promise.resolve();
  /** The file ended in a torn line when read: the next write starts on a new line. */
  private tornTail = false;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly parse: (v: unknown) => R | undefined,
    private readonly fold: (map: Map<string, V>, record: R) => void,
    private readonly records: (map: Map<string, V>) => R[],
  ) {}

  private get path(): string {
    return join(this.dir, this.name);
  }

  entries(): Promise<Map<string, V>> {
    return (this.state ??= this.load());
  }

  private async load(): Promise<Map<string, V>> {
    const map = new Map<string, V>();
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return map;
    }
    this.tornTail = text.length > 0 && !text.endsWith('\n');
    let lines = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      lines++;
      try {
        const record = this.parse(JSON.parse(line));
        if (record) this.fold(map, record);
      } catch {
        // a torn or foreign line: skip it
      }
    }
    if (lines > 1000 && (lines > 4 * map.size || map.size > MAX_ENTRIES)) await this.compact(map);
    return map;
  }

  private async compact(map: Map<string, V>): Promise<void> {
    const keys = [...map.keys()];
    for (const k of keys.slice(0, Math.max(0, keys.length - MAX_ENTRIES))) map.delete(k);
    const tmp = join(this.dir, `.${this.name}.${process.pid}.${Math.random().toString(36).slice(2)}`);
    try {
      await writeFile(tmp, this.records(map).map((r) => `${JSON.stringify(r)}\n`).join(''));
      await rename(tmp, this.path);
    } catch {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /** Records `record`: in this process at once, on disk with the next write (awaited). */
  async append(record: R): Promise<void> {
    const map = await this.entries();
    this.fold(map, record);
    this.pending.push(`${JSON.stringify(record)}\n`);
    // Records appended in the same turn share one write.
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.flushing = undefined;
      const text = (this.tornTail ? '\n' : '') + this.pending.join('');
      this.pending = [];
      this.tornTail = false;
      this.writing = this.writing.then(() => this.write(text));
      return this.writing;
    });
    await this.flushing;
  }

  private async write(text: string): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      if (this.closed) {
        // After close (a late record): one self-contained append.
        await appendFile(this.path, text);
        return;
      }
      this.handle ??= open(this.path, 'a');
      // FileHandle.appendFile writes all of it, continuing after short writes.
      await (await this.handle).appendFile(text);
    } catch {
      // a cache that cannot be written only costs time later
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.flushing) await this.flushing;
    await this.writing;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle.catch(() => undefined))?.close();
  }
}

export class PierCache {
  private readonly mounts: RecordLog<MountRecord, string[]>;
  private readonly diffids: RecordLog<DiffIdRecord, DiffIdRecord>;

  constructor(readonly dir: string = defaultCacheDir()) {
    this.mounts = new RecordLog<MountRecord, string[]>(
      dir,
      'mounts.log',
      (v) => {
        const r = v as Partial<MountRecord> | null;
        return r && isString(r.registry) && isString(r.digest) && isString(r.repository) ? { registry: r.registry, digest: r.digest, repository: r.repository } : undefined;
      },
      (map, r) => {
        const key = `${r.registry} ${r.digest}`;
        const repos = map.get(key) ?? [];
        map.delete(key);
        map.set(key, [r.repository, ...repos.filter((x) => x !== r.repository)].slice(0, MOUNT_SOURCES));
      },
      (map) =>
        [...map].flatMap(([key, repos]) => {
          const [registry = '', digest = ''] = key.split(' ');
          return [...repos].reverse().map((repository) => ({ registry, digest, repository }));
        }),
    );
    this.diffids = new RecordLog<DiffIdRecord, DiffIdRecord>(
      dir,
      'diffids.log',
      (v) => {
        const r = v as Partial<DiffIdRecord> | null;
        return r && isString(r.diffID) && isString(r.codec) && isString(r.digest) && isString(r.mediaType) && typeof r.size === 'number'
          ? { diffID: r.diffID, codec: r.codec, digest: r.digest, size: r.size, mediaType: r.mediaType }
          : undefined;
      },
      (map, r) => {
        const key = `${r.diffID} ${r.codec}`;
        map.delete(key);
        map.set(key, r);
      },
      (map) => [...map.values()],
    );
  }

  private async readJson<T>(path: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  private async writeJson(dir: string, name: string, value: unknown): Promise<void> {
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${name}.${process.pid}.${Math.random().toString(36).slice(2)}`);
    await writeFile(tmp, JSON.stringify(value));
    await rename(tmp, join(dir, name));
  }

  /** Finishes pending writes and closes the logs. */
  async close(): Promise<void> {
    await Promise.all([this.mounts.close(), this.diffids.close()]);
  }

  // --- mount record ---

  async repositoriesWithBlob(registry: string, digest: Digest): Promise<string[]> {
    return (await this.mounts.entries()).get(`${registry} ${digest.toString()}`) ?? [];
  }

  /** Records that `repository` on `registry` now holds the blob (most recent first, at most 8). */
  async recordBlob(registry: string, repository: string, digest: Digest): Promise<void> {
    const current = await this.repositoriesWithBlob(registry, digest);
    if (current[0] === repository) return;
    await this.mounts.append({ registry, digest: digest.toString(), repository });
  }

  // --- diffID cache ---

  async compressedForm(diffID: Digest, codec: string): Promise<CompressedForm | undefined> {
    const r = (await this.diffids.entries()).get(`${diffID.toString()} ${codec}`);
    return r ? { digest: r.digest, size: r.size, mediaType: r.mediaType } : undefined;
  }

  async recordCompressedForm(diffID: Digest, codec: string, form: CompressedForm): Promise<void> {
    await this.diffids.append({ diffID: diffID.toString(), codec, digest: form.digest, size: form.size, mediaType: form.mediaType });
  }

  // --- daemon images ---

  /** The image whose config has digest `configDigest`, if recorded; the bytes are checked against the digest. */
  async knownImage(configDigest: Digest): Promise<KnownImage | undefined> {
    const r = await this.readJson<{ config?: unknown; layerSizes?: unknown }>(join(this.dir, 'images', `${configDigest.algorithm}-${configDigest.encoded}.json`));
    if (!r || typeof r.config !== 'string' || !Array.isArray(r.layerSizes) || !r.layerSizes.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) return undefined;
    const config = Buffer.from(r.config, 'base64');
    if (!configDigest.equals(Digest.of(config, configDigest.algorithm))) return undefined;
    return { config, layerSizes: r.layerSizes as number[] };
  }

  async recordKnownImage(configDigest: Digest, image: KnownImage): Promise<void> {
    try {
      await this.writeJson(join(this.dir, 'images'), `${configDigest.algorithm}-${configDigest.encoded}.json`, { config: image.config.toString('base64'), layerSizes: image.layerSizes });
    } catch {
      // a cache that cannot be written only costs time later
    }
  }

  // --- resume journal ---

  private journalName(registry: string, repository: string, blob: string): string {
    return `${createHash('sha256').update(`${registry}\n${repository}\n${blob}`).digest('hex').slice(0, 40)}.json`;
  }

  async journal(registry: string, repository: string, blob: string): Promise<JournalEntry | undefined> {
    const entry = await this.readJson<JournalEntry>(join(this.dir, 'uploads', this.journalName(registry, repository, blob)));
    return entry && entry.blob === blob && entry.repository === repository && entry.registry === registry ? entry : undefined;
  }

  async writeJournal(entry: Omit<JournalEntry, 'updatedAt'>): Promise<void> {
    await this.writeJson(join(this.dir, 'uploads'), this.journalName(entry.registry, entry.repository, entry.blob), {
      ...entry,
      updatedAt: new Date().toISOString(),
    });
  }

  async clearJournal(registry: string, repository: string, blob: string): Promise<void> {
    try {
      await unlink(join(this.dir, 'uploads', this.journalName(registry, repository, blob)));
    } catch {
      // already gone
    }
  }
}
