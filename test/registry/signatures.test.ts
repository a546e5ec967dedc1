/**
 * The signature trust policy (issue 15): cosign key-based signatures in
 * both layouts, built here by hand from cosign's specs with keys generated
 * in the test, judged by a real registry under `enforce` and `warn`; and
 * `pier sign`, run as a program, writing what that same registry accepts
 * in the layout cosign writes. skopeo and `pier pull` go through an
 * enforcing policy.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity } from '@sigstore/verify';
import type { AuditEntry } from '../../src/auth/store.js';
import { makeImage, makeIndex, pushImage, sha256, type TestImage } from '../helpers/images.js';
import { loadConfig } from '../../src/registry/config.js';
import { PIER_BIN, tempDir } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { skopeo } from '../helpers/tools.js';
import { startAuthRegistry, type AuthRegistry } from '../auth/helpers.js';
import { runPier } from '../client/harness.js';

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const IN_TOTO = 'application/vnd.in-toto+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const trusted = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const untrusted = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const trustedEd = generateKeyPairSync('ed25519');
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

let reg: AuthRegistry;
let work: string;

before(async () => {
  work = await tempDir('pier-sign-test-');
  const keyFile = path.join(work, 'trusted.pub');
  await writeFile(keyFile, pem(trusted.publicKey));
  reg = await startAuthRegistry(async () => undefined, {
    // No automatic SBOMs: the referrer-form test lists a subject's referrers exactly (the default SBOM is tested in test/supply/).
    scanning: { sbom: false },
    signatures: {
      trust: [
        // A file path and inline PEM: both forms of a key.
        { repository: 'enforce/**', mode: 'enforce', keys: [keyFile, pem(trustedEd.publicKey)] },
        { repository: 'warn/*', mode: 'warn', keys: [pem(trusted.publicKey)] },
      ],
    },
  });
});

after(async () => {
  await reg?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

// ---- cosign's layouts, by hand

function simpleSigning(ref: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': ref }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
}

function signWith(key: KeyObject, data: Buffer): string {
  return cryptoSign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key).toString('base64');
}

async function putBlob(repository: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const res = await fetch(`${reg.url}/v2/${repository}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

async function putManifest(repository: string, reference: string, manifest: object): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const res = await fetch(`${reg.url}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body, headers: { 'content-type': OCI_MANIFEST } });
  assert.equal(res.status, 201, await res.text());
  return sha256(body);
}

/** The tag form: `sha256-<hex>.sig` with one simple-signing layer per (payload, signature). */
async function putSigTag(repository: string, imageDigest: string, signatures: { payload: Buffer; signature: string }[]): Promise<void> {
  const layers = [];
  for (const s of signatures) layers.push({ mediaType: SIMPLE_SIGNING, size: s.payload.length, digest: await putBlob(repository, s.payload), annotations: { [SIGNATURE_ANNOTATION]: s.signature } });
  const config = Buffer.from(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }));
  const configDigest = await putBlob(repository, config);
  await putManifest(repository, `${imageDigest.replace(':', '-')}.sig`, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: configDigest }, layers });
}

/** The referrer form: an artifact manifest with the bundle as its layer and the image as subject. */
async function putBundle(repository: string, image: TestImage, bundle: object): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(bundle));
  const bundleDigest = await putBlob(repository, bytes);
  const empty = Buffer.from('{}');
  const emptyDigest = await putBlob(repository, empty);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
    layers: [{ mediaType: BUNDLE, digest: bundleDigest, size: bytes.length }],
    subject: { mediaType: image.mediaType, digest: image.digest, size: image.manifest.length },
  };
  return putManifest(repository, sha256(Buffer.from(JSON.stringify(manifest))), manifest);
}

function dsseBundle(key: KeyObject, subjectDigest: string): object {
  const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: subjectDigest.slice(7) } }], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {} }));
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${statement.length} `), statement]);
  return {
    mediaType: BUNDLE,
    verificationMaterial: { publicKey: { hint: 'test' }, tlogEntries: [] },
    dsseEnvelope: { payload: statement.toString('base64'), payloadType: IN_TOTO, signatures: [{ sig: signWith(key, pae), keyid: '' }] },
  };
}

function messageBundle(key: KeyObject, manifest: Buffer): object {
  return {
    mediaType: BUNDLE,
    verificationMaterial: { publicKey: { hint: 'test' }, tlogEntries: [] },
    messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(manifest).digest('base64') }, signature: signWith(key, manifest) },
  };
}

async function pushed(repository: string, tag: string): Promise<TestImage> {
  const image = await makeImage();
  await pushImage(reg.url, repository, tag, image);
  return image;
}

async function pull(repository: string, reference: string, method = 'GET'): Promise<{ status: number; body: string; code?: string; message?: string }> {
  const res = await fetch(`${reg.url}/v2/${repository}/manifests/${reference}`, { method, headers: { accept: OCI_MANIFEST } });
  const body = await res.text();
  const error = body.startsWith('{"errors"') ? (JSON.parse(body) as { errors: { code: string; message: string }[] }).errors[0] : undefined;
  return { status: res.status, body, ...(error ? { code: error.code, message: error.message } : {}) };
}

async function audit(want: Partial<AuditEntry>): Promise<AuditEntry | undefined> {
  const until = Date.now() + 2000;
  for (;;) {
    const found = (await reg.store.list({ limit: 1000 })).find((e) => Object.entries(want).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v));
    if (found || Date.now() > until) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('enforce: valid signatures are served', () => {
  test('the tag form (simple signing, ECDSA P-256) signed by a trusted key', async () => {
    const image = await pushed('enforce/tagform', 'v1');
    const payload = simpleSigning(`${reg.host}/enforce/tagform`, image.digest);
    await putSigTag('enforce/tagform', image.digest, [{ payload, signature: signWith(trusted.privateKey, payload) }]);
    const got = await pull('enforce/tagform', 'v1');
    assert.equal(got.status, 200, got.body);
    assert.equal(sha256(Buffer.from(got.body)), image.digest);
    assert.equal((await pull('enforce/tagform', 'v1', 'HEAD')).status, 200);
    // Verdicts are cached by what they depend on: deleting the signature takes effect at the next pull.
    assert.equal((await fetch(`${reg.url}/v2/enforce/tagform/manifests/${image.digest.replace(':', '-')}.sig`, { method: 'DELETE' })).status, 202);
    assert.equal((await pull('enforce/tagform', 'v1')).status, 403);
  });

  test('the tag form with an Ed25519 key, next to a signature by an untrusted key', async () => {
    const image = await pushed('enforce/ed', 'v1');
    const payload = simpleSigning(`${reg.host}/enforce/ed`, image.digest);
    await putSigTag('enforce/ed', image.digest, [
      { payload, signature: signWith(untrusted.privateKey, payload) },
      { payload, signature: signWith(trustedEd.privateKey, payload) },
    ]);
    assert.equal((await pull('enforce/ed', 'v1')).status, 200);
  });

  test('the referrer form: a Sigstore bundle with a DSSE in-toto statement', async () => {
    const image = await pushed('enforce/dsse', 'v1');
    await putBundle('enforce/dsse', image, dsseBundle(trusted.privateKey, image.digest));
    const referrers = (await (await fetch(`${reg.url}/v2/enforce/dsse/referrers/${image.digest}`)).json()) as { manifests: { artifactType: string }[] };
    assert.deepEqual(referrers.manifests.map((m) => m.artifactType), [BUNDLE]);
    assert.equal((await pull('enforce/dsse', 'v1')).status, 200);
  });

  test('the referrer form as cosign writes it after a Rekor upload: the log entry is carried, not checked (offline)', async () => {
    const image = await pushed('enforce/rekor', 'v1');
    const b = (n: number) => Buffer.alloc(n, 7).toString('base64');
    const entry = {
      logIndex: '12345',
      logId: { keyId: b(32) },
      kindVersion: { kind: 'dsse', version: '0.0.1' },
      integratedTime: '1700000000',
      inclusionPromise: { signedEntryTimestamp: b(70) },
      inclusionProof: { logIndex: '12345', rootHash: b(32), treeSize: '20000', hashes: [b(32)], checkpoint: { envelope: 'rekor.sigstore.dev - 1\n20000\nabc=\n' } },
      canonicalizedBody: b(100),
    };
    const bundle = dsseBundle(trusted.privateKey, image.digest) as { verificationMaterial: { tlogEntries: unknown[] } };
    bundle.verificationMaterial.tlogEntries = [entry];
    await putBundle('enforce/rekor', image, bundle);
    assert.equal((await pull('enforce/rekor', 'v1')).status, 200);
  });

  test('the referrer form: a Sigstore bundle with a message signature over the manifest', async () => {
    const image = await pushed('enforce/message', 'v1');
    await putBundle('enforce/message', image, messageBundle(trusted.privateKey, image.manifest));
    assert.equal((await pull('enforce/message', 'v1')).status, 200);
  });
});

describe('enforce: refused, naming why; warn: served and recorded', () => {
  const cases: { name: string; reason: string; words: RegExp; sign(repository: string, image: TestImage): Promise<void> }[] = [
    { name: 'unsigned', reason: 'unsigned', words: /it is not signed \(no sha256-[0-9a-f]{64}\.sig tag, no Sigstore bundle referrer\)/, sign: async () => undefined },
    {
      name: 'signed by an untrusted key',
      reason: 'untrusted',
      words: /no signature verifies with a trusted key/,
      async sign(repository, image) {
        const payload = simpleSigning(`${reg.host}/${repository}`, image.digest);
        await putSigTag(repository, image.digest, [{ payload, signature: signWith(untrusted.privateKey, payload) }]);
      },
    },
    {
      name: 'a bundle signed by an untrusted key',
      reason: 'untrusted',
      words: /the Sigstore bundle does not verify with a trusted key/,
      async sign(repository, image) {
        await putBundle(repository, image, dsseBundle(untrusted.privateKey, image.digest));
      },
    },
    {
      name: 'signed for another digest',
      reason: 'wrong-digest',
      words: /its signature is for another digest \(the signature by trusted key sha256:[0-9a-f]{16} is for sha256:0{64}, not sha256:/,
      async sign(repository, image) {
        const payload = simpleSigning(`${reg.host}/${repository}`, `sha256:${'0'.repeat(64)}`);
        await putSigTag(repository, image.digest, [{ payload, signature: signWith(trusted.privateKey, payload) }]);
      },
    },
    {
      name: 'a bundle for another digest',
      reason: 'wrong-digest',
      words: /its signature is for another digest/,
      async sign(repository, image) {
        await putBundle(repository, image, dsseBundle(trusted.privateKey, `sha256:${'1'.repeat(64)}`));
      },
    },
    {
      name: 'a tampered payload (changed after signing)',
      reason: 'untrusted',
      words: /no signature verifies with a trusted key \(.*the payload was changed after signing\)/,
      async sign(repository, image) {
        const signedFor = `sha256:${'2'.repeat(64)}`;
        const original = simpleSigning(`${reg.host}/${repository}`, signedFor);
        const signature = signWith(trusted.privateKey, original);
        // The signature of one image's payload, moved onto a payload naming this one.
        await putSigTag(repository, image.digest, [{ payload: simpleSigning(`${reg.host}/${repository}`, image.digest), signature }]);
      },
    },
    {
      name: 'a trusted signature over something that is not a cosign payload',
      reason: 'bad-payload',
      words: /its signed payload is not a cosign signature .*critical\.type is not "cosign container image signature"/,
      async sign(repository, image) {
        const payload = Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': image.digest }, type: 'something else' } }));
        await putSigTag(repository, image.digest, [{ payload, signature: signWith(trusted.privateKey, payload) }]);
      },
    },
  ];

  for (const [i, c] of cases.entries()) {
    test(c.name, async () => {
      const enforced = `enforce/case${i}`;
      const warned = `warn/case${i}`;
      const a = await pushed(enforced, 'v1');
      const b = await pushed(warned, 'v1');
      await c.sign(enforced, a);
      await c.sign(warned, b);

      const refused = await pull(enforced, 'v1');
      assert.equal(refused.status, 403, refused.body);
      assert.equal(refused.code, 'DENIED');
      assert.match(refused.message ?? '', new RegExp(`^${enforced}:v1 \\(${a.digest}\\) is refused by the signature policy for "enforce/\\*\\*": `));
      assert.match(refused.message ?? '', c.words);
      assert.equal((JSON.parse(refused.body) as { errors: { detail: unknown }[] }).errors[0]!.detail && (JSON.parse(refused.body) as { errors: { detail: { reason: string } }[] }).errors[0]!.detail.reason, c.reason);
      // HEAD by tag (how containerd resolves) is refused too; by digest it is served (signers need it).
      assert.equal((await pull(enforced, 'v1', 'HEAD')).status, 403);
      assert.equal((await pull(enforced, a.digest)).status, 200);
      assert.ok(await audit({ action: 'policy-deny', outcome: 'denied', repository: enforced, target: `v1 ${a.digest} signature: ${c.reason}` }), 'the refusal is in the audit log');

      const served = await pull(warned, 'v1');
      assert.equal(served.status, 200, served.body);
      assert.equal(sha256(Buffer.from(served.body)), b.digest);
      assert.ok(await audit({ action: 'policy-warn', outcome: 'ok', repository: warned, target: `v1 ${b.digest} signature: ${c.reason}` }), 'the warning is in the audit log');
    });
  }

  test('the refusals and warnings are counted on /metrics', async () => {
    const text = await (await fetch(`${reg.url}/metrics`)).text();
    assert.match(text, /pier_serve_policy_total\{policy="signature",outcome="deny",reason="unsigned"\} [1-9]/);
    assert.match(text, /pier_serve_policy_total\{policy="signature",outcome="warn",reason="wrong-digest"\} [1-9]/);
  });

  test('signatures, bundles and repositories without a rule are never subject', async () => {
    const image = await pushed('enforce/exempt', 'v1');
    const payload = simpleSigning(`${reg.host}/enforce/exempt`, image.digest);
    await putSigTag('enforce/exempt', image.digest, [{ payload, signature: signWith(untrusted.privateKey, payload) }]);
    assert.equal((await pull('enforce/exempt', `${image.digest.replace(':', '-')}.sig`)).status, 200, 'the .sig tag is served');
    // cosign's .att and .sbom tags (and the referrers tag schema) hold image-shaped manifests: served by their tag name.
    for (const suffix of ['.att', '.sbom', '']) {
      const tag = `${image.digest.replace(':', '-')}${suffix}`;
      const res = await fetch(`${reg.url}/v2/enforce/exempt/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': image.mediaType } });
      assert.equal(res.status, 201);
      assert.equal((await pull('enforce/exempt', tag)).status, 200, `${tag} is served`);
    }
    // A referrer pushed under a tag (an attestation, an SBOM) is not an image.
    const withSubject = { schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.cyclonedx+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: await putBlob('enforce/exempt', Buffer.from('{}')), size: 2 }, layers: [{ mediaType: 'application/vnd.cyclonedx+json', digest: await putBlob('enforce/exempt', Buffer.from('{"bomFormat":"CycloneDX"}')), size: 25 }], subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length } };
    await putManifest('enforce/exempt', 'sbom', withSubject);
    assert.equal((await pull('enforce/exempt', 'sbom')).status, 200);
    await pushed('other/app', 'v1');
    assert.equal((await pull('other/app', 'v1')).status, 200);
  });
});

describe('pier sign', () => {
  let keyFile: string;
  before(async () => {
    keyFile = path.join(work, 'signer.key');
    await writeFile(keyFile, trusted.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  });

  test("writes cosign's tag layout, which the enforcing registry accepts (push → sign → pull)", async () => {
    const image = await pushed('enforce/signed', 'v1');
    assert.equal((await pull('enforce/signed', 'v1')).status, 403, 'unsigned: refused');
    // The tag is refused until signed: pier sign resolves it through Pier's tag history.
    const run = await runPier(['sign', `${reg.host}/enforce/signed:v1`, '--key', keyFile, '--format', 'json'], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { digest: string; signatureTag: string };
    assert.equal(out.digest, image.digest);
    const tag = `${image.digest.replace(':', '-')}.sig`;
    assert.equal(out.signatureTag, tag);
    assert.equal((await pull('enforce/signed', 'v1')).status, 200, 'signed: served');

    // The layout, against SIGNATURE_SPEC.md.
    const sig = await pull('enforce/signed', tag);
    const manifest = JSON.parse(sig.body) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[] };
    assert.equal(manifest.mediaType, OCI_MANIFEST);
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(manifest.layers.length, 1);
    const layer = manifest.layers[0]!;
    assert.equal(layer.mediaType, SIMPLE_SIGNING);
    assert.deepEqual(Object.keys(layer.annotations), [SIGNATURE_ANNOTATION]);
    const payload = Buffer.from(await (await fetch(`${reg.url}/v2/enforce/signed/blobs/${layer.digest}`)).arrayBuffer());
    // Byte for byte what cosign marshals: Go field order, no spaces, optional null.
    assert.equal(payload.toString(), `{"critical":{"identity":{"docker-reference":"${reg.host}/enforce/signed"},"image":{"docker-manifest-digest":"${image.digest}"},"type":"cosign container image signature"},"optional":null}`);
    assert.equal(layer.size, payload.length);
    assert.ok(cryptoVerify('sha256', payload, trusted.publicKey, Buffer.from(layer.annotations[SIGNATURE_ANNOTATION]!, 'base64')), 'an ECDSA P-256/SHA-256 signature over the payload');

    // Signing again with another key adds a layer; the same signature is not added twice.
    const other = path.join(work, 'other.key');
    await writeFile(other, untrusted.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    assert.equal((await runPier(['sign', `${reg.host}/enforce/signed@${image.digest}`, '--key', other], { timeoutMs: 60_000 })).code, 0);
    const again = JSON.parse((await pull('enforce/signed', tag)).body) as { layers: unknown[] };
    assert.equal(again.layers.length, 2);
    assert.equal((await pull('enforce/signed', 'v1')).status, 200);
  });

  test('--bundle writes a Sigstore bundle referrer that @sigstore/verify and the registry accept', async () => {
    const image = await pushed('enforce/bundled', 'v1');
    const run = await runPier(['sign', `${reg.host}/enforce/bundled@${image.digest}`, '--key', keyFile, '--bundle', '--format', 'json'], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { signatureTag: string; bundleManifest: string };
    const index = (await (await fetch(`${reg.url}/v2/enforce/bundled/referrers/${image.digest}`)).json()) as { manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] };
    assert.equal(index.manifests.length, 1);
    const listed = index.manifests[0]!;
    assert.equal(listed.digest, out.bundleManifest);
    assert.equal(listed.artifactType, BUNDLE);
    assert.equal(listed.annotations?.['dev.sigstore.bundle.content'], 'dsse-envelope');
    assert.equal(listed.annotations?.['dev.sigstore.bundle.predicateType'], 'https://sigstore.dev/cosign/sign/v1');
    const manifest = JSON.parse((await pull('enforce/bundled', out.bundleManifest)).body) as { config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string; annotations: Record<string, string> }[]; subject: { digest: string } };
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.empty.v1+json');
    assert.equal(manifest.config.digest, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    assert.equal(manifest.subject.digest, image.digest);
    assert.equal(manifest.layers[0]!.mediaType, BUNDLE);
    assert.equal(manifest.layers[0]!.annotations['org.opencontainers.image.title'], `${manifest.layers[0]!.digest.replace(':', '-')}.sigstore.json`);

    // Verified independently of Pier's code: the bundle parses and verifies with @sigstore/verify and the public key.
    const bundleJson = (await (await fetch(`${reg.url}/v2/enforce/bundled/blobs/${manifest.layers[0]!.digest}`)).json()) as Record<string, unknown>;
    const bundle = bundleFromJSON(bundleJson);
    const material = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [], publicKey: () => ({ publicKey: trusted.publicKey, validFor: () => true }) };
    new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
    assert.equal(bundle.content.$case, 'dsseEnvelope');
    const statement = JSON.parse(Buffer.from(bundle.content.$case === 'dsseEnvelope' ? bundle.content.dsseEnvelope.payload : []).toString()) as { _type: string; subject: { digest: { sha256: string } }[]; predicateType: string };
    assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
    assert.equal(statement.predicateType, 'https://sigstore.dev/cosign/sign/v1');
    assert.equal(statement.subject[0]!.digest.sha256, image.digest.slice(7));

    // The bundle alone is enough: without the .sig tag the image is still served.
    assert.equal((await fetch(`${reg.url}/v2/enforce/bundled/manifests/${out.signatureTag}`, { method: 'DELETE' })).status, 202);
    assert.equal((await pull('enforce/bundled', out.signatureTag)).status, 404);
    assert.equal((await pull('enforce/bundled', 'v1')).status, 200);
  });

  test('a missing or unusable key is one line and a non-zero exit', async () => {
    const missing = await runPier(['sign', `${reg.host}/enforce/x:v1`, '--key', path.join(work, 'nope.pem')], { timeoutMs: 30_000 });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --key .*nope\.pem: ENOENT/);
    const pub = path.join(work, 'public.pem');
    await writeFile(pub, pem(trusted.publicKey));
    const wrong = await runPier(['sign', `${reg.host}/enforce/x:v1`, '--key', pub], { timeoutMs: 30_000 });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /not an unencrypted PEM private key/);
    assert.doesNotMatch(wrong.stderr, /\n\s+at /, 'no stack trace');
  });
});

describe('real clients through an enforcing policy', () => {
  test('skopeo and pier pull: an unsigned image is refused with the reason, a signed one pulls', async () => {
    const unsigned = await pushed('enforce/clients', 'unsigned');
    const signed = await pushed('enforce/clients', 'signed');
    const payload = simpleSigning(`${reg.host}/enforce/clients`, signed.digest);
    await putSigTag('enforce/clients', signed.digest, [{ payload, signature: signWith(trusted.privateKey, payload) }]);

    await assert.rejects(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/enforce/clients:unsigned`]), /not signed/);
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/enforce/clients:signed`])).stdout;
    assert.equal(sha256(Buffer.from(raw)), signed.digest);
    await skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/enforce/clients:signed`, `oci:${path.join(work, 'skopeo-out')}:signed`]);

    const refused = await runPier(['pull', `${reg.host}/enforce/clients:unsigned`, `oci:${path.join(work, 'pier-unsigned')}`], { timeoutMs: 60_000 });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /denied: .*it is not signed/);
    const pulled = await runPier(['pull', `${reg.host}/enforce/clients:signed`, `oci:${path.join(work, 'pier-signed')}`], { timeoutMs: 60_000 });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok(unsigned.digest !== signed.digest);
  });

  test('a multi-platform index: refused until its digest is signed, then skopeo copies every platform', async () => {
    const amd = await makeImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeImage({ platform: { os: 'linux', architecture: 'arm64' } });
    const index = makeIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    await pushImage(reg.url, 'enforce/multi', 'v1', index, [amd, arm]);
    const dest = `oci:${path.join(work, 'multi')}:v1`;
    await assert.rejects(skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/enforce/multi:v1`, dest]), /not signed/);
    const keyFile = path.join(work, 'multi.key');
    await writeFile(keyFile, trusted.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const signed = await runPier(['sign', `${reg.host}/enforce/multi:v1`, '--key', keyFile], { timeoutMs: 60_000 });
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(signed.stdout, new RegExp(`signed ${reg.host}/enforce/multi@${index.digest}`));
    // The children are read by digest: the index's signature is what a pull by tag needs.
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/enforce/multi:v1`, dest]);
  });
});

describe('signatures.trust in the configuration', () => {
  test('a bad rule names its key', async () => {
    await assert.rejects(loadConfig({ overrides: { signatures: { trust: [{ repository: 'a/*', mode: 'enforce' }] } } }), /signatures\.trust\[0\]\.keys: mode enforce needs at least one public key/);
    await assert.rejects(loadConfig({ overrides: { signatures: { trust: [{ mode: 'strict', keys: [pem(trusted.publicKey)] }] } } }), /signatures\.trust\[0\]\.mode: must be one of off, warn, enforce/);
    await assert.rejects(loadConfig({ overrides: { signatures: { trust: [{ mode: 'warn', keys: ['-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n'] }] } } }), /signatures\.trust\[0\]\.keys\[0\]: not a usable public key/);
    await assert.rejects(loadConfig({ overrides: { signatures: { trust: [{ mode: 'warn', keys: [pem(trusted.publicKey)], key: 'x' }] } } }), /signatures\.trust\[0\]\.key: unknown key/);
    const config = await loadConfig({ env: { PIER_SIGNATURES_TRUST: JSON.stringify([{ repository: 'prod/**', mode: 'enforce', keys: [pem(trustedEd.publicKey)] }]) } });
    assert.equal(config.signatures.trust[0]?.mode, 'enforce');
    assert.equal(config.signatures.trust[0]?.keys[0]?.key.asymmetricKeyType, 'ed25519');
  });

  test('pier serve refuses an unreadable key file with one line', async () => {
    const dir = await tempDir();
    try {
      const env = { PIER_SIGNATURES_TRUST: JSON.stringify([{ mode: 'enforce', keys: [path.join(dir, 'missing.pub')] }]) };
      const failed = await run(process.execPath, [PIER_BIN, 'serve', '--listen', '127.0.0.1:0', '--data', dir], { env: { ...process.env, ...env }, timeoutMs: 20_000 }).then(
        () => undefined,
        (err: Error) => err.message,
      );
      assert.ok(failed, 'pier serve must not start');
      assert.match(failed, /invalid configuration: signatures\.trust\[0\]\.keys\[0\]: cannot read .*missing\.pub: ENOENT/);
      assert.doesNotMatch(failed, /\n\s+at /, 'no stack trace');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
