/**
 * BuildKit keeps an image's SBOM inside its index, not as a referrer: an
 * extra manifest per platform annotated `vnd.docker.reference.type:
 * attestation-manifest` and `vnd.docker.reference.digest: <platform
 * image>`, whose layers are in-toto statements (SPDX here). Built by hand
 * as BuildKit writes it, pushed, and scanned after a restart (scanning off
 * while pushing, so the platform image cannot be scanned before its index
 * arrives): the index and its platform image are inventoried from the
 * attestation, no layer is read (counted), and the findings are exactly
 * those of the attested packages — the layers would give more.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MediaTypes } from '../../src/oci/media-types.js';
import { blob, pushImage, sha256, type TestImage } from '../helpers/images.js';
import { spawnTestRegistry, tempDir } from '../helpers/registry.js';
import { runPier } from '../client/harness.js';
import { debianImage, DEBIAN_V1, OSV_V1, writeOsvDb, type Expected } from './fixtures.js';

let work: string;
before(async () => {
  work = await tempDir('pier-attest-test-');
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** An SPDX 2.3 in-toto statement about `subject`, as BuildKit's SBOM generator (syft) writes it. */
function spdxStatement(subject: TestImage, purls: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://spdx.dev/Document',
      subject: [{ name: 'pkg:docker/example/app@v1?platform=linux%2Famd64', digest: { sha256: subject.digest.slice(7) } }],
      predicate: {
        spdxVersion: 'SPDX-2.3',
        dataLicense: 'CC0-1.0',
        SPDXID: 'SPDXRef-DOCUMENT',
        name: 'sbom',
        packages: purls.map((purl, i) => ({ SPDXID: `SPDXRef-p${i}`, name: purl, downloadLocation: 'NOASSERTION', externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }] })),
      },
    }),
  );
}

/** The attestation manifest BuildKit pushes next to a platform image. */
function attestationManifest(statement: Buffer): TestImage {
  const layer = blob(statement, 'application/vnd.in-toto+json');
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } })), MediaTypes.ociConfig);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } }],
    }),
  );
  return { mediaType: MediaTypes.ociManifest, config, layers: [layer], diffs: [], manifest, digest: sha256(manifest) };
}

test('BuildKit attestations inside an index are the inventory: no layer read, the attested findings exactly', { timeout: 120_000 }, async () => {
  const image = await debianImage();
  const attestation = attestationManifest(spdxStatement(image, ['pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12', 'pkg:npm/lodash@4.17.20']));
  const indexBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        { mediaType: image.mediaType, digest: image.digest, size: image.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
        {
          mediaType: attestation.mediaType,
          digest: attestation.digest,
          size: attestation.manifest.length,
          platform: { os: 'unknown', architecture: 'unknown' },
          annotations: { 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
        },
      ],
    }),
  );
  const index: TestImage = { mediaType: MediaTypes.ociIndex, config: blob(Buffer.from('{}'), MediaTypes.ociEmpty), layers: [], diffs: [], manifest: indexBytes, digest: sha256(indexBytes) };

  const dataDir = path.join(work, 'data');
  const file = path.join(work, 'pier.yaml');
  await writeFile(file, 'scanning:\n  enabled: false\n');
  let reg = await spawnTestRegistry({ dataDir, args: ['--config', file] });
  try {
    const osv = path.join(work, 'osv');
    await writeOsvDb(osv, OSV_V1);
    const imported = await runPier(['vulndb', 'import', osv, '--registry', reg.host]);
    assert.equal(imported.code, 0, imported.stderr);
    await pushImage(reg.url, 'build/app', 'v1', index, [image, attestation]);
  } finally {
    await reg.kill();
  }

  await writeFile(file, 'scanning:\n  enabled: true\n');
  reg = await spawnTestRegistry({ dataDir, args: ['--config', file] });
  try {
    const scanOf = async (ref: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = (await (await fetch(`${reg.url}/pier/v1/repositories/build/app/scans/${ref}`)).json()) as { status: string; source?: string; findings: Expected[] };
        if (s.status !== 'pending') return s;
        if (Date.now() > deadline) throw new Error(`the scan of ${ref} did not finish`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const expected = DEBIAN_V1.filter((f) => f.id === 'DSA-5532-1' || f.id === 'GHSA-35jh-r3h4-6jhm').sort((a, b) => a.id.localeCompare(b.id));
    assert.equal(expected.length, 2);
    const shape = (findings: Expected[]) =>
      findings.map((f) => ({ id: f.id, package: f.package, installed: f.installed, ...(f.fixed ? { fixed: f.fixed } : {}), severity: f.severity, ...(f.source ? { source: f.source } : {}) })).sort((a, b) => a.id.localeCompare(b.id));

    const ofIndex = await scanOf('v1');
    assert.equal(ofIndex.status, 'done', JSON.stringify(ofIndex));
    assert.equal(ofIndex.source, 'attestation');
    assert.deepEqual(shape(ofIndex.findings), expected);
    const ofImage = await scanOf(image.digest);
    assert.equal(ofImage.status, 'done', JSON.stringify(ofImage));
    assert.equal(ofImage.source, 'attestation', 'the platform image is inventoried from its attestation in the index');
    assert.deepEqual(shape(ofImage.findings), expected, 'the attested packages, not the layers (which hold requests and bash too)');
    assert.equal((await scanOf(attestation.digest)).status, 'skipped', 'the attestation manifest itself is not an image');

    const metrics = await (await fetch(`${reg.url}/metrics`)).text();
    assert.equal(/^pier_scanner_layer_reads_total (\d+)/m.exec(metrics)?.[1], '0', 'no layer was read');
  } finally {
    await reg.kill();
  }
});
