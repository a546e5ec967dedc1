/**
 * Dependencies point inward (DESIGN.md): oci depends on nothing;
 * store never speaks HTTP; client never reaches into the registry.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/registry.js';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

async function imports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

/** Which top-level modules under src/ each module may import. */
const ALLOWED: Record<string, string[]> = {
  oci: [],
  store: ['oci'],
  auth: ['oci', 'store', 'registry'],
  registry: ['oci', 'store', 'auth', 'lifecycle'],
  lifecycle: ['oci', 'store', 'registry'],
  client: ['oci'],
  cli: ['oci', 'client', 'registry', 'auth', 'store', 'lifecycle'],
};

test('modules import only what the layering allows', async () => {
  const src = path.join(REPO_ROOT, 'src');
  const problems: string[] = [];
  for (const file of await sources(src)) {
    const module = path.relative(src, file).split(path.sep)[0]!;
    for (const spec of await imports(file)) {
      if (!spec.startsWith('.')) {
        if (module === 'oci' && !spec.startsWith('node:')) problems.push(`${path.relative(src, file)} imports package ${spec}`);
        if (module === 'store' && /fastify|undici/.test(spec)) problems.push(`${path.relative(src, file)} speaks HTTP (${spec})`);
        continue;
      }
      const target = path.relative(src, path.resolve(path.dirname(file), spec)).split(path.sep)[0]!;
      if (target !== module && !(ALLOWED[module] ?? []).includes(target)) problems.push(`${path.relative(src, file)} imports ${target} (${spec})`);
    }
  }
  assert.deepEqual(problems, []);
});
