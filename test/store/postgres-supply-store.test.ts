import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { SqlSupplyStore } from '../../src/store/meta/sql/sql-supply-store.js';
import { openFreshDatabase } from '../helpers/postgres.js';
import { supplyStoreSuite } from './supply-store-suite.js';

supplyStoreSuite('postgres', async () => {
  const { db, close } = await openFreshDatabase('supply');
  return { meta: new SqlMetaStore(db), store: new SqlSupplyStore(db), close };
});
