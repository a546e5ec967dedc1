/**
 * Dependencies point inward, exactly as DESIGN.md draws them:
 *
 *   cli → client → oci
 *   registry → service → (auth, lifecycle) → store → oci
 *   registry → supply → store → oci   (supply: inventories, SBOMs, scanning)
 *
 * `oci` (with the error base), the `shared` leaf (loopback rule, byte
 * and duration grammars) and `api` (the /pier/v1 wire types, shared by server and
 * client) import nothing of ours; `store` never speaks HTTP; auth and lifecycle
 * never import each other, the service or the registry; routes reach the
 * stores only through the service. The concrete SQL
 * adapter (`store/meta/sql`) and the fs blob store are imported only by
 * `store/` itself and the composition roots named below, the only places
 * that choose and wire adapters. The CLI reaches the server side only from
 * the commands that open a local database or start the server.
 *
 * The checker is a pure function over an import map, so the last tests can
 * prove it refuses edges outside the picture.
 *
 * Three rules a grep can keep, checked the same way (a pure function over
 * the source texts, proven on synthetic violations): SQL only under
 * `store/`; tags and their history written only in `writeTagMove`
 * (`store/meta/sql/sql-meta-store.ts`, behind `MetaStore.moveTag`); OCI
 * errors built only in `registry/http-errors.ts`.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/registry.js';

/** Which top-level modules under src/ each module may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  shared: [],
  oci: [],
  api: [],
  store: ['oci', 'shared'],
  auth: ['oci', 'store', 'shared'],
  lifecycle: ['oci', 'store', 'shared'],
  supply: ['oci', 'store', 'shared'],
  service: ['auth', 'lifecycle', 'store', 'oci', 'shared'],
  registry: ['service', 'auth', 'lifecycle', 'supply', 'store', 'oci', 'shared', 'api'],
  client: ['oci', 'shared', 'api'],
  cli: ['client', 'oci', 'shared', 'api'],
};

/** The composition roots: the only files outside store/ that may import adapters (store/meta/sql, store/blob/fs, store/blob/s3). */
const COMPOSITION_ROOTS = new Set(['registry/server.ts', 'cli/commands/auth-common.ts', 'cli/commands/migrate.ts']);

/** CLI commands that run the server or administer a local database: they may use the server side. */
const LOCAL_COMMANDS = new Set(['cli/commands/serve.ts', 'cli/commands/auth-common.ts', 'cli/commands/user.ts', 'cli/commands/token.ts', 'cli/commands/policy.ts', 'cli/commands/migrate.ts']);
const SERVER_SIDE = ['registry', 'auth', 'store'];

const ADAPTERS = [/^store\/meta\/sql\//, /^store\/blob\/fs\//, /^store\/blob\/s3\//];

/** One source file's imports: `from` relative to src/, each import as written. */
export type ImportMap = Map<string, string[]>;

/** Every edge outside the layering, one line each (empty: the code keeps DESIGN's picture). */
export function layeringProblems(imports: ImportMap): string[] {
  const problems: string[] = [];
  for (const [file, specs] of imports) {
    const module = file.split('/')[0]!;
    const allowed = ALLOWED[module];
    if (allowed === undefined) {
      problems.push(`${file} is in module ${module}, which the layering does not know (add it to ALLOWED with its place)`);
      continue;
    }
    for (const spec of specs) {
      if (!spec.startsWith('.')) {
        if ((module === 'oci' || module === 'shared' || module === 'api') && !spec.startsWith('node:')) problems.push(`${file} imports package ${spec}`);
        if (module === 'store' && /fastify|undici|^node:http/.test(spec)) problems.push(`${file} speaks HTTP (${spec})`);
        continue;
      }
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      const targetModule = target.split('/')[0]!;
      if (targetModule === '..' || target.startsWith('../')) {
        problems.push(`${file} imports outside src (${spec})`);
        continue;
      }
      if (targetModule !== module) {
        const cliException = module === 'cli' && LOCAL_COMMANDS.has(file) && SERVER_SIDE.includes(targetModule);
        if (!allowed.includes(targetModule) && !cliException) problems.push(`${file} imports ${targetModule} (${spec})`);
      }
      if (file.startsWith('registry/routes/') && targetModule === 'store' && !ADAPTERS.some((a) => a.test(target))) problems.push(`${file} imports ${target}: routes reach stores only through the service`);
      if (ADAPTERS.some((a) => a.test(target)) && module !== 'store' && !COMPOSITION_ROOTS.has(file)) {
        problems.push(`${file} imports the adapter ${target}: only store/ and the composition roots (${[...COMPOSITION_ROOTS].join(', ')}) may`);
      }
    }
  }
  return problems;
}

/** Kysely query builders and the `sql` tag: SQL is written only under store/. */
const SQL = /\bsql`|\.(?:selectFrom|insertInto|updateTable|deleteFrom|mergeInto|replaceInto)\(/;
/** A write to tags or tag_history, through Kysely or raw SQL. */
const TAG_WRITE = /\.(?:insertInto|updateTable|deleteFrom|mergeInto|replaceInto)\(\s*['"](?:tags|tag_history)\b|\b(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|replace\s+into)\s+["`]?(?:tags|tag_history)\b/i;
/** The one writer of tags: this function, in this file. */
const TAG_WRITER = { file: 'store/meta/sql/sql-meta-store.ts', fn: 'writeTagMove' };

/** `text` without the body of the top-level function `name` (from its declaration to the next line that is a lone `}`). */
function withoutFunction(text: string, name: string): string {
  const start = text.search(new RegExp(`^(?:export )?(?:async )?function ${name}\\b`, 'm'));
  if (start === -1) return text;
  const end = text.indexOf('\n}', start);
  return end === -1 ? text.slice(0, start) : text.slice(0, start) + text.slice(end + 2);
}

/** Every break of the grep rules, one line each: `sources` maps a path relative to src/ to its text. */
export function sourceRuleProblems(sources: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, text] of sources) {
    const lines = (t: string, re: RegExp) => t.split('\n').flatMap((l, i) => (re.test(l) ? [`${i + 1}: ${l.trim().slice(0, 100)}`] : []));
    if (!file.startsWith('store/')) for (const l of lines(text, SQL)) problems.push(`${file} writes SQL outside store/ (line ${l})`);
    const tagText = file === TAG_WRITER.file ? withoutFunction(text, TAG_WRITER.fn) : text;
    for (const l of lines(tagText, TAG_WRITE)) problems.push(`${file} writes tags outside ${TAG_WRITER.fn} (MetaStore.moveTag) (${l})`);
    if (file !== 'registry/http-errors.ts') for (const l of lines(text, /\bnew OciError\(/)) problems.push(`${file} builds an OCI error outside registry/http-errors.ts (line ${l})`);
  }
  return problems;
}

async function srcTexts(): Promise<Map<string, string>> {
  const src = path.join(REPO_ROOT, 'src');
  const map = new Map<string, string>();
  for (const file of await sources(src)) map.set(path.relative(src, file).split(path.sep).join('/'), await readFile(file, 'utf8'));
  return map;
}

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function importsOf(text: string): string[] {
  const statics = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
  const dynamics = [...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return [...statics, ...dynamics];
}

async function srcImports(): Promise<ImportMap> {
  const src = path.join(REPO_ROOT, 'src');
  const map: ImportMap = new Map();
  for (const file of await sources(src)) map.set(path.relative(src, file).split(path.sep).join('/'), importsOf(await readFile(file, 'utf8')));
  return map;
}

test('modules import only what the layering allows', async () => {
  assert.deepEqual(layeringProblems(await srcImports()), []);
});

test('the checker refuses an edge outside the picture', async () => {
  const real = await srcImports();
  const added: [string, string][] = [
    ['oci/digest.ts', '../store/blob/blob-store.js'],
    ['auth/gate.ts', '../registry/http-errors.js'],
    ['lifecycle/gc.ts', '../service/repository-service.js'],
    ['lifecycle/retention.ts', '../store/meta/sql/schema.js'],
    ['auth/accounts.ts', '../lifecycle/errors.js'],
    ['store/meta/meta-store.ts', '../../auth/access.js'],
    ['client/registry.ts', '../registry/config.js'],
    ['cli/commands/push.ts', '../../store/meta/meta-store.js'],
    ['registry/routes/blobs.ts', '../../store/blob/fs/fs-blob-store.js'],
    ['registry/routes/manifests.ts', '../../store/meta/meta-store.js'],
    ['shared/bytes.ts', 'kysely'],
    ['api/pier-v1.ts', '../oci/digest.js'],
  ];
  for (const [file, spec] of added) {
    const map: ImportMap = new Map(real);
    map.set(file, [...(map.get(file) ?? []), spec]);
    const problems = layeringProblems(map);
    assert.equal(problems.length, 1, `${file} → ${spec} should be the one problem, got ${JSON.stringify(problems)}`);
    assert.ok(problems[0]!.startsWith(file), problems[0]);
  }
});

test('the composition roots and local commands named here exist', async () => {
  const real = await srcImports();
  for (const file of [...COMPOSITION_ROOTS, ...LOCAL_COMMANDS]) assert.ok(real.has(file), `${file} is named in the layering but does not exist`);
});

test('SQL only under store/, tags written only in writeTagMove, OCI errors built only in http-errors.ts', async () => {
  const real = await srcTexts();
  assert.ok(real.get(TAG_WRITER.file)?.includes(`function ${TAG_WRITER.fn}(`), `${TAG_WRITER.file} no longer has ${TAG_WRITER.fn}: update TAG_WRITER`);
  assert.deepEqual(sourceRuleProblems(real), []);
});

test('the grep rules refuse a deliberately added violation', async () => {
  const real = await srcTexts();
  const added: [file: string, line: string][] = [
    ['lifecycle/retention.ts', "const rows = await db.selectFrom('tags').selectAll().execute();"],
    ['service/repository-service.ts', 'await sql`delete from uploads`.execute(db);'],
    ['registry/routes/pier-api.ts', "await db.updateTable('users').set({ admin: 1 }).execute();"],
    ['store/meta/sql/sql-lifecycle-store.ts', "await tx.deleteFrom('tags').where('name', '=', tag).execute();"],
    ['store/meta/sql/sql-lifecycle-store.ts', "await tx.insertInto('tag_history').values(row).execute();"],
    ['store/meta/sql/sql-meta-store.ts', "async function prune(tx: Tx) { await tx.deleteFrom('tag_history').execute(); }"],
    ['store/meta/sql/sql-account-store.ts', 'await sql`UPDATE tags SET manifest_digest = ${d}`.execute(db);'],
    ['registry/routes/blobs.ts', "throw new OciError('BLOB_UNKNOWN', 'gone');"],
    ['service/repository-service.ts', "return new OciError('DENIED');"],
  ];
  for (const [file, line] of added) {
    assert.ok(real.has(file), `${file} does not exist`);
    const map = new Map(real);
    map.set(file, `${map.get(file)!}\n${line}\n`);
    const problems = sourceRuleProblems(map);
    assert.equal(problems.length, 1, `${file} + ${line} should be the one problem, got ${JSON.stringify(problems)}`);
    assert.ok(problems[0]!.startsWith(file), problems[0]);
  }
});
