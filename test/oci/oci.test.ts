/** Pure OCI primitives: digests, names, references, manifests. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Digest, DigestError } from '../../src/oci/digest.js';
import { ManifestError, parseManifest } from '../../src/oci/manifest.js';
import { MediaTypes } from '../../src/oci/media-types.js';
import { ImageReference, isRepositoryName, isTag } from '../../src/oci/reference.js';

describe('Digest', () => {
  test('parses sha256 and sha512 and refuses everything else', () => {
    const d = Digest.parse(`sha256:${'a'.repeat(64)}`);
    assert.equal(d.algorithm, 'sha256');
    assert.equal(Digest.parse(`sha512:${'b'.repeat(128)}`).algorithm, 'sha512');
    for (const bad of ['sha256:abc', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, 'sha256', '', `sha256:${'a'.repeat(64)}/..`]) {
      assert.throws(() => Digest.parse(bad), DigestError, bad);
    }
    assert.equal(Digest.of('hello').toString(), 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  });
});

describe('names and tags', () => {
  test('repository grammar', () => {
    for (const ok of ['a', 'library/ubuntu', 'a.b/c_d/e__f/g-h', 'a--b', 'x'.repeat(255)]) assert.ok(isRepositoryName(ok), ok);
    for (const bad of ['', 'A', '../x', 'a/', '/a', 'a//b', '-a', 'a_', 'a..b', 'a___b', 'x'.repeat(256), 'a b']) assert.ok(!isRepositoryName(bad), bad);
  });
  test('tag grammar', () => {
    for (const ok of ['latest', 'v1.0', '_x', 'A-b.c', 'a'.repeat(128)]) assert.ok(isTag(ok), ok);
    for (const bad of ['', '.x', '-x', 'a'.repeat(129), 'a/b', 'a:b']) assert.ok(!isTag(bad), bad);
  });
});

describe('ImageReference', () => {
  test("Docker's normalisation", () => {
    assert.equal(ImageReference.parse('ubuntu').toString(), 'docker.io/library/ubuntu:latest');
    assert.equal(ImageReference.parse('user/app:1').toString(), 'docker.io/user/app:1');
    assert.equal(ImageReference.parse('127.0.0.1:5000/team/app').toString(), '127.0.0.1:5000/team/app:latest');
    assert.equal(ImageReference.parse('localhost/app:v2').registry, 'localhost');
    assert.equal(ImageReference.parse('ghcr.io/o/r@sha256:' + 'a'.repeat(64)).manifestReference, 'sha256:' + 'a'.repeat(64));
    assert.equal(ImageReference.parse('ubuntu').apiHost, 'registry-1.docker.io');
    assert.throws(() => ImageReference.parse('Ubuntu'));
  });
});

describe('parseManifest', () => {
  const config = { mediaType: MediaTypes.ociConfig, digest: Digest.of('{}').toString(), size: 2 };
  test('an image manifest, with artifactType falling back to the config media type', () => {
    const m = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [] })), MediaTypes.ociManifest);
    assert.equal(m.kind, 'manifest');
    assert.equal(m.artifactType, MediaTypes.ociConfig);
  });
  test('mediaType may be absent: the Content-Type or the shape decides', () => {
    assert.equal(parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [] }))).mediaType, MediaTypes.ociManifest);
    assert.equal(parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }))).kind, 'index');
  });
  test('refuses what is not a manifest', () => {
    for (const bad of ['nope', '{}', '{"schemaVersion":1}', JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, layers: [] })]) {
      assert.throws(() => parseManifest(Buffer.from(bad)), ManifestError, bad);
    }
    assert.throws(
      () => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config, layers: [] })), MediaTypes.ociManifest),
      /does not match Content-Type/,
    );
  });
});
