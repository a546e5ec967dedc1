/**
 * The metadata store over SQL through Kysely: one implementation for
 * SQLite (embedded default) and PostgreSQL (scale-out).
 *
 * Concurrency: a manifest commit (reference check, manifest row, tag
 * moves, history rows) is one transaction, and so is every tag move. Each
 * runs SERIALIZABLE (retried on PostgreSQL's serialization failures, see
 * dialect.ts): the reference check must not miss a concurrent GC unlinking
 * a blob, and a tag move's compare-and-set (`expect`) and history row must
 * not miss a concurrent move of the same tag. Repository ids are cached in
 * memory; they never change once created, and neither does the repository
 * of an upload session (cached for the sessions this process started).
 *
 * Blob links and upload session rows are group-committed (group-commit.ts,
 * decision 0130): the ones asked for in one turn of the event loop go in
 * one statement, and each call returns once its row has committed.
 */
import type { Kysely} from 'kysely';
import { sql, type Transaction } from 'kysely';
import { ALL_NAMES, type NamePatterns } from '../../../shared/name-patterns.js';
import { namesIn } from './name-filter.js';
import { Digest } from '../../../oci/digest.js';
import type { RepositoryName, Tag } from '../../../oci/reference.js';
import {
  MetaStoreError,
  type ManifestRecord,
  type MetaStore,
  type NewManifest,
  type Page,
  type Referrer,
  type TagChange,
  type TagMove,
} from '../meta-store.js';
import { transact } from './dialect.js';
import { GroupCommit } from './group-commit.js';
import type { Database, ManifestsTable } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

interface LinkRow {
  repository_id: number;
  digest: string;
  size: number;
  generated: 0 | 1;
}

/** Upload sessions whose repository this process remembers (it started them); the database answers for the rest. */
const UPLOAD_OWNERS = 10_000;

function toRecord(row: Pick<ManifestsTable, 'digest' | 'media_type' | 'size' | 'content' | 'artifact_type' | 'subject_digest' | 'annotations' | 'created_at'>): ManifestRecord {
  return {
    digest: Digest.parse(row.digest),
    mediaType: row.media_type,
    size: Number(row.size),
    content: Buffer.isBuffer(row.content) ? row.content : Buffer.from(row.content),
    artifactType: row.artifact_type ?? undefined,
    subject: row.subject_digest ? Digest.parse(row.subject_digest) : undefined,
    annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : undefined,
    createdAt: new Date(Number(row.created_at)),
  };
}

/**
 * The one place tags and tag_history are written (MetaStore.moveTag's
 * contract), inside the caller's transaction: a tag change and its history
 * row commit together or not at all.
 */
async function writeTagMove(tx: Transaction<Database>, repositoryId: number, tag: string, move: TagMove, now: number): Promise<TagChange | undefined> {
  const current = await tx.selectFrom('tags').select(['manifest_digest', 'updated_at']).where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
  if (move.expect) {
    if (current?.manifest_digest !== move.expect.digest) return undefined;
    if (move.expect.updatedAt !== undefined && Number(current?.updated_at) !== move.expect.updatedAt) return undefined;
  }
  const from = current?.manifest_digest;
  if (from === move.to) return undefined;
  if (move.to === undefined) {
    await tx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).execute();
  } else if (current) {
    await tx.updateTable('tags').set({ manifest_digest: move.to, updated_at: now }).where('repository_id', '=', repositoryId).where('name', '=', tag).execute();
  } else {
    await tx.insertInto('tags').values({ repository_id: repositoryId, name: tag, manifest_digest: move.to, updated_at: now }).execute();
  }
  const action = move.to === undefined ? 'delete' : move.rollback ? 'rollback' : current ? 'move' : 'create';
  const row = await tx
    .insertInto('tag_history')
    .values({ repository_id: repositoryId, tag, action, old_digest: from ?? null, new_digest: move.to ?? null, actor: move.actor, at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id: Number(row.id), tag, action, oldDigest: from, newDigest: move.to, actor: move.actor, at: new Date(now) };
}

export class SqlMetaStore implements MetaStore {
  private readonly repositoryIds = new Map<string, number>();
  private readonly uploadOwners = new Map<string, string>();
  private readonly links = new GroupCommit<LinkRow>((rows) => this.writeLinks(rows));
  private readonly newUploads = new GroupCommit<{ id: string; repository_id: number }>(async (rows) => {
    const now = Date.now();
    await this.db
      .insertInto('uploads')
      .values(rows.map((r) => ({ ...r, started_at: now })))
      .execute();
  });
  private readonly endedUploads = new GroupCommit<string>(async (ids) => {
    await this.db
      .deleteFrom('uploads')
      .where('id', 'in', [...new Set(ids)])
      .execute();
  });

  /** The Kysely handle, shared with stores that add their own tables (see migrations.ts). */
  constructor(readonly db: Kysely<Database>) {}

  private async repositoryId(db: Db, name: string): Promise<number | undefined> {
    const cached = this.repositoryIds.get(name);
    if (cached !== undefined) return cached;
    const row = await db.selectFrom('repositories').select('id').where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    const id = Number(row.id);
    // Inside a transaction the row may yet be rolled back: cache only committed ids.
    if (db === this.db) this.repositoryIds.set(name, id);
    return id;
  }

  private async ensureRepository(db: Db, name: string): Promise<number> {
    const existing = await this.repositoryId(db, name);
    if (existing !== undefined) return existing;
    await db
      .insertInto('repositories')
      .values({ name, created_at: Date.now() })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const id = await this.repositoryId(db, name);
    if (id === undefined) throw new Error(`repository ${name} vanished after insert`);
    return id;
  }

  async listRepositories(page: Page, names: NamePatterns = ALL_NAMES): Promise<string[]> {
    let q = this.db
      .selectFrom('repositories as r')
      .select('r.name')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')))
      .where(namesIn(sql.ref('r.name'), names))
      .orderBy('r.name')
      .limit(page.limit);
    if (page.after !== undefined) q = q.where('r.name', '>', page.after);
    return (await q.execute()).map((r) => r.name);
  }

  async repositoryExists(repository: RepositoryName): Promise<boolean> {
    return (await this.repositoryId(this.db, repository)) !== undefined;
  }

  async linkBlob(repository: RepositoryName, digest: Digest, size: number, options: { generated?: boolean } = {}): Promise<void> {
    const id = await this.ensureRepository(this.db, repository);
    await this.links.add({ repository_id: id, digest: digest.toString(), size, generated: options.generated === true ? 1 : 0 });
  }

  /**
   * One statement for a group of links. Re-linking restarts the link's age
   * (GC's grace period counts from the latest upload or mount). A user's
   * link clears the generated mark; a generated one leaves a user's link as
   * it is — within the group too, where one (repository, digest) may come
   * twice (PostgreSQL refuses to upsert one row twice in a statement).
   */
  private async writeLinks(rows: LinkRow[]): Promise<void> {
    const merged = new Map<string, LinkRow>();
    for (const row of rows) {
      const key = `${row.repository_id} ${row.digest}`;
      const before = merged.get(key);
      merged.set(key, before ? { ...row, generated: before.generated === 0 || row.generated === 0 ? 0 : 1 } : row);
    }
    const now = Date.now();
    await this.db
      .insertInto('repository_blobs')
      .values([...merged.values()].map((r) => ({ ...r, created_at: now })))
      .onConflict((oc) =>
        oc.columns(['repository_id', 'digest']).doUpdateSet({
          created_at: (eb) => eb.ref('excluded.created_at'),
          generated: sql<number>`case when excluded.generated = 0 then 0 else repository_blobs.generated end`,
        }),
      )
      .execute();
  }

  async linkedBlob(repository: RepositoryName, digest: Digest): Promise<{ size: number } | undefined> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return undefined;
    const row = await this.db
      .selectFrom('repository_blobs')
      .select('size')
      .where('repository_id', '=', id)
      .where('digest', '=', digest.toString())
      .executeTakeFirst();
    return row ? { size: Number(row.size) } : undefined;
  }

  async unlinkBlob(repository: RepositoryName, digest: Digest): Promise<boolean> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return false;
    const result = await this.db
      .deleteFrom('repository_blobs')
      .where('repository_id', '=', id)
      .where('digest', '=', digest.toString())
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async repositoriesWithBlob(digest: Digest, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('repository_blobs as b')
      .innerJoin('repositories as r', 'r.id', 'b.repository_id')
      .select('r.name')
      .where('b.digest', '=', digest.toString())
      .limit(limit)
      .execute();
    return rows.map((r) => r.name);
  }

  async putManifest(repository: RepositoryName, manifest: NewManifest, tags: Tag[], actor: string): Promise<TagChange[]> {
    return transact(this.db, 'serializable', async (tx) => {
      const id = await this.ensureRepository(tx, repository);
      const digest = manifest.digest.toString();
      const blobDigests = [...new Set(manifest.blobs.map((d) => d.toString()))];
      const childDigests = [...new Set(manifest.manifests.map((d) => d.toString()))];
      const missing: string[] = [];
      if (blobDigests.length > 0) {
        const found = new Set(
          (await tx.selectFrom('repository_blobs').select('digest').where('repository_id', '=', id).where('digest', 'in', blobDigests).execute()).map((r) => r.digest),
        );
        missing.push(...blobDigests.filter((d) => !found.has(d)));
      }
      if (childDigests.length > 0) {
        const found = new Set(
          (await tx.selectFrom('manifests').select('digest').where('repository_id', '=', id).where('digest', 'in', childDigests).execute()).map((r) => r.digest),
        );
        missing.push(...childDigests.filter((d) => !found.has(d)));
      }
      if (missing.length > 0) {
        throw new MetaStoreError('ERR_MANIFEST_REFERENCE_MISSING', `manifest references ${missing.length} unknown blob(s) or manifest(s)`, missing);
      }
      const now = Date.now();
      await tx
        .insertInto('manifests')
        .values({
          repository_id: id,
          digest,
          media_type: manifest.mediaType,
          size: manifest.content.length,
          content: manifest.content,
          artifact_type: manifest.artifactType ?? null,
          subject_digest: manifest.subject?.toString() ?? null,
          annotations: manifest.annotations ? JSON.stringify(manifest.annotations) : null,
          created_at: now,
          generated: manifest.generated === true ? 1 : 0,
        })
        // A user's push of a manifest the registry generated makes it the user's.
        .onConflict((oc) => (manifest.generated === true ? oc.columns(['repository_id', 'digest']).doNothing() : oc.columns(['repository_id', 'digest']).doUpdateSet({ generated: 0 })))
        .execute();
      const references = [
        ...blobDigests.map((child) => ({ repository_id: id, manifest_digest: digest, child_digest: child, kind: 'blob' as const })),
        ...childDigests.map((child) => ({ repository_id: id, manifest_digest: digest, child_digest: child, kind: 'manifest' as const })),
      ];
      if (references.length > 0) {
        await tx
          .insertInto('manifest_references')
          .values(references)
          .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'child_digest']).doNothing())
          .execute();
      }
      const changes: TagChange[] = [];
      for (const tag of new Set(tags)) {
        const change = await writeTagMove(tx, id, tag, { to: digest, actor }, now);
        if (change) changes.push(change);
      }
      return changes;
    });
  }

  async moveTag(repository: RepositoryName, tag: Tag, move: TagMove): Promise<TagChange | undefined> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) {
      if (move.to === undefined) return undefined;
      throw new MetaStoreError('ERR_MANIFEST_UNKNOWN', `manifest ${move.to} is not stored in ${repository}`);
    }
    return transact(this.db, 'serializable', async (tx) => {
      if (move.to !== undefined) {
        const stored = await tx.selectFrom('manifests').select('digest').where('repository_id', '=', id).where('digest', '=', move.to).executeTakeFirst();
        if (!stored) throw new MetaStoreError('ERR_MANIFEST_UNKNOWN', `manifest ${move.to} is not stored in ${repository}`);
      }
      return writeTagMove(tx, id, tag, move, Date.now());
    });
  }

  async tagsPointingAt(repository: RepositoryName, digest: Digest): Promise<string[]> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return [];
    const rows = await this.db.selectFrom('tags').select('name').where('repository_id', '=', id).where('manifest_digest', '=', digest.toString()).execute();
    return rows.map((r) => r.name);
  }

  async getManifest(repository: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return undefined;
    const row = await this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'content', 'artifact_type', 'subject_digest', 'annotations', 'created_at'])
      .where('repository_id', '=', id)
      .where('digest', '=', digest.toString())
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async getTaggedManifest(repository: RepositoryName, tag: Tag): Promise<ManifestRecord | undefined> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return undefined;
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
      .select(['m.digest', 'm.media_type', 'm.size', 'm.content', 'm.artifact_type', 'm.subject_digest', 'm.annotations', 'm.created_at'])
      .where('t.repository_id', '=', id)
      .where('t.name', '=', tag)
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }


  async deleteManifest(repository: RepositoryName, digest: Digest, actor: string, options: { allowReferenced?: boolean } = {}): Promise<boolean> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return false;
    const d = digest.toString();
    return transact(this.db, 'serializable', async (tx) => {
      if (!options.allowReferenced) {
        const indexes = await this.parents(tx, id, d);
        if (indexes.length > 0) {
          throw new MetaStoreError(
            'ERR_MANIFEST_REFERENCED',
            `manifest ${d} is a child of index ${indexes.join(', ')} in ${repository}; deleting it would break ${indexes.length === 1 ? 'that index' : 'those indexes'}: delete the index first`,
            { indexes },
          );
        }
      }
      const deleted = await tx.deleteFrom('manifests').where('repository_id', '=', id).where('digest', '=', d).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) return false;
      const tags = await tx.selectFrom('tags').select('name').where('repository_id', '=', id).where('manifest_digest', '=', d).execute();
      const now = Date.now();
      for (const t of tags) await writeTagMove(tx, id, t.name, { to: undefined, actor }, now);
      await tx.deleteFrom('manifest_references').where('repository_id', '=', id).where('manifest_digest', '=', d).execute();
      return true;
    });
  }

  async indexesReferencing(repository: RepositoryName, digest: Digest): Promise<Digest[]> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return [];
    return (await this.parents(this.db, id, digest.toString())).map((d) => Digest.parse(d));
  }

  private async parents(db: Kysely<Database>, id: number, digest: string): Promise<string[]> {
    const rows = await db
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', id)
      .where('child_digest', '=', digest)
      .where('kind', '=', 'manifest')
      .orderBy('manifest_digest')
      .execute();
    return rows.map((r) => r.manifest_digest);
  }

  async deleteTag(repository: RepositoryName, tag: Tag, actor: string): Promise<boolean> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return false;
    return transact(this.db, 'serializable', async (tx) => (await writeTagMove(tx, id, tag, { to: undefined, actor }, Date.now())) !== undefined);
  }

  async listTags(repository: RepositoryName, page: Page): Promise<string[] | undefined> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return undefined;
    let q = this.db.selectFrom('tags').select('name').where('repository_id', '=', id).orderBy('name').limit(page.limit);
    if (page.after !== undefined) q = q.where('name', '>', page.after);
    return (await q.execute()).map((r) => r.name);
  }

  async listReferrers(repository: RepositoryName, subject: Digest, artifactType?: string): Promise<Referrer[]> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return [];
    let q = this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'artifact_type', 'annotations'])
      .where('repository_id', '=', id)
      .where('subject_digest', '=', subject.toString())
      .orderBy('created_at')
      .orderBy('digest');
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    return (await q.execute()).map((r) => ({
      mediaType: r.media_type,
      digest: Digest.parse(r.digest),
      size: Number(r.size),
      artifactType: r.artifact_type ?? undefined,
      annotations: r.annotations ? (JSON.parse(r.annotations) as Record<string, string>) : undefined,
    }));
  }

  async tagHistory(repository: RepositoryName, tag: Tag, limit: number): Promise<TagChange[]> {
    const id = await this.repositoryId(this.db, repository);
    if (id === undefined) return [];
    const rows = await this.db
      .selectFrom('tag_history')
      .selectAll()
      .where('repository_id', '=', id)
      .where('tag', '=', tag)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      tag: r.tag,
      action: r.action,
      oldDigest: r.old_digest ?? undefined,
      newDigest: r.new_digest ?? undefined,
      actor: r.actor,
      at: new Date(Number(r.at)),
    }));
  }

  async createUpload(id: string, repository: RepositoryName): Promise<void> {
    const repositoryId = await this.ensureRepository(this.db, repository);
    await this.newUploads.add({ id, repository_id: repositoryId });
    if (this.uploadOwners.size >= UPLOAD_OWNERS) this.uploadOwners.delete(this.uploadOwners.keys().next().value!);
    this.uploadOwners.set(id, repository);
  }

  async uploadRepository(id: string): Promise<string | undefined> {
    const known = this.uploadOwners.get(id);
    if (known !== undefined) return known;
    const row = await this.db
      .selectFrom('uploads as u')
      .innerJoin('repositories as r', 'r.id', 'u.repository_id')
      .select('r.name')
      .where('u.id', '=', id)
      .executeTakeFirst();
    return row?.name;
  }

  async deleteUpload(id: string): Promise<void> {
    this.uploadOwners.delete(id);
    await this.endedUploads.add(id);
  }

  async uploadsStartedBefore(before: Date): Promise<string[]> {
    return (await this.db.selectFrom('uploads').select('id').where('started_at', '<', before.getTime()).execute()).map((r) => r.id);
  }

  async close(): Promise<void> {
    await Promise.all([this.links.flush(), this.newUploads.flush(), this.endedUploads.flush()]);
    await this.db.destroy();
  }
}
