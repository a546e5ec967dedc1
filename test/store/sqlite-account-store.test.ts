import { rm } from 'node:fs/promises';
import path from 'node:path';
import { openSqliteAccountStore } from '../../src/store/meta/sql/sqlite.js';
import { tempDir } from '../helpers/registry.js';
import { accountStoreSuite } from './account-store-suite.js';

accountStoreSuite('sqlite', async () => {
  const dir = await tempDir('pier-accounts-');
  const opened = await openSqliteAccountStore(path.join(dir, 'pier.db'));
  return {
    store: opened.store,
    async close() {
      await opened.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
