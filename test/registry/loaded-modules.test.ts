/**
 * What a process loads is what its configuration uses (decisions 0125,
 * 0133): the embedded `pier serve` (SQLite, files, no config file, nobody
 * signed in yet, nothing pushed) loads neither the PostgreSQL driver, the
 * AWS SDK, @sigstore, the YAML parser, jose, bcryptjs, Fastify's schema
 * compilers (Ajv) nor the scanner's parsers (tar-stream, fzstd, PEP 440);
 * and `pier push` loads neither the registry nor the client's pull, sign and
 * delete code, nor Node's zlib, child_process or dns when
 * nothing needs them (decision 0132). The real programs run with a preload
 * that records every ES module the loader loads, every CommonJS module in
 * `require.cache` and Node's own modules (`process.moduleLoadList`). `pier`
 * runs bundled (dist/bundle): a loaded bundle file stands for every module
 * esbuild put in it (dist/bundle/meta.json), so the check is on modules.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { PIER_BIN, spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';

let dir = '';
let registry: SpawnedRegistry | undefined;

after(async () => {
  await registry?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const HOOKS = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  const result = await next(url, context);
  appendFileSync(process.env.PIER_TEST_MODULES, url + '\\n');
  return result;
}
`;

const PRELOAD = `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
register(new URL('./hooks.mjs', import.meta.url));
const require = createRequire(import.meta.url);
const dump = () => appendFileSync(process.env.PIER_TEST_MODULES, [...Object.keys(require.cache), ...process.moduleLoadList].join('\\n') + '\\nDUMPED\\n');
process.on('SIGUSR2', dump);
process.on('exit', dump);
`;

/** The env that makes a node process record what it loads into `out`. */
async function recording(out: string): Promise<NodeJS.ProcessEnv> {
  await writeFile(path.join(dir, 'hooks.mjs'), HOOKS);
  await writeFile(path.join(dir, 'preload.mjs'), PRELOAD);
  return { NODE_OPTIONS: `--import ${path.join(dir, 'preload.mjs')}`, PIER_TEST_MODULES: out };
}

/** npm packages named in a list of module paths and URLs. */
function packages(list: string): Set<string> {
  const names = new Set<string>();
  for (const m of list.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)) names.add(m[1]!);
  return names;
}

interface BundleMeta {
  outputs: Record<string, { inputs: Record<string, unknown> }>;
}

/**
 * The list the preload wrote, each loaded file of the bundle followed by the
 * modules esbuild put in it (paths relative to the package, as in
 * dist/bundle/meta.json).
 */
async function waitForDump(file: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.includes('DUMPED\n')) return withBundleInputs(text);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the preload wrote no module list');
}

async function withBundleInputs(list: string): Promise<string> {
  const root = path.resolve(path.dirname(PIER_BIN), '..');
  const meta = JSON.parse(await readFile(path.join(root, 'dist', 'bundle', 'meta.json'), 'utf8')) as BundleMeta;
  const lines = list.split('\n');
  for (const line of list.split('\n')) {
    if (!line.startsWith('file://')) continue;
    const output = meta.outputs[path.relative(root, fileURLToPath(line))];
    if (output) lines.push(...Object.keys(output.inputs));
  }
  return lines.join('\n');
}

test('the embedded registry loads only what its configuration uses', async () => {
  dir = await tempDir('pier-modules-');
  const out = path.join(dir, 'serve.txt');
  registry = await spawnTestRegistry({ dataDir: path.join(dir, 'data'), env: { ...(await recording(out)), PIER_STORAGE_MIN_FREE: '0' } });
  // It serves: the lazy parts are not needed for the API.
  assert.equal((await fetch(`${registry.url}/v2/`)).status, 200);
  registry.process.kill('SIGUSR2');
  const list = await waitForDump(out);
  const loaded = packages(list);
  // The recording works: what the default does use is there, and it runs bundled.
  for (const used of ['fastify', 'kysely', 'better-sqlite3']) assert.ok(loaded.has(used), `${used} should be loaded (got ${[...loaded].join(', ')})`);
  assert.match(list, /dist\/bundle\/main\.js/, 'pier runs from the bundle');
  assert.match(list, /dist\/src\/supply\/scanner\.js/, 'the recording sees the scanner');
  for (const unused of ['pg', '@aws-sdk/client-s3', '@sigstore/verify', '@sigstore/bundle', '@snyk/rpm-parser', 'yaml', 'jose', 'bcryptjs', 'ajv', '@fastify/ajv-compiler', 'light-my-request', 'tar-stream', 'fzstd', '@renovatebot/pep440']) {
    assert.ok(!loaded.has(unused), `${unused} is loaded by the embedded default`);
  }
  await registry.kill();
  registry = undefined;
});

test('pier push loads neither the registry nor the pull, sign and delete code', async () => {
  dir ||= await tempDir('pier-modules-');
  const out = path.join(dir, 'push.txt');
  const env = { ...process.env, ...(await recording(out)) };
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [PIER_BIN, 'push', '--help'], { env, stdio: 'ignore', timeout: 30_000 });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  assert.equal(code, 0);
  const list = await waitForDump(out);
  assert.match(list, /dist\/src\/client\/push\.js/, 'the recording sees the push engine');
  for (const unused of ['dist/src/registry/', 'dist/src/store/', 'dist/src/client/pull.js', 'dist/src/client/sign.js', 'dist/src/client/delete.js', 'dist/src/client/dest/']) {
    assert.ok(!list.includes(unused), `pier push loads ${unused}`);
  }
  const loaded = packages(list);
  for (const unused of ['fastify', 'better-sqlite3', 'kysely']) assert.ok(!loaded.has(unused), `pier push loads ${unused}`);
  // Node's own modules that only compression, credential helpers or name lookups need
  // (not worker_threads: the recording's loader hooks run on a worker thread).
  assert.match(list, /^NativeModule https$/m, "the recording sees Node's modules");
  for (const unused of ['zlib', 'child_process', 'dns/promises']) assert.doesNotMatch(list, new RegExp(`^NativeModule ${unused}$`, 'm'), `pier push --help loads node:${unused}`);
});
