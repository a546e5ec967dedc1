/**
 * The folder of Pier's package.json, found from the running code: the
 * compiled modules (dist/src/...) and the bundled CLI (dist/bundle/, one
 * folder, chunks named by hash; decision 0132) sit at different depths, so
 * files shipped beside the code (package.json, dist/web) are located from
 * here, never by a relative URL that only one layout satisfies.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The nearest folder above this module whose package.json names `pier`; computed once. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'pier') return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`pier's package.json was not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** `version` from Pier's package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
