// Bundles the `pier` command (decision 0132): esbuild joins the modules tsc
// emitted into dist/src into a few files in dist/bundle/, which
// bin/pier.js loads. Code splitting keeps every lazy import() lazy (a
// command, an adapter, a feature stays its own chunk); the packages named in
// EXTERNAL stay in node_modules and load as before (native code, big SDKs
// loaded only when configured, CommonJS packages required lazily or by
// path). dist/bundle/meta.json maps each output file to the modules in it
// (test/registry/loaded-modules.test.ts reads it).
// Run by `npm run build`, scripts/test.sh and the bench scripts, after tsc.
import { build } from 'esbuild';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'bundle');

/** Left to Node's resolver at run time. */
export const EXTERNAL = [
  // Native addons and their loaders.
  'better-sqlite3',
  // Loaded only when a configuration or command uses them (decision 0125): big, and never at start.
  'pg', 'pg-*', '@aws-sdk/*', '@smithy/*', '@sigstore/*', '@snyk/*',
  // Fastify requires these only for features Pier does not use (schemas, inject); kept out of the start-up chunk.
  'ajv', 'ajv-formats', '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request',
  // pino finds its transports' worker files by path.
  'pino', 'pino-*', 'thread-stream', 'sonic-boom',
  // Required lazily through createRequire (src/supply/versions.ts; semver is also bundled: Fastify uses it).
  '@renovatebot/pep440',
  // CommonJS packages that Pier loads with import(): in a split bundle their chunk
  // would export only `default`, not the named exports Node gives them.
  'yaml', 'tar-stream', 'fzstd',
];

// A failed build leaves no bundle behind (bin/pier.js then runs dist/src), never a stale one.
await rm(out, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/src/cli/main.js', 'gzip-worker': 'dist/src/client/gzip-worker.js' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  external: EXTERNAL,
  // CommonJS packages in an ES module bundle call require() for Node's built-ins.
  banner: { js: "import { createRequire as __pierCreateRequire } from 'node:module'; const require = __pierCreateRequire(import.meta.url);" },
  sourcemap: 'linked',
  metafile: true,
  legalComments: 'none',
  // Smaller source kept in memory (~2.5 MB less RSS for `pier serve`); names stay,
  // so stacks still name functions, and the linked source maps lead back to src/
  // (NODE_OPTIONS=--enable-source-maps).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  write: false,
});
// The mistake above is silent until the feature runs (`parse is not a function`): refuse it here.
for (const [file, input] of Object.entries(result.metafile.inputs)) {
  for (const i of input.imports) {
    if (i.kind === 'dynamic-import' && !i.external && result.metafile.inputs[i.path]?.format === 'cjs') {
      throw new Error(`build-cli: ${file} imports ${i.original ?? i.path} with import(), a CommonJS module: add its package to EXTERNAL`);
    }
  }
}
await mkdir(out, { recursive: true });
for (const file of result.outputFiles) await writeFile(file.path, file.contents);
await writeFile(path.join(out, 'meta.json'), JSON.stringify(result.metafile));
