/**
 * `node dist/bench/push/lib-push.js SOURCE DEST`: the same push as
 * `pier push --quiet SOURCE DEST`, through the library with nothing but
 * src/client loaded — the CLI minus the start-up cost of every other
 * command's modules. The benchmark reports both.
 */
import { Client, openSource } from '../../src/client/index.js';
import { ImageReference } from '../../src/oci/index.js';

const [src, dest] = process.argv.slice(2);
if (!src || !dest) {
  process.stderr.write('usage: lib-push SOURCE DEST\n');
  process.exit(2);
}
const client = new Client();
const source = await openSource(src);
try {
  const r = await client.push(source, ImageReference.parse(dest));
  process.stdout.write(`${r.digest.toString()}\n`);
} finally {
  await source.close();
  await client.close();
}
