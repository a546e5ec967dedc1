/**
 * Verifies cosign key-based signatures of a manifest against trusted
 * public keys, offline, from what the registry stores (both layouts of
 * src/oci/cosign.ts; docs/decisions/0100-signature-verification.md):
 *
 * - the tag form: every simple-signing layer of `sha256-<hex>.sig` whose
 *   annotation signature verifies over the payload blob with a trusted key
 *   (node:crypto: ECDSA/RSA with SHA-256, Ed25519), and whose payload names
 *   this digest in `critical.image.docker-manifest-digest`;
 * - the referrer form: every referrer of the digest with a Sigstore bundle
 *   artifact type, verified with `@sigstore/verify` (public-key material,
 *   no transparency log, no timestamps required); a DSSE envelope's
 *   in-toto statement must name this digest as a subject, a message
 *   signature's message digest must be this digest (the manifest bytes are
 *   the message).
 *
 * A signature counts only if both hold. Keyless (certificate) bundles,
 * Rekor and Fulcio are not verified: offline, keys only.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject, createHash } from 'node:crypto';
import { Cosign, cosignTag, parseSimpleSigning, statementSubjects } from '../oci/cosign.js';
import { Digest } from '../oci/digest.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { isTag, parseTag, type RepositoryName } from '../oci/reference.js';
import type { BlobStore } from '../store/blob/blob-store.js';
import type { ManifestRecord, MetaStore } from '../store/meta/meta-store.js';

/** A public key the operator trusts, with a short id for messages (`sha256:` of its SPKI DER, 16 hex). */
export interface TrustedKey {
  key: KeyObject;
  id: string;
}

/** Reads a PEM public key (SPKI, or a certificate's key); throws a plain Error naming what is wrong. */
export function trustedKey(pem: string): TrustedKey {
  const key = createPublicKey(pem);
  if (key.type !== 'public') throw new Error('not a public key');
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'ed25519' && type !== 'rsa') throw new Error(`unsupported key type ${String(type)} (ECDSA, Ed25519 or RSA)`);
  const der = key.export({ type: 'spki', format: 'der' });
  return { key, id: `sha256:${createHash('sha256').update(der).digest('hex').slice(0, 16)}` };
}

/**
 * Why no signature counts, most telling first: `wrong-digest` (a trusted
 * key signed another image), `bad-payload` (a trusted key signed something
 * that is not a cosign payload), `untrusted` (signatures exist, none
 * verifies with a trusted key: another key, or the payload changed after
 * signing), `unsigned` (none at all).
 */
export type SignatureProblem = 'wrong-digest' | 'bad-payload' | 'untrusted' | 'unsigned';

export type SignatureVerdict = { valid: true; form: 'tag' | 'bundle'; keyId: string } | { valid: false; problem: SignatureProblem; message: string };

/** The most of each thing one verification reads: it runs on a pull. */
const LIMITS = { payloadBytes: 1024 * 1024, layers: 32, referrers: 32 };

const RANK: Record<SignatureProblem, number> = { 'wrong-digest': 3, 'bad-payload': 2, untrusted: 1, unsigned: 0 };

interface Finding {
  problem: SignatureProblem;
  message: string;
}

/** Verdicts kept (a cache: its key is everything the verdict depends on, so it is never stale). */
const CACHE_ENTRIES = 4096;

export class SignatureVerifier {
  /**
   * Verdicts by (repository, digest, the `.sig` manifest's digest, the
   * bundle referrers' digests, the keys): a pull reads those two indexed
   * rows and skips the blob reads and signature checks when nothing
   * changed. Signing again, deleting a signature or changing the keys
   * changes the key. Manifests and blobs are immutable by digest.
   */
  private readonly cache = new Map<string, SignatureVerdict>();

  constructor(private readonly stores: { meta: Pick<MetaStore, 'getTaggedManifest' | 'getManifest' | 'listReferrers' | 'linkedBlob'>; blobs: Pick<BlobStore, 'open'> }) {}

  /** Whether `manifest` of `repository` carries a signature valid under `keys`. */
  async verify(repository: RepositoryName, manifest: Pick<ManifestRecord, 'digest' | 'content'>, keys: readonly TrustedKey[]): Promise<SignatureVerdict> {
    const { meta } = this.stores;
    // A sha512 digest makes a tag longer than a tag may be: no tag form then.
    const tag = cosignTag(manifest.digest);
    const sig = isTag(tag) ? await meta.getTaggedManifest(repository, parseTag(tag)) : undefined;
    const referrers = (await meta.listReferrers(repository, manifest.digest))
      .filter((r) => r.artifactType === Cosign.bundleMediaType || r.artifactType === Cosign.bundleMediaTypeLegacy)
      .slice(0, LIMITS.referrers)
      .map((r) => r.digest);
    const cacheKey = [repository, manifest.digest.toString(), sig?.digest.toString() ?? '-', referrers.map(String).join(','), keys.map((k) => k.id).join(',')].join(' ');
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    const verdict = await this.judge(repository, manifest, sig, referrers, keys);
    if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(cacheKey, verdict);
    return verdict;
  }

  private async judge(repository: RepositoryName, manifest: Pick<ManifestRecord, 'digest' | 'content'>, sig: ManifestRecord | undefined, referrers: Digest[], keys: readonly TrustedKey[]): Promise<SignatureVerdict> {
    const findings: Finding[] = [];
    const fromTag = sig ? await this.verifyTagForm(repository, manifest.digest, sig, keys, findings) : undefined;
    if (fromTag) return fromTag;
    const fromBundle = await this.verifyBundles(repository, manifest, referrers, keys, findings);
    if (fromBundle) return fromBundle;
    const worst = findings.reduce<Finding | undefined>((a, f) => (a === undefined || RANK[f.problem] > RANK[a.problem] ? f : a), undefined);
    return worst ? { valid: false, ...worst } : { valid: false, problem: 'unsigned', message: `no ${cosignTag(manifest.digest)} tag, no Sigstore bundle referrer` };
  }

  private async verifyTagForm(repository: RepositoryName, digest: Digest, sig: ManifestRecord, keys: readonly TrustedKey[], findings: Finding[]): Promise<SignatureVerdict | undefined> {
    let layers: Descriptor[];
    try {
      layers = parseManifest(sig.content, sig.mediaType).layers;
    } catch {
      findings.push({ problem: 'untrusted', message: `${cosignTag(digest)} is not an image manifest` });
      return undefined;
    }
    for (const layer of layers.slice(0, LIMITS.layers)) {
      if (layer.mediaType !== Cosign.simpleSigningMediaType) continue;
      const signature = layer.annotations?.[Cosign.signatureAnnotation];
      if (signature === undefined) {
        findings.push({ problem: 'untrusted', message: `a layer of ${cosignTag(digest)} has no ${Cosign.signatureAnnotation} annotation` });
        continue;
      }
      const payload = await this.readBlob(repository, layer.digest, layer.size);
      if (!payload) {
        findings.push({ problem: 'untrusted', message: `the payload ${layer.digest.toString()} of ${cosignTag(digest)} is missing or too large` });
        continue;
      }
      const signer = keys.find((k) => verifySignature(k.key, payload, Buffer.from(signature, 'base64')));
      if (!signer) {
        findings.push({ problem: 'untrusted', message: `the signature in ${cosignTag(digest)} does not verify with a trusted key (signed by another key, or the payload was changed after signing)` });
        continue;
      }
      const claim = parseSimpleSigning(payload);
      if (!claim.ok) {
        findings.push({ problem: 'bad-payload', message: `the payload signed by trusted key ${signer.id} is not a cosign signature payload: ${claim.problem}` });
        continue;
      }
      if (claim.digest !== digest.toString()) {
        findings.push({ problem: 'wrong-digest', message: `the signature by trusted key ${signer.id} is for ${claim.digest.slice(0, 80)}, not ${digest.toString()}` });
        continue;
      }
      return { valid: true, form: 'tag', keyId: signer.id };
    }
    if (findings.length === 0) findings.push({ problem: 'unsigned', message: `${cosignTag(digest)} holds no simple-signing layer` });
    return undefined;
  }

  private async verifyBundles(repository: RepositoryName, manifest: Pick<ManifestRecord, 'digest' | 'content'>, referrers: Digest[], keys: readonly TrustedKey[], findings: Finding[]): Promise<SignatureVerdict | undefined> {
    for (const referrer of referrers) {
      const record = await this.stores.meta.getManifest(repository, referrer);
      if (!record) continue;
      let layers: Descriptor[];
      try {
        layers = parseManifest(record.content, record.mediaType).layers;
      } catch {
        continue;
      }
      const layer = layers.find((l) => l.mediaType === Cosign.bundleMediaType || l.mediaType === Cosign.bundleMediaTypeLegacy);
      const bytes = layer ? await this.readBlob(repository, layer.digest, layer.size) : undefined;
      if (!bytes) {
        findings.push({ problem: 'untrusted', message: `the bundle referrer ${referrer.toString()} has no readable bundle layer` });
        continue;
      }
      const finding = await verifyBundle(bytes, manifest, keys);
      if ('valid' in finding) return finding;
      findings.push(finding);
    }
    return undefined;
  }

  /** The blob's bytes if the repository links it and it is at most the payload limit. */
  private async readBlob(repository: RepositoryName, digest: Digest, size: number): Promise<Buffer | undefined> {
    if (size > LIMITS.payloadBytes) return undefined;
    const linked = await this.stores.meta.linkedBlob(repository, digest);
    if (!linked || linked.size > LIMITS.payloadBytes) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of await this.stores.blobs.open(digest)) {
        total += (chunk as Buffer).length;
        if (total > LIMITS.payloadBytes) return undefined;
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      // Linked but gone from the store: no signature to read there (the pull is judged on the rest).
      if ((err as { code?: string }).code === 'ERR_BLOB_NOT_FOUND') return undefined;
      throw err;
    }
    const bytes = Buffer.concat(chunks);
    return Digest.of(bytes, digest.algorithm).equals(digest) ? bytes : undefined;
  }
}

/** A detached signature over `data`: SHA-256 for ECDSA (DER) and RSA (PKCS #1 v1.5), none for Ed25519. */
export function verifySignature(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key, signature);
  } catch {
    return false;
  }
}

/**
 * One Sigstore bundle against the trusted keys, with `@sigstore/verify`
 * (loaded on the first bundle: a registry without bundle referrers never pays its memory).
 */
async function verifyBundle(bytes: Buffer, manifest: Pick<ManifestRecord, 'digest' | 'content'>, keys: readonly TrustedKey[]): Promise<SignatureVerdict | Finding> {
  const [{ bundleFromJSON }, { Verifier, toSignedEntity }] = await Promise.all([import('@sigstore/bundle'), import('@sigstore/verify')]);
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    bundle = bundleFromJSON(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    return { problem: 'untrusted', message: `a bundle referrer is not a valid Sigstore bundle (${(err as Error).message})` };
  }
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    return { problem: 'untrusted', message: 'a bundle referrer is keyless (certificate): only key-based signatures are verified' };
  }
  // Offline: transparency-log entries and timestamps (cosign uploads to Rekor by default) are not checked,
  // so they are set aside; @sigstore/verify would otherwise look for the log's key in the trust material.
  const entity = { ...toSignedEntity({ ...bundle, verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: undefined } }, manifest.content), tlogEntries: [], timestamps: [] };
  const signer = keys.find((k) => {
    const material = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [], publicKey: () => ({ publicKey: k.key, validFor: () => true }) };
    try {
      new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity);
      return true;
    } catch {
      return false;
    }
  });
  if (!signer) return { problem: 'untrusted', message: 'the Sigstore bundle does not verify with a trusted key (signed by another key, or changed after signing)' };
  const digest = manifest.digest;
  const content = bundle.content;
  if (content.$case === 'messageSignature') {
    const md = content.messageSignature.messageDigest;
    const named = md ? `${digest.algorithm}:${Buffer.from(md.digest).toString('hex')}` : '';
    if (named !== digest.toString()) return { problem: 'wrong-digest', message: `the bundle signed by trusted key ${signer.id} is for ${named || 'no digest'}, not ${digest.toString()}` };
    return { valid: true, form: 'bundle', keyId: signer.id };
  }
  const envelope = content.dsseEnvelope;
  if (envelope.payloadType !== Cosign.inTotoPayloadType) return { problem: 'bad-payload', message: `the DSSE envelope signed by trusted key ${signer.id} has payload type ${envelope.payloadType}, not ${Cosign.inTotoPayloadType}` };
  const subjects = statementSubjects(envelope.payload);
  if (!subjects.ok) return { problem: 'bad-payload', message: `the bundle signed by trusted key ${signer.id}: ${subjects.problem}` };
  if (!subjects.digests.includes(digest.toString())) {
    return { problem: 'wrong-digest', message: `the bundle signed by trusted key ${signer.id} is for ${subjects.digests.join(', ').slice(0, 160) || 'no subject'}, not ${digest.toString()}` };
  }
  return { valid: true, form: 'bundle', keyId: signer.id };
}
