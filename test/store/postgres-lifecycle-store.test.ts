import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { SqlLifecycleStore } from '../../src/store/meta/sql/sql-lifecycle-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { freshDatabase } from '../helpers/postgres.js';
import { lifecycleStoreSuite } from './lifecycle-store-suite.js';

lifecycleStoreSuite('postgres', async () => {
  const database = await freshDatabase('lifecycle');
  try {
    const db = await openPostgresDatabase(database.url);
    return {
      meta: new SqlMetaStore(db),
      store: new SqlLifecycleStore(db),
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
