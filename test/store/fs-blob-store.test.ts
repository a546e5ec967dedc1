import { rm } from 'node:fs/promises';
import { FsBlobStore } from '../../src/store/blob/fs/fs-blob-store.js';
import { tempDir } from '../helpers/registry.js';
import { blobStoreSuite } from './blob-store-suite.js';

blobStoreSuite('filesystem', async () => {
  const dir = await tempDir('pier-fsblob-');
  return { store: await FsBlobStore.open(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
