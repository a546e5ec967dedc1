import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { freshDatabase } from '../helpers/postgres.js';
import { metaStoreSuite } from './meta-store-suite.js';

metaStoreSuite('postgres', async () => {
  const database = await freshDatabase('meta');
  try {
    return { store: new SqlMetaStore(await openPostgresDatabase(database.url)), cleanup: () => database.drop() };
  } catch (err) {
    await database.drop();
    throw err;
  }
});
