import { rm } from 'node:fs/promises';
import path from 'node:path';
import { SqlLifecycleStore } from '../../src/store/meta/sql/sql-lifecycle-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { tempDir } from '../helpers/registry.js';
import { lifecycleStoreSuite } from './lifecycle-store-suite.js';

lifecycleStoreSuite('sqlite', async () => {
  const dir = await tempDir('pier-lifecycle-store-');
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  return {
    meta: new SqlMetaStore(db),
    store: new SqlLifecycleStore(db),
    async close() {
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
