/**
 * Fixture images and a fixture OSV database for the scanner tests, built by
 * hand (tar + gzip + the OCI manifest), nothing checked in. Each record is
 * there to prove one rule; EXPECTED_V1/V2 are exactly what must be found.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { MediaTypes } from '../../src/oci/media-types.js';
import { blob, sha256, tarOf, type TestImage } from '../helpers/images.js';

/** Compresses with the `zstd` command (Debian's zstd), as a builder with `compression=zstd` would. */
export async function zstdCompress(data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('zstd', ['-q', '-c', '-19'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd exited ${code}: ${err}`))));
    child.stdin.end(data);
  });
}

export async function imageOf(layers: { name: string; data: string | Buffer }[][], compression: 'gzip' | 'zstd' = 'gzip'): Promise<TestImage> {
  const diffs = await Promise.all(layers.map((entries) => tarOf(entries)));
  const blobs =
    compression === 'gzip'
      ? diffs.map((d) => blob(gzipSync(d), MediaTypes.ociLayerGzip))
      : await Promise.all(diffs.map(async (d) => blob(await zstdCompress(d), MediaTypes.ociLayerZstd)));
  const config = blob(
    Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', created: new Date(0).toISOString(), config: {}, rootfs: { type: 'layers', diff_ids: diffs.map((d) => sha256(d)) } })),
    MediaTypes.ociConfig,
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: blobs.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  return { mediaType: MediaTypes.ociManifest, config, layers: blobs, diffs, manifest, digest: sha256(manifest) };
}

const DPKG_STATUS = `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
Source: bash (5.2.15-2)
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: oldlib
Status: deinstall ok config-files
Version: 1.0-1
`;

/** Debian 12 with dpkg, npm and pip contents; layer 2 whites out urllib3 and hides an old node_modules. */
export function debianImage(): Promise<TestImage> {
  return imageOf([
    [
      { name: 'etc/os-release', data: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' },
      { name: 'var/lib/dpkg/status', data: DPKG_STATUS },
      { name: 'usr/lib/node_modules/lodash/package.json', data: JSON.stringify({ name: 'lodash', version: '4.17.20' }) },
      { name: 'usr/lib/node_modules/minimist/package.json', data: JSON.stringify({ name: 'minimist', version: '1.2.6' }) },
      { name: 'usr/lib/node_modules/lodash/node_modules/@scope/inner/package.json', data: JSON.stringify({ name: '@scope/inner', version: '2.0.0' }) },
      { name: 'usr/lib/python3/dist-packages/requests-2.25.1.dist-info/METADATA', data: 'Metadata-Version: 2.1\nName: requests\nVersion: 2.25.1\n\nbody\n' },
      { name: 'usr/lib/python3/dist-packages/urllib3-1.26.5.dist-info/METADATA', data: 'Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.5\n' },
      { name: 'opt/old/node_modules/event-stream/package.json', data: JSON.stringify({ name: 'event-stream', version: '3.3.6' }) },
    ],
    [
      { name: 'usr/lib/python3/dist-packages/.wh.urllib3-1.26.5.dist-info', data: '' },
      { name: 'opt/old/.wh..wh..opq', data: '' },
      { name: 'opt/old/README', data: 'replaced\n' },
    ],
  ]);
}

/** Alpine 3.19: libcrypto3 from origin openssl, busybox at the fixed version; zstd-compressed layers on request. */
export function alpineImage(compression: 'gzip' | 'zstd' = 'gzip'): Promise<TestImage> {
  const installed = 'C:Q1abc=\nP:libcrypto3\nV:3.1.4-r1\nA:x86_64\no:openssl\n\nC:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\n\n';
  return imageOf(
    [
      [
        { name: 'etc/os-release', data: 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n' },
        { name: 'lib/apk/db/installed', data: installed },
      ],
    ],
    compression,
  );
}

const CRITICAL = [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }];
const HIGH = [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H' }];

const range = (ecosystem: string, name: string, events: Record<string, string>[], type = 'ECOSYSTEM') => ({ package: { ecosystem, name }, ranges: [{ type, events }] });

export const OSV_V1: Record<string, unknown>[] = [
  // A Debian binary package (libssl3) matched through its source (openssl).
  { id: 'DSA-5532-1', modified: '2024-01-10T00:00:00Z', summary: 'openssl security update', affected: [range('Debian:12', 'openssl', [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }])], severity: CRITICAL },
  // The same source on another release: not this image.
  { id: 'DSA-OLD-1', modified: '2023-01-10T00:00:00Z', affected: [range('Debian:11', 'openssl', [{ introduced: '0' }, { fixed: '1.1.1w-0+deb11u1' }])], severity: CRITICAL },
  // Fixed in the installed version: not reported.
  { id: 'DLA-3000-1', modified: '2023-06-01T00:00:00Z', affected: [range('Debian:12', 'zlib', [{ introduced: '0' }, { fixed: '1:1.2.13.dfsg-1' }])], severity: HIGH },
  // A binary package whose source has its own version (`Source: bash (5.2.15-2)`).
  { id: 'DSA-BASH-1', modified: '2023-06-01T00:00:00Z', affected: [range('Debian:12', 'bash', [{ introduced: '0' }, { fixed: '5.2.15-3' }])], database_specific: { severity: 'low' } },
  // A semver range.
  { id: 'GHSA-35jh-r3h4-6jhm', modified: '2023-12-01T00:00:00Z', summary: 'Command injection in lodash', affected: [range('npm', 'lodash', [{ introduced: '0' }, { fixed: '4.17.21' }], 'SEMVER')], database_specific: { severity: 'HIGH' } },
  { id: 'GHSA-xvch-5gv4-984h', modified: '2023-12-01T00:00:00Z', affected: [range('npm', 'minimist', [{ introduced: '0' }, { fixed: '1.2.6' }], 'SEMVER')], database_specific: { severity: 'CRITICAL' } },
  // Removed by an opaque directory in a later layer.
  { id: 'GHSA-mh6f-8j2x-4483', modified: '2023-12-01T00:00:00Z', affected: [{ package: { ecosystem: 'npm', name: 'event-stream' }, versions: ['3.3.6'] }], database_specific: { severity: 'CRITICAL' } },
  // A PEP 440 range.
  { id: 'PYSEC-2023-74', modified: '2023-11-01T00:00:00Z', affected: [range('PyPI', 'requests', [{ introduced: '2.3.0' }, { fixed: '2.31.0' }])], database_specific: { severity: 'MODERATE' } },
  // Removed by a whiteout in a later layer.
  { id: 'PYSEC-2023-192', modified: '2023-11-01T00:00:00Z', affected: [range('PyPI', 'urllib3', [{ introduced: '0' }, { fixed: '1.26.17' }])], database_specific: { severity: 'HIGH' } },
  // Alpine by origin; busybox at its fixed revision is not reported.
  { id: 'ALPINE-CVE-2023-5678', modified: '2023-12-20T00:00:00Z', affected: [range('Alpine:v3.19', 'openssl', [{ introduced: '0' }, { fixed: '3.1.4-r5' }])], severity: HIGH },
  { id: 'ALPINE-CVE-2023-42363', modified: '2023-12-20T00:00:00Z', affected: [range('Alpine:v3.19', 'busybox', [{ introduced: '0' }, { fixed: '1.36.1-r15' }])], severity: HIGH },
];

/** The newer database: a new critical zlib advisory. */
export const OSV_V2: Record<string, unknown>[] = [
  ...OSV_V1,
  { id: 'DSA-9999-1', modified: '2024-03-01T00:00:00Z', summary: 'zlib security update', affected: [range('Debian:12', 'zlib', [{ introduced: '0' }, { fixed: '1:1.2.13.dfsg-2' }])], severity: CRITICAL },
];

export interface Expected {
  id: string;
  package: string;
  installed: string;
  fixed?: string;
  severity: string;
  source?: string;
}

export const DEBIAN_V1: Expected[] = [
  { id: 'DSA-5532-1', package: 'libssl3', installed: '3.0.11-1~deb12u2', fixed: '3.0.13-1~deb12u1', severity: 'critical', source: 'openssl' },
  { id: 'GHSA-35jh-r3h4-6jhm', package: 'lodash', installed: '4.17.20', fixed: '4.17.21', severity: 'high' },
  { id: 'PYSEC-2023-74', package: 'requests', installed: '2.25.1', fixed: '2.31.0', severity: 'medium' },
  { id: 'DSA-BASH-1', package: 'bash', installed: '5.2.15-2+b2', fixed: '5.2.15-3', severity: 'low' },
];
export const DEBIAN_V2: Expected[] = [{ id: 'DSA-9999-1', package: 'zlib1g', installed: '1:1.2.13.dfsg-1', fixed: '1:1.2.13.dfsg-2', severity: 'critical', source: 'zlib' }, ...DEBIAN_V1];
export const ALPINE_V1: Expected[] = [{ id: 'ALPINE-CVE-2023-5678', package: 'libcrypto3', installed: '3.1.4-r1', fixed: '3.1.4-r5', severity: 'high', source: 'openssl' }];

/** Writes a database as osv.dev exports it: JSON files in per-ecosystem folders, and npm as an all.zip. */
export async function writeOsvDb(dir: string, records: Record<string, unknown>[]): Promise<void> {
  const zip: Record<string, Uint8Array> = {};
  for (const r of records) {
    const ecosystem = ((r.affected as { package: { ecosystem: string } }[])[0]!.package.ecosystem.split(':')[0] ?? 'x').toLowerCase();
    if (ecosystem === 'npm') {
      zip[`${r.id as string}.json`] = Buffer.from(JSON.stringify(r));
      continue;
    }
    await mkdir(path.join(dir, ecosystem, 'nested'), { recursive: true });
    await writeFile(path.join(dir, ecosystem, 'nested', `${r.id as string}.json`), JSON.stringify(r));
  }
  await mkdir(path.join(dir, 'npm'), { recursive: true });
  await writeFile(path.join(dir, 'npm', 'all.zip'), zipSync(zip));
}

/** An image whose one layer claims zstd compression but is gzip: its scan fails, naming the layer. */
export async function mislabeledZstdImage(): Promise<TestImage> {
  const image = await imageOf([[{ name: 'etc/os-release', data: 'ID=debian\nVERSION_ID=12\n' }]]);
  const manifest = Buffer.from(image.manifest.toString('utf8').replace(MediaTypes.ociLayerGzip, MediaTypes.ociLayerZstd));
  return { ...image, layers: image.layers.map((l) => ({ ...l, mediaType: MediaTypes.ociLayerZstd })), manifest, digest: sha256(manifest) };
}

/** Pushes `sbom` as a CycloneDX referrer of `subject`, the way `oras attach` or cosign would. */
export async function pushSbomReferrer(url: string, repository: string, subject: TestImage, sbom: unknown): Promise<string> {
  const doc = blob(Buffer.from(JSON.stringify(sbom)), 'application/vnd.cyclonedx+json');
  const empty = blob(Buffer.from('{}'), MediaTypes.ociEmpty);
  for (const b of [doc, empty]) {
    const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data });
    if (res.status !== 201) throw new Error(`blob push failed: ${res.status}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: 'application/vnd.cyclonedx+json',
      config: { mediaType: MediaTypes.ociEmpty, digest: empty.digest, size: empty.size },
      layers: [{ mediaType: doc.mediaType, digest: doc.digest, size: doc.size }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length },
    }),
  );
  const digest = sha256(manifest);
  const res = await fetch(`${url}/v2/${repository}/manifests/${digest}`, { method: 'PUT', body: manifest, headers: { 'content-type': MediaTypes.ociManifest } });
  if (res.status !== 201) throw new Error(`referrer push failed: ${res.status} ${await res.text()}`);
  return digest;
}
