import path from 'node:path';
import { rm } from 'node:fs/promises';
import { openSqliteMetaStore } from '../../src/store/meta/sql/sqlite.js';
import { tempDir } from '../helpers/registry.js';
import { metaStoreSuite } from './meta-store-suite.js';

metaStoreSuite('sqlite', async () => {
  const dir = await tempDir('pier-sqlite-');
  return { store: await openSqliteMetaStore(path.join(dir, 'pier.db')), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
