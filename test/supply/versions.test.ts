/** Version orderings and OSV range evaluation: pure functions, test vectors from dpkg, rpm and apk-tools. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareApk, compareDebian, compareFor, compareRpm, rpmvercmp } from '../../src/supply/versions.js';
import { cvss3BaseScore, inRange, parseOsv, matchRecord } from '../../src/supply/osv.js';

function check(cmp: (a: string, b: string) => number, vectors: [string, '<' | '=' | '>', string][]): void {
  for (const [a, op, b] of vectors) {
    const want = op === '<' ? -1 : op === '=' ? 0 : 1;
    assert.equal(Math.sign(cmp(a, b)), want, `${a} ${op} ${b}`);
    assert.equal(Math.sign(cmp(b, a)), 0 - want || 0, `${b} vs ${a} (reversed)`);
  }
}

test('Debian version ordering (Debian policy 5.6.12 and dpkg vectors)', () => {
  check(compareDebian, [
    ['1.0', '<', '1.0-1'],
    ['1.0~rc1', '<', '1.0'],
    ['1.0~~', '<', '1.0~~a'],
    ['1.0~~a', '<', '1.0~'],
    ['1.0~', '<', '1.0'],
    ['1.0', '<', '1.0a'],
    ['1:0.9', '>', '2.0'],
    ['0:1.0', '=', '1.0'],
    ['1.00', '=', '1.0'],
    ['1.2.3', '<', '1.2.10'],
    ['1.0-1', '<', '1.0-1+deb12u1'],
    ['2.36-9+deb12u3', '<', '2.36-9+deb12u4'],
    ['3.0.11-1~deb12u2', '<', '3.0.11-1'],
    ['7.88.1-10+deb12u5', '>', '7.88.1-10'],
    ['1.0-1', '<', '1.0-1.1'],
    ['a', '<', 'b'],
    ['1.0+dfsg-1', '>', '1.0-1'],
    ['1:1.2.13.dfsg-1', '>', '1:1.2.11.dfsg-2+deb11u2'],
  ]);
});

test('RPM ordering (rpmvercmp vectors from rpm tests/rpmvercmp.at)', () => {
  check(rpmvercmp, [
    ['1.0', '=', '1.0'],
    ['1.0', '<', '2.0'],
    ['2.0.1', '>', '2.0'],
    ['2.0.1a', '>', '2.0.1'],
    ['5.5p1', '<', '5.5p2'],
    ['5.5p10', '>', '5.5p1'],
    ['10xyz', '<', '10.1xyz'],
    ['xyz10', '<', 'xyz10.1'],
    ['1b.fc17', '<', '1.fc17'],
    ['1.0~rc1', '<', '1.0'],
    ['1.0~rc1', '<', '1.0~rc2'],
    ['1.0^', '>', '1.0'],
    ['1.0^git1', '<', '1.0.1'],
    ['1.0^git1', '>', '1.0'],
    ['1.0~rc1^git1', '>', '1.0~rc1'],
    ['1.0^git1~pre', '<', '1.0^git1'],
    ['2a', '<', '2.0'],
    ['1.0', '=', '1_0'],
    ['6.0.rc1', '>', '6.0'],
    ['1.010', '=', '1.10'],
  ]);
  check(compareRpm, [
    ['1:1.0-1', '>', '2.0-1'],
    ['1.0-1.el9', '<', '1.0-2.el9'],
    ['0:3.0.7-24.el9', '<', '3.0.7-25.el9'],
  ]);
});

test('Alpine ordering (apk-tools test/version.data vectors)', () => {
  check(compareApk, [
    ['1.0', '<', '1.0-r1'],
    ['1.0_alpha', '<', '1.0'],
    ['1.0_alpha1', '<', '1.0_beta1'],
    ['1.0_rc1', '<', '1.0'],
    ['1.0', '<', '1.0_p1'],
    ['1.0a', '>', '1.0'],
    ['1.0_p1', '<', '1.0a'],
    ['1.2.3', '<', '1.2.10'],
    ['3.1.4-r5', '>', '3.1.4-r4'],
    ['1.01', '<', '1.1'],
    ['1.001', '<', '1.01'],
    ['2.34-r0', '>', '2.33-r5'],
    ['3.1.4_git20230101-r0', '>', '3.1.4-r9'],
    ['1.36.1-r15', '<', '1.36.1-r20'],
  ]);
});

test('language ecosystems use semver and PEP 440', () => {
  check(compareFor('npm')!, [
    ['1.2.3', '<', '1.10.0'],
    ['4.17.20', '<', '4.17.21'],
    ['1.0.0-rc.1', '<', '1.0.0'],
  ]);
  check(compareFor('PyPI')!, [
    ['1.0rc1', '<', '1.0'],
    ['2.0.post1', '>', '2.0'],
    ['2.25.1', '<', '2.31.0'],
    ['1.0.dev1', '<', '1.0a1'],
  ]);
  check(compareFor('Go')!, [['0.3.7', '<', '0.3.8']]);
  assert.equal(compareFor('Debian:12'), compareDebian);
  assert.equal(compareFor('Alpine:v3.19'), compareApk);
  assert.equal(compareFor('Unknown'), undefined);
});

test('OSV ranges: introduced/fixed exclusive, last_affected inclusive, limit, several windows', () => {
  const cmp = compareDebian;
  const events = [{ introduced: '0' }, { fixed: '1.2-1' }];
  assert.deepEqual(inRange('1.1-1', events, cmp), { affected: true, fixed: '1.2-1' });
  assert.deepEqual(inRange('1.2-1', events, cmp), { affected: false, fixed: undefined });
  const last = [{ introduced: '1.0' }, { last_affected: '1.5' }];
  assert.equal(inRange('1.5', last, cmp).affected, true);
  assert.equal(inRange('1.6', last, cmp).affected, false);
  assert.equal(inRange('0.9', last, cmp).affected, false);
  const two = [{ introduced: '1.0' }, { fixed: '1.2' }, { introduced: '2.0' }, { fixed: '2.3' }];
  assert.deepEqual(inRange('1.5', two, cmp), { affected: false, fixed: undefined });
  assert.deepEqual(inRange('2.1', two, cmp), { affected: true, fixed: '2.3' });
  assert.equal(inRange('5.0', [{ introduced: '0' }, { limit: '3.0' }], cmp).affected, false);
});

test('OSV records: ecosystem releases, explicit versions, severity from text or CVSS', () => {
  const r = parseOsv({
    id: 'DSA-1',
    modified: '2024-01-01T00:00:00Z',
    affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }] }] }],
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
  });
  assert.equal(r.severity, 'critical');
  assert.deepEqual(matchRecord(r, { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.11-1~deb12u2' }), { fixed: '3.0.13-1~deb12u1' });
  assert.equal(matchRecord(r, { ecosystem: 'Debian:11', name: 'openssl', version: '1.1.1n-0+deb11u5' }), undefined, 'another release');
  assert.equal(matchRecord(r, { ecosystem: 'Debian:12', name: 'openssl', version: '3.0.13-1~deb12u1' }), undefined, 'fixed');
  const listed = parseOsv({ id: 'X', affected: [{ package: { ecosystem: 'npm', name: 'a' }, versions: ['1.0.0'] }], database_specific: { severity: 'MODERATE' } });
  assert.equal(listed.severity, 'medium');
  assert.ok(matchRecord(listed, { ecosystem: 'npm', name: 'a', version: '1.0.0' }));
  assert.equal(matchRecord(listed, { ecosystem: 'npm', name: 'a', version: '1.0.1' }), undefined);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'), 9.8);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N'), 6.1);
  assert.equal(cvss3BaseScore('CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N'), 5.5);
});
