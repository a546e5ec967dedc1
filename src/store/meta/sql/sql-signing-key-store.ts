/** The signing keys over SQL (migration 0006): see ../signing-keys.ts. */
import type { Kysely } from 'kysely';
import type { SigningKeyStore, StoredSigningKey } from '../signing-keys.js';
import { lockKey, transact } from './dialect.js';
import type { Database } from './schema.js';

export class SqlSigningKeyStore implements SigningKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  async signingKeys(create: () => StoredSigningKey): Promise<StoredSigningKey[]> {
    // Insert-if-absent under one advisory lock (SQLite: its one writer): the first replica creates, the rest read.
    return transact(this.db, 'read committed', async (tx) => {
      await lockKey(tx, 'pier:signing-keys');
      const rows = await tx.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('id').execute();
      if (rows.length > 0) return rows.map((r) => ({ id: r.id, privateKey: r.private_key, certificate: r.certificate, createdAt: Number(r.created_at) }));
      const key = create();
      await tx.insertInto('signing_keys').values({ id: key.id, private_key: key.privateKey, certificate: key.certificate, created_at: key.createdAt }).execute();
      return [key];
    });
  }
}
