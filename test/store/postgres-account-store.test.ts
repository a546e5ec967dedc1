import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { SqlAccountStore } from '../../src/store/meta/sql/sql-account-store.js';
import { freshDatabase } from '../helpers/postgres.js';
import { accountStoreSuite } from './account-store-suite.js';

accountStoreSuite('postgres', async () => {
  const database = await freshDatabase('accounts');
  try {
    const db = await openPostgresDatabase(database.url);
    return {
      store: new SqlAccountStore(db),
      async close() {
        await db.destroy();
        await database.drop();
      },
    };
  } catch (err) {
    await database.drop();
    throw err;
  }
});
