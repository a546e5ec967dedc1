import { rm } from 'node:fs/promises';
import path from 'node:path';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { SqlSessionStore } from '../../src/store/meta/sql/sql-session-store.js';
import { tempDir } from '../helpers/registry.js';
import { sessionStoreSuite } from './session-store-suite.js';

sessionStoreSuite('sqlite', async () => {
  const dir = await tempDir('pier-sessions-');
  const db = await openSqliteDatabase(path.join(dir, 'pier.db'));
  return {
    store: new SqlSessionStore(db),
    async close() {
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
