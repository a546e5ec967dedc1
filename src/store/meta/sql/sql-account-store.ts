/** The account store over SQL (tables of migration 0002-auth): see ../accounts.ts. */
import { sql, type Kysely, type Transaction } from 'kysely';
import { AuthStoreError, type AccountStore, type AuditActor, type AuditEntry, type AuditQuery, type StoredRule, type TokenRecord, type UserRecord } from '../accounts.js';
import { transact } from './dialect.js';
import { GroupCommit } from './group-commit.js';
import type { AccessTokensTable, Database, UsersTable } from './schema.js';

type AuditRow = { at: number; actor: string; ip: string | null; action: string; repository: string | null; target: string | null; outcome: string };

/** One group commit of audit entries per database, whichever store instance (`as(actor)`) records them. */
const auditBatches = new WeakMap<Kysely<Database>, GroupCommit<AuditRow>>();

function auditBatch(db: Kysely<Database>): GroupCommit<AuditRow> {
  let batch = auditBatches.get(db);
  if (!batch) {
    batch = new GroupCommit<AuditRow>(async (rows) => {
      await db.insertInto('audit_log').values(rows).execute();
    });
    auditBatches.set(db, batch);
  }
  return batch;
}

function toUser(row: UsersTable, groups: string[]): UserRecord {
  return { name: row.name, passwordHash: row.password_hash, admin: Number(row.admin) === 1, groups, createdAt: new Date(Number(row.created_at)) };
}

function toToken(row: AccessTokensTable): TokenRecord {
  const date = (v: number | null) => (v === null ? undefined : new Date(Number(v)));
  return {
    name: row.name,
    owner: row.owner ?? undefined,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: new Date(Number(row.created_at)),
    expiresAt: date(row.expires_at),
    revokedAt: date(row.revoked_at),
    lastUsedAt: date(row.last_used_at),
  };
}

export class SqlAccountStore implements AccountStore {
  /** `actor`: who changes made through this store are recorded as (default `local`, the data folder's own user). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly actor: AuditActor = { name: 'local' },
  ) {}

  as(actor: AuditActor): SqlAccountStore {
    return new SqlAccountStore(this.db, actor);
  }

  /**
   * A change, the generation bump and the change's audit entry, in one
   * transaction: no change commits without its record, and a failed one
   * leaves none. SQLite serialises writers; on PostgreSQL the bump comes
   * first, so its row lock orders changes (READ COMMITTED is then enough:
   * each check after it sees every earlier change).
   */
  private async change<T>(action: string, target: string | ((out: T) => string), fn: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
    return transact(this.db, 'read committed', async (tx) => {
      // The bump first: its row lock makes changes run one at a time, and each later statement sees the others' commits.
      await tx.updateTable('auth_state').set({ generation: sql`generation + 1` }).where('id', '=', 1).execute();
      const out = await fn(tx);
      await tx
        .insertInto('audit_log')
        .values({ at: Date.now(), actor: this.actor.name, ip: this.actor.ip ?? null, action, repository: null, target: typeof target === 'string' ? target : target(out), outcome: 'ok' })
        .execute();
      return out;
    });
  }

  async generation(): Promise<number> {
    const row = await this.db.selectFrom('auth_state').select('generation').where('id', '=', 1).executeTakeFirst();
    return Number(row?.generation ?? 0);
  }

  async counts(): Promise<{ users: number; tokens: number; rules: number }> {
    const count = async (table: 'users' | 'access_tokens' | 'policy_rules') => {
      let q = this.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n'));
      if (table === 'access_tokens') q = q.where(sql<boolean>`revoked_at is null`);
      return Number((await q.executeTakeFirst())?.n ?? 0);
    };
    return { users: await count('users'), tokens: await count('access_tokens'), rules: await count('policy_rules') };
  }

  async addUser(name: string, passwordHash: string, options: { admin?: boolean } = {}): Promise<void> {
    await this.change('user-add', options.admin ? `${name} (admin)` : name, async (tx) => {
      if (await tx.selectFrom('users').select('name').where('name', '=', name).executeTakeFirst()) {
        throw new AuthStoreError('ERR_USER_EXISTS', `user ${name} already exists`);
      }
      const now = Date.now();
      await tx.insertInto('users').values({ name, password_hash: passwordHash, admin: options.admin ? 1 : 0, created_at: now, updated_at: now }).execute();
    });
  }

  async setPassword(name: string, passwordHash: string): Promise<void> {
    await this.change('user-password', name, async (tx) => {
      const r = await tx.updateTable('users').set({ password_hash: passwordHash, updated_at: Date.now() }).where('name', '=', name).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw new AuthStoreError('ERR_USER_UNKNOWN', `no user ${name}`);
      // A new password ends every session started with the old one.
      await tx.deleteFrom('refresh_tokens').where('subject', '=', name).execute();
    });
  }

  async setAdmin(name: string, admin: boolean): Promise<void> {
    await this.change('user-admin', `${name} admin=${admin}`, async (tx) => {
      const r = await tx.updateTable('users').set({ admin: admin ? 1 : 0, updated_at: Date.now() }).where('name', '=', name).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw new AuthStoreError('ERR_USER_UNKNOWN', `no user ${name}`);
    });
  }

  async removeUser(name: string): Promise<void> {
    await this.change('user-remove', name, async (tx) => {
      await tx.deleteFrom('group_members').where('user_name', '=', name).execute();
      await tx.deleteFrom('access_tokens').where('owner', '=', name).execute();
      await tx.deleteFrom('refresh_tokens').where('subject', '=', name).execute();
      const r = await tx.deleteFrom('users').where('name', '=', name).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw new AuthStoreError('ERR_USER_UNKNOWN', `no user ${name}`);
    });
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    const groups = await this.db.selectFrom('group_members').select('group_name').where('user_name', '=', name).orderBy('group_name').execute();
    return toUser(row, groups.map((g) => g.group_name));
  }

  async listUsers(): Promise<UserRecord[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('name').execute();
    const members = await this.db.selectFrom('group_members').selectAll().orderBy('group_name').execute();
    return rows.map((r) => toUser(r, members.filter((m) => m.user_name === r.name).map((m) => m.group_name)));
  }

  async addGroup(name: string): Promise<void> {
    await this.change('group-add', name, async (tx) => {
      if (await tx.selectFrom('groups').select('name').where('name', '=', name).executeTakeFirst()) {
        throw new AuthStoreError('ERR_GROUP_EXISTS', `group ${name} already exists`);
      }
      await tx.insertInto('groups').values({ name, created_at: Date.now() }).execute();
    });
  }

  async removeGroup(name: string): Promise<void> {
    await this.change('group-remove', name, async (tx) => {
      await tx.deleteFrom('group_members').where('group_name', '=', name).execute();
      const r = await tx.deleteFrom('groups').where('name', '=', name).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw new AuthStoreError('ERR_GROUP_UNKNOWN', `no group ${name}`);
    });
  }

  async addMember(group: string, user: string): Promise<void> {
    await this.change('group-member-add', `${group} ${user}`, async (tx) => {
      if (!(await tx.selectFrom('groups').select('name').where('name', '=', group).executeTakeFirst())) throw new AuthStoreError('ERR_GROUP_UNKNOWN', `no group ${group}`);
      if (!(await tx.selectFrom('users').select('name').where('name', '=', user).executeTakeFirst())) throw new AuthStoreError('ERR_USER_UNKNOWN', `no user ${user}`);
      await tx
        .insertInto('group_members')
        .values({ group_name: group, user_name: user })
        .onConflict((oc) => oc.columns(['group_name', 'user_name']).doNothing())
        .execute();
    });
  }

  async removeMember(group: string, user: string): Promise<void> {
    await this.change('group-member-remove', `${group} ${user}`, async (tx) => {
      await tx.deleteFrom('group_members').where('group_name', '=', group).where('user_name', '=', user).execute();
    });
  }

  async listGroups(): Promise<{ name: string; members: string[] }[]> {
    const groups = await this.db.selectFrom('groups').select('name').orderBy('name').execute();
    const members = await this.db.selectFrom('group_members').selectAll().orderBy('user_name').execute();
    return groups.map((g) => ({ name: g.name, members: members.filter((m) => m.group_name === g.name).map((m) => m.user_name) }));
  }

  async createToken(token: { name: string; secretHash: string; owner?: string | undefined; scopes: string[]; expiresAt?: Date | undefined }): Promise<void> {
    const until = token.expiresAt ? ` until ${token.expiresAt.toISOString()}` : '';
    await this.change('token-create', `${token.name} ${token.scopes.join(' ')}${until}`, async (tx) => {
      if (await tx.selectFrom('access_tokens').select('name').where('name', '=', token.name).executeTakeFirst()) {
        throw new AuthStoreError('ERR_TOKEN_EXISTS', `token ${token.name} already exists (revoke it first, or pick another name)`);
      }
      if (token.owner !== undefined && !(await tx.selectFrom('users').select('name').where('name', '=', token.owner).executeTakeFirst())) {
        throw new AuthStoreError('ERR_USER_UNKNOWN', `no user ${token.owner}`);
      }
      await tx
        .insertInto('access_tokens')
        .values({
          name: token.name,
          secret_hash: token.secretHash,
          owner: token.owner ?? null,
          scopes: JSON.stringify(token.scopes),
          created_at: Date.now(),
          expires_at: token.expiresAt?.getTime() ?? null,
          revoked_at: null,
          last_used_at: null,
        })
        .execute();
    });
  }

  async findToken(secretHash: string): Promise<TokenRecord | undefined> {
    const row = await this.db.selectFrom('access_tokens').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
    return row ? toToken(row) : undefined;
  }

  async getToken(name: string): Promise<TokenRecord | undefined> {
    const row = await this.db.selectFrom('access_tokens').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toToken(row) : undefined;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.db.selectFrom('access_tokens').selectAll().orderBy('name').execute()).map(toToken);
  }

  async revokeToken(name: string): Promise<void> {
    await this.change('token-revoke', name, async (tx) => {
      const r = await tx.updateTable('access_tokens').set({ revoked_at: Date.now() }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) throw new AuthStoreError('ERR_TOKEN_UNKNOWN', `no live token ${name}`);
      await tx.deleteFrom('refresh_tokens').where('subject', '=', `token:${name}`).execute();
    });
  }

  async addRefreshToken(secretHash: string, subject: string, expiresAt: Date): Promise<void> {
    await this.db.deleteFrom('refresh_tokens').where('expires_at', '<', Date.now()).execute();
    await this.db.insertInto('refresh_tokens').values({ secret_hash: secretHash, subject, created_at: Date.now(), expires_at: expiresAt.getTime() }).execute();
  }

  async findRefreshToken(secretHash: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('refresh_tokens').select('subject').where('secret_hash', '=', secretHash).where('expires_at', '>', Date.now()).executeTakeFirst();
    return row?.subject;
  }

  async addRule(rule: Omit<StoredRule, 'id'>): Promise<number> {
    return this.change('policy-add', (id) => `#${id} ${rule.subject} ${rule.repositories} ${rule.actions.join(',')}`, async (tx) => {
      const r = await tx
        .insertInto('policy_rules')
        .values({ subject: rule.subject, repositories: rule.repositories, actions: rule.actions.join(','), created_at: Date.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(r.id);
    });
  }

  async removeRule(id: number): Promise<void> {
    await this.change('policy-remove', `#${id}`, async (tx) => {
      const r = await tx.deleteFrom('policy_rules').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw new AuthStoreError('ERR_RULE_UNKNOWN', `no policy rule ${id}`);
    });
  }

  async listRules(): Promise<StoredRule[]> {
    const rows = await this.db.selectFrom('policy_rules').selectAll().orderBy('id').execute();
    return rows.map((r) => ({ id: Number(r.id), subject: r.subject, repositories: r.repositories, actions: r.actions.split(',') }));
  }

  /** Group-committed with the entries other requests record in the same turn (group-commit.ts); settles once written. */
  async record(entry: AuditEntry): Promise<void> {
    await auditBatch(this.db).add({
      at: entry.at.getTime(),
      actor: entry.actor,
      ip: entry.ip ?? null,
      action: entry.action,
      repository: entry.repository ?? null,
      target: entry.target ?? null,
      outcome: entry.outcome,
    });
  }

  async list(options: AuditQuery = {}): Promise<(AuditEntry & { id: number })[]> {
    let q = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(options.limit ?? 100);
    if (options.actor !== undefined) q = q.where('actor', '=', options.actor);
    if (options.repository !== undefined) q = q.where('repository', '=', options.repository);
    if (options.action !== undefined) q = q.where('action', '=', options.action);
    if (options.before !== undefined) q = q.where('id', '<', options.before);
    return (await q.execute()).map((r) => ({
      id: Number(r.id),
      at: new Date(Number(r.at)),
      actor: r.actor,
      ip: r.ip ?? undefined,
      action: r.action,
      repository: r.repository ?? undefined,
      target: r.target ?? undefined,
      outcome: r.outcome as AuditEntry['outcome'],
    }));
  }
}
