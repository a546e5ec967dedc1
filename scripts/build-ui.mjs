// Builds the web UI (web/) into dist/web: one bundled, minified script and
// one stylesheet named by their content hash (served as immutable), an
// index.html that names them, and a gzip and a brotli copy of each (the
// registry serves the precompressed file the browser accepts).
// Run by `npm run build` and scripts/test.sh after tsc.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');

const result = await build({
  entryPoints: [path.join(root, 'web', 'src', 'main.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  write: false,
  legalComments: 'none',
  logLevel: 'warning',
});
const script = Buffer.from(result.outputFiles[0].contents);
const style = await readFile(path.join(root, 'web', 'style.css'));
const hash = (b) => createHash('sha256').update(b).digest('hex').slice(0, 12);
const files = new Map([
  [`assets/app-${hash(script)}.js`, script],
  [`assets/app-${hash(style)}.css`, style],
]);
const [js, css] = [...files.keys()];
const html = (await readFile(path.join(root, 'web', 'index.html'), 'utf8')).replace('%SCRIPT%', `/${js}`).replace('%STYLE%', `/${css}`);
files.set('index.html', Buffer.from(html));

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'assets'), { recursive: true });
for (const [name, body] of files) {
  const file = path.join(out, name);
  await writeFile(file, body);
  await writeFile(`${file}.gz`, gzipSync(body, { level: 9 }));
  await writeFile(`${file}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }));
}
