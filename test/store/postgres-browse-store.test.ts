import { SqlBrowseStore } from '../../src/store/meta/sql/sql-browse-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { openFreshDatabase } from '../helpers/postgres.js';
import { browseStoreSuite } from './browse-store-suite.js';

browseStoreSuite('postgres', async () => {
  const { db, close } = await openFreshDatabase('browse');
  return { meta: new SqlMetaStore(db), browse: new SqlBrowseStore(db), close };
});
