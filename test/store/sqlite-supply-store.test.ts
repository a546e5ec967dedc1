import { rm } from 'node:fs/promises';
import path from 'node:path';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { SqlSupplyStore } from '../../src/store/meta/sql/sql-supply-store.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { tempDir } from '../helpers/registry.js';
import { supplyStoreSuite } from './supply-store-suite.js';

supplyStoreSuite('sqlite', async () => {
  const dir = await tempDir('pier-supply-store-');
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  return {
    meta: new SqlMetaStore(db),
    store: new SqlSupplyStore(db),
    async close() {
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
