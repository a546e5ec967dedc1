#!/usr/bin/env node
// Writes a small OCI image layout (one layer holding /hello.txt) to the
// folder given as the first argument, tagged `latest`. Used by the quick
// start on machines with no Docker engine.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: example-image.mjs DIR');
  process.exit(2);
}
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const tar = await new Promise((resolve, reject) => {
  const p = pack();
  const chunks = [];
  p.on('data', (c) => chunks.push(c));
  p.on('end', () => resolve(Buffer.concat(chunks)));
  p.on('error', reject);
  p.entry({ name: 'hello.txt', mtime: new Date(0) }, `Hello from Pier, ${new Date().toISOString()}\n`);
  p.finalize();
});
const layer = gzipSync(tar);
const config = Buffer.from(JSON.stringify({
  architecture: 'amd64', os: 'linux', created: new Date().toISOString(),
  config: { Cmd: ['cat', '/hello.txt'] }, rootfs: { type: 'layers', diff_ids: [sha(tar)] },
}));
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
}));
const blobs = path.join(dir, 'blobs', 'sha256');
await mkdir(blobs, { recursive: true });
for (const b of [layer, config, manifest]) await writeFile(path.join(blobs, sha(b).slice(7)), b);
await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
await writeFile(path.join(dir, 'index.json'), JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length,
    annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
}));
console.log(`wrote ${dir} (oci:${dir}:latest, ${sha(manifest)})`);
