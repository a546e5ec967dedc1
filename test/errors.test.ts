/**
 * One error catalog: every `ERR_*` code in the source is documented in
 * docs/errors.md (and nothing documented is missing from the source), and
 * every error class is a PierError, as the OCI catalog is checked in
 * docs.test.ts.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/registry.js';

/** Node's own codes that Pier reads but does not define. */
const NODE_CODES = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ERR_TLS_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID']);

async function sourceTexts(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) {
      const file = path.join(e.parentPath, e.name);
      out.set(path.relative(REPO_ROOT, file), await readFile(file, 'utf8'));
    }
  }
  return out;
}

test('every ERR_ code is in docs/errors.md, and every documented code exists', async () => {
  const doc = await readFile(path.join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const sources = await sourceTexts(path.join(REPO_ROOT, 'src'));
  const inSource = new Set<string>();
  for (const text of sources.values()) for (const m of text.matchAll(/'(ERR_[A-Z0-9_]+)'/g)) if (!NODE_CODES.has(m[1]!)) inSource.add(m[1]!);
  const documented = new Set([...doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
  assert.deepEqual([...inSource].filter((c) => !documented.has(c)).sort(), [], 'codes missing from docs/errors.md');
  assert.deepEqual([...documented].filter((c) => !inSource.has(c)).sort(), [], 'documented codes no source defines');
});

test('every error class extends PierError', async () => {
  const sources = await sourceTexts(path.join(REPO_ROOT, 'src'));
  const plain: string[] = [];
  for (const [file, text] of sources) {
    for (const m of text.matchAll(/class (\w+) extends Error\b/g)) if (m[1] !== 'PierError') plain.push(`${file}: ${m[1]}`);
  }
  assert.deepEqual(plain, []);
});
