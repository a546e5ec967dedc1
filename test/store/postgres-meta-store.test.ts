import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { openFreshDatabase } from '../helpers/postgres.js';
import { metaStoreSuite } from './meta-store-suite.js';

metaStoreSuite('postgres', async () => {
  const { db, close } = await openFreshDatabase('meta');
  return { store: new SqlMetaStore(db), cleanup: close };
});
