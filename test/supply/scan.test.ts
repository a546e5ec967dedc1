/**
 * Inventory, matching, SBOM referrers, the vulnerability policy and the
 * re-match on import, end to end: a real `pier serve`, fixture images
 * pushed over HTTP, the OSV database imported with `pier vulndb import`,
 * and results read over /pier/v1, with `pier scan`, skopeo and the
 * CycloneDX JSON schema.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { pushImage } from '../helpers/images.js';
import { REPO_ROOT, spawnTestRegistry, tempDir, type SpawnedRegistry } from '../helpers/registry.js';
import { skopeo } from '../helpers/tools.js';
import { runPier } from '../client/harness.js';
import { pushSbomReferrer, mislabeledZstdImage, alpineImage, ALPINE_V1, debianImage, DEBIAN_V1, DEBIAN_V2, OSV_V1, OSV_V2, writeOsvDb, type Expected } from './fixtures.js';

interface Scan {
  status: string;
  digest: string;
  findings: (Expected & { aliases: string[] })[];
  counts: Record<string, number>;
  sbom?: string;
  source?: string;
  database: { generation: number; stale: boolean };
}

async function scanOf(url: string, repo: string, ref: string): Promise<Scan> {
  const res = await fetch(`${url}/pier/v1/repositories/${repo}/scans/${ref}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Scan;
}

async function waitFor(url: string, repo: string, ref: string, done: (s: Scan) => boolean): Promise<Scan> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await scanOf(url, repo, ref);
    if (done(s)) return s;
    if (Date.now() > deadline) throw new Error(`scan of ${repo}:${ref} did not finish: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function shape(findings: Scan['findings']): Expected[] {
  return findings.map((f) => ({ id: f.id, package: f.package, installed: f.installed, ...(f.fixed ? { fixed: f.fixed } : {}), severity: f.severity, ...(f.source ? { source: f.source } : {}) }));
}

const byId = (a: Expected, b: Expected) => a.id.localeCompare(b.id);

/** The registry's log line about the policy for `repository` (log lines arrive from the child's stdout a little after the response). */
async function logLine(reg: SpawnedRegistry, repository: string): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 50; i++) {
    const line = reg.logs.find((l) => l.msg === 'vulnerability policy' && l.repository === repository);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

async function layerReads(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^pier_scanner_layer_reads_total (\d+)/m.exec(text)?.[1] ?? 'NaN');
}

describe('scanning', { timeout: 240_000 }, () => {
  let work: string;
  let pier: SpawnedRegistry | undefined;
  let hooks: Server;
  const received: Record<string, unknown>[] = [];

  before(async () => {
    work = await tempDir('pier-scan-test-');
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    await pier?.kill();
    await new Promise<void>((resolve) => hooks.close(() => resolve()));
    await rm(work, { recursive: true, force: true });
  });

  test('fixture images give exactly the expected findings; SBOM referrer; policy; re-match on import without reading layers', async () => {
    const port = (hooks.address() as { port: number }).port;
    const config = path.join(work, 'pier.yaml');
    await writeFile(
      config,
      [
        'webhooks:',
        '  backoffMax: 1s',
        '  endpoints:',
        '    - name: scans',
        `      url: http://127.0.0.1:${port}/scans`,
        '      events: [scan_complete]',
        'scanning:',
        '  policies:',
        '    - repositories: "prod/**"',
        '      severity: critical',
        '      allow:',
        '        - id: GHSA-35jh-r3h4-6jhm',
        '          expires: 2001-01-01',
        '    - repositories: "lenient/**"',
        '      severity: critical',
        '      allow: [DSA-5532-1]',
        '',
      ].join('\n'),
    );
    pier = await spawnTestRegistry({ dataDir: path.join(work, 'data'), args: ['--config', config] });
    const host = pier.host;

    const v1 = path.join(work, 'osv-v1');
    await writeOsvDb(v1, OSV_V1);
    const imported = await runPier(['vulndb', 'import', v1, '--registry', host]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, new RegExp(`Imported ${OSV_V1.length} records from \\d+ files; database of 2024-01-10T00:00:00.000Z \\(generation 1\\)`));
    assert.match(imported.stderr, /warning: the vulnerability database is from 2024-01-10.*older than 7 days/);

    const debian = await debianImage();
    const alpine = await alpineImage();
    // The same Alpine contents with a zstd-compressed layer (compressed by the zstd command).
    const alpineZstd = await alpineImage('zstd');
    assert.equal(alpineZstd.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    await pushImage(pier.url, 'prod/app', 'v1', debian);
    await pushImage(pier.url, 'prod/alpine', 'v1', alpine);
    await pushImage(pier.url, 'prod/alpine-zstd', 'v1', alpineZstd);
    await pushImage(pier.url, 'lenient/app', 'v1', debian);

    const scan = await waitFor(pier.url, 'prod/app', 'v1', (s) => s.status === 'done');
    assert.equal(scan.source, 'layers');
    assert.deepEqual(shape(scan.findings).sort(byId), [...DEBIAN_V1].sort(byId), 'exactly the expected Debian-image findings');
    assert.deepEqual(scan.counts, { critical: 1, high: 1, medium: 1, low: 1, unknown: 0 });
    const alpineScan = await waitFor(pier.url, 'prod/alpine', 'v1', (s) => s.status === 'done');
    assert.deepEqual(shape(alpineScan.findings), ALPINE_V1);
    await waitFor(pier.url, 'lenient/app', 'v1', (s) => s.status === 'done');
    const zstdScan = await waitFor(pier.url, 'prod/alpine-zstd', 'v1', (s) => s.status !== 'pending');
    assert.equal(zstdScan.status, 'done', JSON.stringify(zstdScan));
    assert.deepEqual(shape(zstdScan.findings), ALPINE_V1, 'a zstd layer is read like a gzip one');
    // Two layers, one, and the zstd one: each read once (lenient/app shares prod/app's layers: the cache answers).
    assert.equal(await layerReads(pier.url), 4);

    // The SBOM: a referrer of the image, readable by digest with skopeo, valid CycloneDX 1.5.
    assert.ok(scan.sbom, 'an SBOM referrer was written');
    const referrers = (await (await fetch(`${pier.url}/v2/prod/app/referrers/${debian.digest}`)).json()) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(referrers.manifests.map((m) => [m.digest, m.artifactType]), [[scan.sbom, 'application/vnd.cyclonedx+json']]);
    const raw = JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/prod/app@${scan.sbom}`])).stdout) as { subject: { digest: string }; layers: { digest: string; mediaType: string }[] };
    assert.equal(raw.subject.digest, debian.digest);
    assert.equal(raw.layers[0]!.mediaType, 'application/vnd.cyclonedx+json');
    const bom = (await (await fetch(`${pier.url}/v2/prod/app/blobs/${raw.layers[0]!.digest}`)).json()) as { specVersion: string; components: { name: string; purl?: string }[] };
    const schemaDir = path.join(REPO_ROOT, 'node_modules/@cyclonedx/cyclonedx-library/res/schema');
    const load = async (file: string, id: string) => ({ ...(JSON.parse(await readFile(path.join(schemaDir, file), 'utf8')) as object), $id: id });
    const ajv = new Ajv.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addFormat('iri-reference', true);
    ajv.addSchema(await load('spdx.SNAPSHOT.schema.json', 'http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json'));
    ajv.addSchema(await load('jsf-0.82.SNAPSHOT.schema.json', 'http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json'));
    const validate = ajv.compile(await load('bom-1.5.SNAPSHOT.schema.json', 'http://cyclonedx.org/schema/bom-1.5.schema.json'));
    assert.ok(validate(bom), JSON.stringify(validate.errors));
    assert.equal(bom.specVersion, '1.5');
    const purls = bom.components.map((c) => c.purl).filter(Boolean).sort();
    assert.ok(purls.includes('pkg:deb/debian/libssl3@3.0.11-1~deb12u2?upstream=openssl&distro=debian-12'), purls.join(' '));
    assert.ok(purls.includes('pkg:npm/%40scope/inner@2.0.0'), purls.join(' '));
    assert.ok(!purls.some((p) => p!.includes('urllib3') || p!.includes('event-stream') || p!.includes('oldlib')), 'whited-out and removed packages are not in the SBOM');
    // skopeo copies the SBOM artifact by digest.
    const out = path.join(work, 'sbom-layout');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/prod/app@${scan.sbom}`, `oci:${out}:sbom`]);
    const copied = JSON.parse(await readFile(path.join(out, 'blobs', 'sha256', raw.layers[0]!.digest.slice(7)), 'utf8')) as { bomFormat: string };
    assert.equal(copied.bomFormat, 'CycloneDX');

    // The policy: critical and above refused by tag, naming the finding (the lodash allowlist entry expired, and it is high anyway).
    const denied = await fetch(`${pier.url}/v2/prod/app/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(denied.status, 403);
    const err = ((await denied.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    assert.equal(err.code, 'DENIED');
    assert.match(err.message, /DSA-5532-1 \(critical, libssl3 3\.0\.11-1~deb12u2, fixed in 3\.0\.13-1~deb12u1\)/);
    assert.equal((await fetch(`${pier.url}/v2/prod/app/manifests/${debian.digest}`)).status, 200, 'by digest is served (signatures, SBOMs, children)');
    assert.equal((await fetch(`${pier.url}/v2/prod/alpine/manifests/v1`)).status, 200, 'high only: below the rule');
    assert.equal((await fetch(`${pier.url}/v2/lenient/app/manifests/v1`)).status, 200, 'the critical finding is allowlisted');
    const blocked = await skopeo(['inspect', '--tls-verify=false', `docker://${host}/prod/app:v1`]).then(
      () => '',
      (e: Error) => e.message,
    );
    assert.match(blocked, /DSA-5532-1/, 'a real client shows the reason');

    // A newer database: every stored image matched again from its stored inventory, no layer read.
    const v2 = path.join(work, 'osv-v2');
    await writeOsvDb(v2, OSV_V2);
    const again = await runPier(['vulndb', 'import', v2, '--registry', host, '--format', 'json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { generation: number }).generation, 2);
    const rescanned = await waitFor(pier.url, 'prod/app', 'v1', (s) => s.database.generation === 2 && s.findings.length !== DEBIAN_V1.length);
    assert.deepEqual(shape(rescanned.findings).sort(byId), [...DEBIAN_V2].sort(byId));
    await waitFor(pier.url, 'lenient/app', 'v1', (s) => s.findings.length === DEBIAN_V2.length);
    assert.equal(await layerReads(pier.url), 4, 'no layer was read again');
    assert.equal((await fetch(`${pier.url}/v2/lenient/app/manifests/v1`)).status, 403, 'the new critical finding is not allowlisted');

    // The webhook: scan_complete events, the re-match naming the new critical finding.
    const deadline = Date.now() + 20_000;
    const rematch = () => received.find((e) => e.repository === 'prod/app' && (e.newCritical as { id: string }[]).some((f) => f.id === 'DSA-9999-1'));
    while (!rematch() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const event = rematch();
    assert.ok(event, JSON.stringify(received));
    assert.equal(event.type, 'scan_complete');
    assert.deepEqual((event.newCritical as { id: string }[]).map((f) => f.id), ['DSA-9999-1']);
    const first = received.find((e) => e.repository === 'prod/app' && e !== event)!;
    assert.deepEqual((first.newCritical as { id: string }[]).map((f) => f.id), ['DSA-5532-1']);

    // pier scan (on demand) and pier inspect.
    const cli = await runPier(['scan', `${host}/prod/alpine:v1`, '--format', 'json']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(shape((JSON.parse(cli.stdout) as Scan).findings), ALPINE_V1);
    const text = await runPier(['scan', `${host}/prod/app:v1`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /Findings: 2 critical, 1 high, 1 medium, 1 low, 0 unknown/);
    assert.match(text.stdout, /critical\s+DSA-9999-1\s+zlib1g \(zlib\)\s+1:1\.2\.13\.dfsg-1\s+1:1\.2\.13\.dfsg-2/);
    const inspected = await runPier(['inspect', `${host}/prod/alpine:v1`]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, /Vulnerabilities: 0 critical, 1 high, 0 medium, 0 low, 0 unknown/);
  });

  test('pending and failed scans: served and recorded by default, refused with pending: deny; queued pushes are scanned after a restart; an SBOM referrer replaces the layers', async () => {
    const dataDir = path.join(work, 'data-pending');
    const config = (enabled: boolean) =>
      [
        'scanning:',
        `  enabled: ${enabled}`,
        '  policies:',
        '    - repositories: "wait/**"',
        '      severity: critical',
        '    - repositories: "strict/**"',
        '      severity: critical',
        '      pending: deny',
        '',
      ].join('\n');
    const file = path.join(work, 'pending.yaml');
    await writeFile(file, config(false));
    let reg = await spawnTestRegistry({ dataDir, args: ['--config', file] });
    try {
      const v1 = path.join(work, 'osv-pending');
      await writeOsvDb(v1, OSV_V1);
      assert.equal((await runPier(['vulndb', 'import', v1, '--registry', reg.host])).code, 0);
      const debian = await debianImage();
      await pushImage(reg.url, 'wait/app', 'v1', debian);
      await pushImage(reg.url, 'strict/app', 'v1', debian);
      // A layer labelled zstd that is gzip: the scanner cannot read it, so the scan fails.
      const zstd = await mislabeledZstdImage();
      await pushImage(reg.url, 'wait/zstd', 'v1', zstd);
      // An image that already has an SBOM referrer (as syft or Trivy would push it): lodash only.
      await pushImage(reg.url, 'sbom/app', 'v1', debian);
      await pushSbomReferrer(reg.url, 'sbom/app', debian, { bomFormat: 'CycloneDX', specVersion: '1.5', components: [{ type: 'library', name: 'lodash', version: '4.17.20', purl: 'pkg:npm/lodash@4.17.20' }] });

      assert.equal((await scanOf(reg.url, 'wait/app', 'v1')).status, 'pending');
      assert.equal((await fetch(`${reg.url}/v2/wait/app/manifests/v1`)).status, 200, 'pending: served by default');
      const refused = await fetch(`${reg.url}/v2/strict/app/manifests/v1`);
      assert.equal(refused.status, 403);
      assert.match(((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message, /strict\/app:v1 is not served while its scan is pending/);
      const logged = await logLine(reg, 'wait/app');
      assert.equal(logged?.note, 'served unchecked: scan pending');
    } finally {
      await reg.kill();
    }

    await writeFile(file, config(true));
    reg = await spawnTestRegistry({ dataDir, args: ['--config', file] });
    try {
      const done = await waitFor(reg.url, 'strict/app', 'v1', (s) => s.status === 'done');
      assert.deepEqual(shape(done.findings).sort(byId), [...DEBIAN_V1].sort(byId), 'pushed while scanning was off, scanned after the restart');
      const refused = await fetch(`${reg.url}/v2/strict/app/manifests/v1`);
      assert.equal(refused.status, 403);
      assert.match(((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message, /1 blocking finding\(s\): DSA-5532-1/);
      const failed = await waitFor(reg.url, 'wait/zstd', 'v1', (s) => s.status !== 'pending');
      assert.equal(failed.status, 'failed');
      assert.match((failed as Scan & { error: string }).error, /^reading layer sha256:[0-9a-f]{64} \(zstd\): not valid zstd data/);
      assert.equal((await fetch(`${reg.url}/v2/wait/zstd/manifests/v1`)).status, 200, 'failed: served by default');
      const logged = await logLine(reg, 'wait/zstd');
      assert.match(String(logged?.note), /served unchecked: scan failed \(reading layer .* \(zstd\): not valid zstd data/);
      const fromSbom = await waitFor(reg.url, 'sbom/app', 'v1', (s) => s.status === 'done');
      assert.equal(fromSbom.source, 'sbom');
      assert.deepEqual(shape(fromSbom.findings), [DEBIAN_V1[1]], 'the referrer SBOM is the inventory: only lodash');
      assert.equal(fromSbom.sbom, undefined, 'no second SBOM is written next to the image\'s own');
      await waitFor(reg.url, 'wait/app', 'v1', (s) => s.status === 'done');
      assert.equal(await layerReads(reg.url), 3, 'the Debian image\'s two layers, once, and the attempt at the mislabelled one; none for the image with an SBOM');
    } finally {
      await reg.kill();
    }
  });
});
