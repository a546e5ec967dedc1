/**
 * The SQL {@link UploadStateStore}: one `blob_uploads` row per object-store
 * upload session (migration 0008). Taking a session is one conditional
 * UPDATE (free, expired, or already ours), and every save is an UPDATE
 * fenced by the holder's token, so SQLite and PostgreSQL give the same
 * one-writer guarantee without explicit row locks.
 */
import type { Kysely } from 'kysely';
import type { AcquireResult, StagedChunk, UploadPart, UploadState, UploadStateStore } from '../../blob/upload-state.js';
import type { Database } from './schema.js';

export class SqlUploadStateStore implements UploadStateStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(id: string): Promise<void> {
    const now = Date.now();
    await this.db
      .insertInto('blob_uploads')
      .values({ id, size: 0, multipart_id: null, parts: '[]', staged: '[]', assembled: 0, holder: null, held_until: null, created_at: now, updated_at: now })
      .execute();
  }

  async get(id: string): Promise<UploadState | undefined> {
    const row = await this.db.selectFrom('blob_uploads').select(['size', 'multipart_id', 'parts', 'staged', 'assembled']).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return {
      size: Number(row.size),
      multipartId: row.multipart_id ?? undefined,
      parts: JSON.parse(row.parts) as UploadPart[],
      staged: JSON.parse(row.staged) as StagedChunk[],
      assembled: Number(row.assembled) === 1,
    };
  }

  async acquire(id: string, token: string, ttlMs: number): Promise<AcquireResult> {
    const now = Date.now();
    const result = await this.db
      .updateTable('blob_uploads')
      .set({ holder: token, held_until: now + ttlMs })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('holder', 'is', null), eb('holder', '=', token), eb('held_until', '<', now)]))
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) return 'held';
    const exists = await this.db.selectFrom('blob_uploads').select('id').where('id', '=', id).executeTakeFirst();
    return exists ? 'busy' : 'missing';
  }

  async release(id: string, token: string): Promise<void> {
    await this.db.updateTable('blob_uploads').set({ holder: null, held_until: null }).where('id', '=', id).where('holder', '=', token).execute();
  }

  async save(id: string, token: string, state: UploadState): Promise<boolean> {
    const result = await this.db
      .updateTable('blob_uploads')
      .set({
        size: state.size,
        multipart_id: state.multipartId ?? null,
        parts: JSON.stringify(state.parts),
        staged: JSON.stringify(state.staged),
        assembled: state.assembled ? 1 : 0,
        updated_at: Date.now(),
      })
      .where('id', '=', id)
      .where('holder', '=', token)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('blob_uploads').where('id', '=', id).execute();
  }

  async idleSince(before: Date): Promise<string[]> {
    const now = Date.now();
    const rows = await this.db
      .selectFrom('blob_uploads')
      .select('id')
      .where('updated_at', '<', before.getTime())
      .where((eb) => eb.or([eb('holder', 'is', null), eb('held_until', '<', now)]))
      .execute();
    return rows.map((r) => r.id);
  }
}
