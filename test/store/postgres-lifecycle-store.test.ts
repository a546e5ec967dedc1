import { SqlLifecycleStore } from '../../src/store/meta/sql/sql-lifecycle-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { openFreshDatabase } from '../helpers/postgres.js';
import { lifecycleStoreSuite } from './lifecycle-store-suite.js';

lifecycleStoreSuite('postgres', async () => {
  const { db, close } = await openFreshDatabase('lifecycle');
  return { meta: new SqlMetaStore(db), store: new SqlLifecycleStore(db), close };
});
