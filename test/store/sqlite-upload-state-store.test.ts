/** The SQL UploadStateStore on SQLite: the shared suite, two connections to one database file (two replicas). */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { openSqliteDatabase } from '../../src/store/meta/sql/sqlite.js';
import { SqlUploadStateStore } from '../../src/store/meta/sql/sql-upload-state-store.js';
import { tempDir } from '../helpers/registry.js';
import { uploadStateSuite } from './upload-state-suite.js';

uploadStateSuite('sqlite', async () => {
  const dir = await tempDir('pier-upload-state-');
  const file = path.join(dir, 'pier.db');
  const first = await openSqliteDatabase(file);
  const second = await openSqliteDatabase(file);
  return {
    a: new SqlUploadStateStore(first),
    b: new SqlUploadStateStore(second),
    async cleanup() {
      await first.destroy();
      await second.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
