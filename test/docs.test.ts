/** Documentation stays in step with the code: error catalog and configuration keys. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { OCI_ERROR_CODES } from '../src/oci/errors.js';
import { configTable, describeConfig } from '../src/registry/config.js';
import { REPO_ROOT } from './helpers/registry.js';

test('every error code is documented in docs/errors.md', async () => {
  const doc = await readFile(path.join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const missing = Object.keys(OCI_ERROR_CODES).filter((code) => !doc.includes(`| \`${code}\` |`));
  assert.deepEqual(missing, []);
});

test('every configuration key and its environment variable is in the README', async () => {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const missing = describeConfig()
    .filter((c) => !readme.includes(`\`${c.key}\``) || !readme.includes(`\`${c.env}\``))
    .map((c) => c.key);
  assert.deepEqual(missing, []);
});

test('the README configuration table is the one the key declarations generate', async () => {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(`\n${configTable()}\n`), 'README.md configuration table is stale: run `npm run build && node scripts/config-table.mjs`');
});
