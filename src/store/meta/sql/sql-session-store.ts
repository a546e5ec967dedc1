/** Web UI sessions over SQL (migration 0013-ui-sessions): see ../sessions.ts. */
import type { Kysely } from 'kysely';
import type { SessionRecord, SessionStore } from '../sessions.js';
import type { Database } from './schema.js';

export class SqlSessionStore implements SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async createSession(s: SessionRecord): Promise<void> {
    await this.db
      .insertInto('ui_sessions')
      .values({ id_hash: s.idHash, user_name: s.user, csrf: s.csrf, created_at: s.createdAt.getTime(), expires_at: s.expiresAt.getTime() })
      .execute();
  }

  async getSession(idHash: string, now: Date): Promise<SessionRecord | undefined> {
    const row = await this.db.selectFrom('ui_sessions').selectAll().where('id_hash', '=', idHash).where('expires_at', '>', now.getTime()).executeTakeFirst();
    if (!row) return undefined;
    return { idHash: row.id_hash, user: row.user_name, csrf: row.csrf, createdAt: new Date(Number(row.created_at)), expiresAt: new Date(Number(row.expires_at)) };
  }

  async deleteSession(idHash: string): Promise<boolean> {
    const r = await this.db.deleteFrom('ui_sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async deleteUserSessions(user: string): Promise<number> {
    const r = await this.db.deleteFrom('ui_sessions').where('user_name', '=', user).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async deleteExpiredSessions(now: Date): Promise<number> {
    const r = await this.db.deleteFrom('ui_sessions').where('expires_at', '<=', now.getTime()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
