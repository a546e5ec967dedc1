import { SqlAccountStore } from '../../src/store/meta/sql/sql-account-store.js';
import { openFreshDatabase } from '../helpers/postgres.js';
import { accountStoreSuite } from './account-store-suite.js';

accountStoreSuite('postgres', async () => {
  const { db, close } = await openFreshDatabase('accounts');
  return { store: new SqlAccountStore(db), close };
});
