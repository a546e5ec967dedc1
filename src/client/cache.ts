/**
 * What the client remembers between runs, under `$XDG_CACHE_HOME/pier`
 * (default `~/.cache/pier`):
 *
 *     mounts/<registry>/<algo>-<hex>.json     repositories of that registry known to hold the blob
 *     diffids/<algo>-<hex>.<codec>.json       uncompressed layer → {digest, size} of its compressed form
 *     uploads/<sha256 of key>.json            resume journal: an unfinished upload session
 *
 * One small file per entry, written to a temp file and renamed, so
 * concurrent `pier` processes never see a torn entry; the worst race loses
 * one hint. Everything here is a hint: a missing or stale entry costs time,
 * never correctness (the registry is always asked).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from '../oci/index.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME ?? homedir(), '.cache'), 'pier');
}

export interface CompressedForm {
  digest: string;
  size: number;
  mediaType: string;
}

export interface JournalEntry {
  registry: string;
  repository: string;
  /** The blob digest, or `diffid:<digest>:<codec>` for a layer compressed on the fly. */
  blob: string;
  location: string;
  updatedAt: string;
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export class PierCache {
  constructor(readonly dir: string = defaultCacheDir()) {}

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

  // --- mount record ---

  private mountDir(registry: string): string {
    return join(this.dir, 'mounts', safe(registry));
  }

  async repositoriesWithBlob(registry: string, digest: Digest): Promise<string[]> {
    return (await this.readJson<string[]>(join(this.mountDir(registry), `${digest.algorithm}-${digest.encoded}.json`))) ?? [];
  }

  /** Records that `repository` on `registry` now holds the blob (most recent first, at most 8). */
  async recordBlob(registry: string, repository: string, digest: Digest): Promise<void> {
    const name = `${digest.algorithm}-${digest.encoded}.json`;
    const current = await this.repositoriesWithBlob(registry, digest);
    if (current[0] === repository) return;
    const next = [repository, ...current.filter((r) => r !== repository)].slice(0, 8);
    await this.writeJson(this.mountDir(registry), name, next);
  }

  // --- diffID cache ---

  async compressedForm(diffID: Digest, codec: string): Promise<CompressedForm | undefined> {
    return this.readJson<CompressedForm>(join(this.dir, 'diffids', `${diffID.algorithm}-${diffID.encoded}.${safe(codec)}.json`));
  }

  async recordCompressedForm(diffID: Digest, codec: string, form: CompressedForm): Promise<void> {
    await this.writeJson(join(this.dir, 'diffids'), `${diffID.algorithm}-${diffID.encoded}.${safe(codec)}.json`, form);
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
