import { rm } from 'node:fs/promises';
import path from 'node:path';
import { SqlBrowseStore } from '../../src/store/meta/sql/sql-browse-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { tempDir } from '../helpers/registry.js';
import { browseStoreSuite } from './browse-store-suite.js';

browseStoreSuite('sqlite', async () => {
  const dir = await tempDir('pier-browse-');
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  return {
    meta: new SqlMetaStore(db),
    browse: new SqlBrowseStore(db),
    async close() {
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
