/** Layer inventories: parsers of each file kind, Go build info, whiteouts and opaque directories across layers. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { pack } from 'tar-stream';
import { mergeLayers, parseApkInstalled, parseDpkgStatus, parseGoBuildInfo, readLayer } from '../../src/supply/inventory.js';
import { fromPurl, purlOf } from '../../src/supply/sbom.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}

/** The Go 1.18+ build info blob: 32-byte header (magic, pointer size, flags=2 inline), then two varint strings. */
function goBuildInfo(version: string, modinfo: string): Buffer {
  const header = Buffer.alloc(32);
  Buffer.from('\xff Go buildinf:', 'latin1').copy(header);
  header[14] = 8;
  header[15] = 2;
  const sentinel = '0123456789abcdef';
  const mod = `${sentinel}${modinfo}${sentinel}`;
  return Buffer.concat([header, varint(version.length), Buffer.from(version), varint(Buffer.byteLength(mod)), Buffer.from(mod)]);
}

async function tar(entries: { name: string; data: Buffer | string; mode?: number }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const e of entries) p.entry({ name: e.name, mode: e.mode ?? 0o644 }, e.data);
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

test('Go build info: the main module, dependencies (replacements win), the standard library', () => {
  const info = goBuildInfo('go1.21.5', 'path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.17.0\th1:x\ndep\tgithub.com/a/b\tv1.0.0\th1:y\n=>\tgithub.com/fork/b\tv1.0.1\th1:z\n');
  assert.deepEqual(parseGoBuildInfo(info), [
    { type: 'golang', name: 'stdlib', version: '1.21.5' },
    { type: 'golang', name: 'golang.org/x/net', version: 'v0.17.0' },
    { type: 'golang', name: 'github.com/fork/b', version: 'v1.0.1' },
  ]);
  assert.deepEqual(parseGoBuildInfo(Buffer.from('not go')), []);
});

test('dpkg status: installed packages only, source name and version; apk origin', () => {
  const deb = parseDpkgStatus('Package: a\nStatus: install ok installed\nVersion: 1-1\nSource: src-a (1-0.1)\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nVersion: 3\n');
  assert.deepEqual(deb, [
    { type: 'deb', name: 'a', version: '1-1', source: 'src-a', sourceVersion: '1-0.1' },
    { type: 'deb', name: 'c', version: '3', source: 'c', sourceVersion: '3' },
  ]);
  assert.deepEqual(parseApkInstalled('P:x\nV:1.0-r0\no:y\n\nP:z\nV:2\n'), [
    { type: 'apk', name: 'x', version: '1.0-r0', source: 'y', sourceVersion: '1.0-r0' },
    { type: 'apk', name: 'z', version: '2', source: 'z', sourceVersion: '2' },
  ]);
});

test('layers: a Go binary found in an executable, whiteouts and opaque directories remove what lower layers had', async () => {
  const binary = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(70_000), goBuildInfo('go1.22.0', 'path\tx\nmod\tx\tv1.2.3\t\n'), Buffer.alloc(2000)]);
  const lower = await readLayer(
    Readable.from([
      gzipSync(
        await tar([
          { name: 'usr/local/bin/app', data: binary, mode: 0o755 },
          { name: 'usr/lib/node_modules/a/package.json', data: '{"name":"a","version":"1.0.0"}' },
          { name: 'srv/node_modules/b/package.json', data: '{"name":"b","version":"2.0.0"}' },
          { name: 'var/lib/dpkg/status.d/tzdata', data: 'Package: tzdata\nVersion: 2024a-0+deb12u1\n' },
        ]),
      ),
    ]),
    'gzip',
  );
  assert.deepEqual(Object.keys(lower.files).sort(), ['srv/node_modules/b/package.json', 'usr/lib/node_modules/a/package.json', 'usr/local/bin/app', 'var/lib/dpkg/status.d/tzdata']);
  const upper = await readLayer(Readable.from([await tar([{ name: './usr/lib/node_modules/.wh.a', data: '' }, { name: 'srv/.wh..wh..opq', data: '' }, { name: 'srv/node_modules/c/package.json', data: '{"name":"c","version":"3.0.0"}' }])]), 'none');
  assert.deepEqual(upper.whiteouts, ['usr/lib/node_modules/a']);
  assert.deepEqual(upper.opaque, ['srv']);
  const merged = mergeLayers([lower, upper]);
  assert.deepEqual(
    merged.packages.map((p) => `${p.type}:${p.name}@${p.version}`).sort(),
    ['deb:tzdata@2024a-0+deb12u1', 'golang:stdlib@1.22.0', 'golang:x@v1.2.3', 'npm:c@3.0.0'],
  );
});

test('package URLs round-trip, with the Debian source and the distro', () => {
  const os = { id: 'debian', versionId: '12' };
  const pkg = { type: 'deb' as const, name: 'libssl3', version: '3.0.11-1~deb12u2', source: 'openssl', sourceVersion: '3.0.11-1~deb12u2' };
  const purl = purlOf(pkg, os);
  assert.equal(purl, 'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?upstream=openssl&distro=debian-12');
  assert.deepEqual(fromPurl(purl), { pkg, os });
  assert.deepEqual(fromPurl('pkg:npm/%40scope/x@1.0.0')?.pkg, { type: 'npm', name: '@scope/x', version: '1.0.0' });
  assert.deepEqual(fromPurl('pkg:deb/debian/bash@5.2.15-2%2Bb2?upstream=bash%405.2.15-2')?.pkg, { type: 'deb', name: 'bash', version: '5.2.15-2+b2', source: 'bash', sourceVersion: '5.2.15-2' });
  assert.equal(fromPurl('pkg:maven/a/b@1'), undefined);
});
