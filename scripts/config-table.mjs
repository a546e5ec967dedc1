// Rewrites the configuration table in README.md from the key declarations
// (src/registry/config.ts configTable). Run after `npm run build`:
//   node scripts/config-table.mjs
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { configTable } = await import(path.join(root, 'dist/src/registry/config.js'));
const file = path.join(root, 'README.md');
const readme = await readFile(file, 'utf8');
const begin = '<!-- config-table:begin (generated: node scripts/config-table.mjs) -->';
const end = '<!-- config-table:end -->';
const from = readme.indexOf(begin);
const to = readme.indexOf(end);
if (from < 0 || to < from) throw new Error(`README.md has no ${begin} … ${end} block`);
await writeFile(file, `${readme.slice(0, from + begin.length)}\n${configTable()}\n${readme.slice(to)}`);
console.log('README.md configuration table rewritten');
