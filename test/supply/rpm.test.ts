/**
 * RPM: a real SQLite rpmdb, made in the test the way an image build makes
 * it — packages built with `rpmbuild` (a source package `openssl` whose
 * binary is `openssl-libs`, with an epoch; `zlib`; `bash`) and recorded
 * with `rpm --root … -i --justdb` — in a Rocky Linux 9 image, scanned by a
 * real `pier serve` against an OSV fixture in Rocky Linux's form.
 * Expected findings are exact: a package fixed in a later release
 * reported, one at its fixed version not, an epoch that outranks a fixed
 * version without one not, another distribution's advisory not.
 *
 * The same packages in a Berkeley DB `Packages` (RHEL/CentOS 7–8): Debian's
 * rpm cannot write that backend, so the test builds it with `db5.3_load`
 * from a dump whose records are what rpm stores — key a 4-byte header
 * number (host order), value the header blob, here taken from the SQLite
 * rpmdb; record 0 holds the next header number, as rpm's does. A 512-byte
 * page size puts every header in overflow pages, as real (tens of KiB)
 * headers are. The scan must give exactly the SQLite case's findings.
 * Not tested: ndb (`Packages.db`): nothing here can write one (Debian's rpm
 * is built without the ndb backend).
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseRpmHeader, readRpmDatabase, readRpmSqlite } from '../../src/supply/rpmdb.js';
import { pushImage } from '../helpers/images.js';
import { spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { runPier } from '../client/harness.js';
import { imageOf, writeOsvDb, type Expected } from './fixtures.js';

let work: string;
let reg: SpawnedRegistry | undefined;
before(async () => {
  work = await tempDir('pier-rpm-test-');
});
after(async () => {
  await reg?.kill();
  await rm(work, { recursive: true, force: true });
});

/** A spec with no files: what matters is the header rpm records. */
function spec(o: { name: string; version: string; release: string; epoch?: number; sub?: string }): string {
  return [
    `Name: ${o.name}`,
    `Version: ${o.version}`,
    `Release: ${o.release}`,
    ...(o.epoch !== undefined ? [`Epoch: ${o.epoch}`] : []),
    'Summary: fixture',
    'License: MIT',
    'BuildArch: noarch',
    '%description',
    'fixture',
    ...(o.sub ? [`%package ${o.sub}`, 'Summary: fixture', `%description ${o.sub}`, 'fixture', `%files ${o.sub}`] : ['%files']),
    '',
  ].join('\n');
}

let rpmdbBuilt: Promise<Buffer> | undefined;
/** The rpmdb.sqlite of the fixture packages, built once. */
function rpmdbSqlite(): Promise<Buffer> {
  rpmdbBuilt ??= buildRpmdb();
  return rpmdbBuilt;
}

/** Builds the packages and installs them (--justdb) into a fresh root; returns the rpmdb.sqlite bytes. */
async function buildRpmdb(): Promise<Buffer> {
  const top = path.join(work, 'rpmbuild');
  const root = path.join(work, 'root');
  await mkdir(root, { recursive: true });
  const specs = [
    spec({ name: 'openssl', version: '3.0.7', release: '24.el9', epoch: 1, sub: 'libs' }),
    spec({ name: 'zlib', version: '1.2.11', release: '40.el9' }),
    spec({ name: 'bash', version: '5.1.8', release: '6.el9' }),
  ];
  const rpms: string[] = [];
  for (const [i, text] of specs.entries()) {
    const file = path.join(work, `p${i}.spec`);
    await writeFile(file, text);
    const out = await run('rpmbuild', ['--quiet', '--define', `_topdir ${top}`, '-bb', file]);
    assert.equal(out.stderr.includes('error'), false, out.stderr);
  }
  for (const name of ['openssl-libs-3.0.7-24.el9.noarch.rpm', 'zlib-1.2.11-40.el9.noarch.rpm', 'bash-5.1.8-6.el9.noarch.rpm']) rpms.push(path.join(top, 'RPMS', 'noarch', name));
  await run('rpm', ['--root', root, '--dbpath', '/var/lib/rpm', '-i', '--justdb', '--nodeps', '--noscripts', ...rpms]);
  return readFile(path.join(root, 'var', 'lib', 'rpm', 'rpmdb.sqlite'));
}

const range = (ecosystem: string, name: string, fixed: string) => ({ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] });
const CRITICAL = [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }];

const OSV_RPM: Record<string, unknown>[] = [
  // Fixed in a later release of the same epoch: reported.
  { id: 'RLSA-2024:0101', modified: '2024-02-01T00:00:00Z', affected: [range('Rocky Linux:9', 'openssl-libs', '1:3.0.7-25.el9')], severity: CRITICAL },
  // A fixed version without an epoch: the installed epoch 1 outranks it, so not affected.
  { id: 'RLSA-2023:0900', modified: '2023-09-01T00:00:00Z', affected: [range('Rocky Linux:9', 'openssl-libs', '3.0.8-1.el9')], severity: CRITICAL },
  // Fixed by a longer release (40.el9 < 40.el9_2 by rpmvercmp): reported.
  { id: 'RLSA-2024:0102', modified: '2024-02-01T00:00:00Z', affected: [range('Rocky Linux:9', 'zlib', '1.2.11-40.el9_2')], database_specific: { severity: 'High' } },
  // At the fixed version: not reported.
  { id: 'RLSA-2024:0103', modified: '2024-02-01T00:00:00Z', affected: [range('Rocky Linux:9', 'bash', '5.1.8-6.el9')], database_specific: { severity: 'Moderate' } },
  // Another distribution's advisory (and another release of this one): not this image.
  { id: 'ALSA-2024:0104', modified: '2024-02-01T00:00:00Z', affected: [range('AlmaLinux:9', 'bash', '5.1.8-9.el9')], database_specific: { severity: 'Moderate' } },
  { id: 'RLSA-2022:0105', modified: '2022-02-01T00:00:00Z', affected: [range('Rocky Linux:8', 'zlib', '1.2.11-99.el8')], database_specific: { severity: 'Moderate' } },
];

const PACKAGES = [
  { type: 'rpm', name: 'bash', version: '5.1.8-6.el9', source: 'bash', sourceVersion: '5.1.8-6.el9' },
  { type: 'rpm', name: 'openssl-libs', version: '1:3.0.7-24.el9', source: 'openssl', sourceVersion: '1:3.0.7-24.el9' },
  { type: 'rpm', name: 'zlib', version: '1.2.11-40.el9', source: 'zlib', sourceVersion: '1.2.11-40.el9' },
];

const EXPECTED: Expected[] = [
  { id: 'RLSA-2024:0101', package: 'openssl-libs', installed: '1:3.0.7-24.el9', fixed: '1:3.0.7-25.el9', severity: 'critical' },
  { id: 'RLSA-2024:0102', package: 'zlib', installed: '1.2.11-40.el9', fixed: '1.2.11-40.el9_2', severity: 'high' },
];

const ROCKY = { name: 'etc/os-release', data: 'NAME="Rocky Linux"\nVERSION_ID="9.3"\nID="rocky"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n' };

interface Scan {
  status: string;
  os: { id: string; versionId: string };
  packages: number;
  inventoryErrors: string[];
  findings: Expected[];
}

/** One registry for the file, with the OSV fixture imported. */
async function registry(): Promise<SpawnedRegistry> {
  if (reg) return reg;
  reg = await spawnTestRegistry({ dataDir: path.join(work, 'data') });
  const osv = path.join(work, 'osv');
  await writeOsvDb(osv, OSV_RPM);
  const imported = await runPier(['vulndb', 'import', osv, '--registry', reg.host]);
  assert.equal(imported.code, 0, imported.stderr);
  return reg;
}

/** Pushes an image and scans it with `pier scan --format json`. */
async function scanOf(repository: string, layers: { name: string; data: string | Buffer }[][]): Promise<Scan> {
  const r = await registry();
  await pushImage(r.url, repository, 'v1', await imageOf(layers));
  const cli = await runPier(['scan', `${r.host}/${repository}:v1`, '--format', 'json']);
  assert.equal(cli.code, 0, cli.stderr);
  const scan = JSON.parse(cli.stdout) as Scan;
  assert.equal(scan.status, 'done', cli.stdout);
  return scan;
}

function findingsOf(scan: Scan): Expected[] {
  return scan.findings.map((f) => ({ id: f.id, package: f.package, installed: f.installed, ...(f.fixed ? { fixed: f.fixed } : {}), severity: f.severity, ...(f.source ? { source: f.source } : {}) })).sort((a, b) => a.id.localeCompare(b.id));
}

test('the SQLite rpmdb: headers parsed, packages matched against Rocky Linux advisories exactly', { timeout: 180_000 }, async () => {
  const rpmdb = await rpmdbSqlite();
  assert.deepEqual(
    readRpmSqlite(rpmdb).sort((a, b) => a.name.localeCompare(b.name)),
    PACKAGES,
  );
  assert.throws(() => parseRpmHeader(Buffer.from([0, 0, 0, 1, 0, 0, 0, 4])), /truncated/);

  const scan = await scanOf('rocky/app', [[ROCKY, { name: 'var/lib/rpm/rpmdb.sqlite', data: rpmdb }]]);
  assert.deepEqual(scan.os, { id: 'rocky', versionId: '9.3', prettyName: 'Rocky Linux 9.3 (Blue Onyx)' });
  assert.equal(scan.packages, 3);
  assert.deepEqual(scan.inventoryErrors, []);
  assert.deepEqual(findingsOf(scan), EXPECTED);
});

/** A Berkeley DB hash `Packages` as rpm keeps it, of the SQLite rpmdb's header blobs, made by db5.3_load. */
async function berkeleyPackages(): Promise<Buffer> {
  const sqliteFile = path.join(work, 'bdb-source.sqlite');
  await writeFile(sqliteFile, await rpmdbSqlite());
  const db = new Database(sqliteFile);
  let rows: { hnum: number; blob: Buffer }[];
  try {
    rows = db.prepare('SELECT hnum, blob FROM Packages ORDER BY hnum').all() as { hnum: number; blob: Buffer }[];
  } finally {
    db.close();
  }
  assert.equal(rows.length, 3);
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    if (os.endianness() === 'LE') b.writeUInt32LE(n);
    else b.writeUInt32BE(n);
    return b.toString('hex');
  };
  const records = [` ${u32(0)}\n ${u32(Math.max(...rows.map((r) => r.hnum)) + 1)}`, ...rows.map((r) => ` ${u32(r.hnum)}\n ${Buffer.from(r.blob).toString('hex')}`)];
  const dump = path.join(work, 'Packages.dump');
  await writeFile(dump, ['VERSION=3', 'format=bytevalue', 'type=hash', 'HEADER=END', ...records, 'DATA=END', ''].join('\n'));
  const file = path.join(work, 'Packages');
  await run('db5.3_load', ['-c', 'db_pagesize=512', '-f', dump, file]);
  return readFile(file);
}

test('a Berkeley DB rpmdb gives the same packages and findings as the SQLite one; a corrupt one is an inventory error', { timeout: 180_000 }, async () => {
  const packages = await berkeleyPackages();
  // rpm's own reader of the file agrees it is a Berkeley DB hash database.
  const header = await run('db5.3_dump', ['-p', path.join(work, 'Packages')]);
  assert.match(header.stdout, /type=hash/);
  assert.deepEqual(
    (await readRpmDatabase('bdb', packages)).sort((a, b) => a.name.localeCompare(b.name)),
    PACKAGES,
  );
  await assert.rejects(readRpmDatabase('bdb', Buffer.from('not a database at all, not even close')), /not a readable Berkeley DB rpm database/);

  const scan = await scanOf('centos/app', [[ROCKY, { name: 'var/lib/rpm/Packages', data: packages }]]);
  assert.equal(scan.packages, 3);
  assert.deepEqual(scan.inventoryErrors, []);
  assert.deepEqual(findingsOf(scan), EXPECTED);

  // Removed by a later layer's whiteout: no RPM packages, no findings.
  const removed = await scanOf('centos/removed', [[ROCKY, { name: 'var/lib/rpm/Packages', data: packages }], [{ name: 'var/lib/rpm/.wh.Packages', data: '' }]]);
  assert.equal(removed.packages, 0);
  assert.deepEqual(removed.findings, []);

  // Damaged files: recorded per path, the scan still done, the rest of the image read.
  const corrupt = await scanOf('suse/corrupt', [
    [ROCKY, { name: 'var/lib/rpm/Packages', data: packages.subarray(0, 100) }, { name: 'usr/lib/sysimage/rpm/Packages.db', data: 'garbage' }, { name: 'usr/lib/node_modules/left-pad/package.json', data: '{"name":"left-pad","version":"1.3.0"}' }],
  ]);
  assert.equal(corrupt.packages, 1);
  assert.equal(corrupt.inventoryErrors.length, 2, corrupt.inventoryErrors.join('\n'));
  assert.match(corrupt.inventoryErrors[0]!, /^usr\/lib\/sysimage\/rpm\/Packages\.db: not a readable ndb rpm database: /);
  assert.match(corrupt.inventoryErrors[1]!, /^var\/lib\/rpm\/Packages: not a readable Berkeley DB rpm database: /);
});
