/**
 * `pier sign`: signs an image with a PEM private key and writes the
 * signature where cosign writes it (src/oci/cosign.ts), so teams can sign
 * without cosign and any cosign-aware verifier finds it:
 *
 * - always the tag form: the simple-signing payload as a blob, and the
 *   manifest at `sha256-<hex>.sig` with one layer per signature (an
 *   existing `.sig` manifest keeps its layers; the same payload signed
 *   again is not added twice);
 * - with `bundle`, also the referrer form: a Sigstore bundle v0.3 with a
 *   DSSE envelope of the in-toto statement `cosign sign` v3 writes, in an
 *   artifact manifest whose subject is the image.
 *
 * Keys: unencrypted PKCS #8, SEC 1 or PKCS #1 PEM; ECDSA (P-256 with
 * SHA-256, as cosign's spec requires), Ed25519 or RSA. cosign's own
 * encrypted key files are not read.
 */
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { Cosign, cosignTag, dssePae, signStatement, simpleSigningPayload } from '../oci/cosign.js';
import { Digest } from '../oci/digest.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { MediaTypes } from '../oci/media-types.js';
import type { ImageReference, RepositoryName } from '../oci/reference.js';
import { ClientError } from './errors.js';
import { PierApi } from './pier-api.js';
import type { Registry } from './registry.js';

export interface SignOptions {
  /** Also write the OCI 1.1 referrer carrying a Sigstore bundle. */
  bundle?: boolean;
  /** `created` of the bundle manifest (default now). */
  now?: Date;
}

export interface SignResult {
  /** The digest signed. */
  digest: Digest;
  /** `sha256-<hex>.sig` and the digest of the manifest written there. */
  signatureTag: string;
  signatureManifest: Digest;
  /** The bundle referrer's manifest digest (with `bundle`). */
  bundleManifest?: Digest;
}

/** Reads a PEM private key; a ClientError (ERR_CONFIG) saying why not. */
export function signingKey(pem: string, source: string): KeyObject {
  if (pem.includes('ENCRYPTED SIGSTORE PRIVATE KEY') || pem.includes('ENCRYPTED COSIGN PRIVATE KEY')) {
    throw new ClientError('ERR_CONFIG', `${source}: cosign's encrypted key format is not supported; export the key as unencrypted PKCS #8 PEM`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ClientError('ERR_CONFIG', `${source}: not an unencrypted PEM private key (${(err as Error).message.split('\n')[0]})`);
  }
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'ed25519' && type !== 'rsa') throw new ClientError('ERR_CONFIG', `${source}: unsupported key type ${String(type)} (ECDSA, Ed25519 or RSA)`);
  return key;
}

/** A detached signature as the registry verifies it: SHA-256 for ECDSA and RSA, none for Ed25519. */
function signBytes(key: KeyObject, data: Uint8Array): Buffer {
  return cryptoSign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, key);
}

/** Signs `ref` (a tag is resolved to its digest first) and writes the signature(s). */
export async function signImage(registry: Registry, ref: ImageReference, key: KeyObject, options: SignOptions = {}): Promise<SignResult> {
  const repository = ref.repository;
  const target = await resolve(registry, ref);
  const payload = simpleSigningPayload(`${ref.registry}/${repository}`, target.digest);
  const signature = signBytes(key, payload).toString('base64');
  const payloadDigest = await putBlob(registry, repository, payload);
  const layer = { mediaType: Cosign.simpleSigningMediaType, size: payload.length, digest: payloadDigest.toString(), annotations: { [Cosign.signatureAnnotation]: signature } };

  const tag = cosignTag(target.digest);
  const layers: { mediaType: string; size: number; digest: string; annotations?: Record<string, string> }[] = [];
  const existing = await registry.headManifest(repository, tag, ['pull', 'push']);
  if (existing) {
    const m = await registry.getManifest(repository, tag, ['pull', 'push']);
    for (const l of parseManifest(m.bytes, m.mediaType).layers) layers.push(descriptorJson(l));
  }
  if (!layers.some((l) => l.digest === layer.digest && l.annotations?.[Cosign.signatureAnnotation] === signature)) layers.push(layer);
  // The config cosign writes (an empty image of these layers, go-containerregistry's form).
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const configDigest = await putBlob(registry, repository, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, size: config.length, digest: configDigest.toString() },
      layers,
    }),
  );
  const signatureManifest = await registry.putManifest(repository, tag, manifest, MediaTypes.ociManifest);
  const result: SignResult = { digest: target.digest, signatureTag: tag, signatureManifest };
  if (options.bundle) result.bundleManifest = await putBundle(registry, repository, target, key, options.now ?? new Date());
  return result;
}

/** The digest, media type and size of what `ref` names; by tag, falling back to Pier's tag history when a serve policy refuses the tag. */
async function resolve(registry: Registry, ref: ImageReference): Promise<{ digest: Digest; mediaType: string; size: number }> {
  if (ref.digest) {
    const head = await registry.headManifest(ref.repository, ref.digest.toString(), ['pull', 'push']);
    if (!head) throw new ClientError('ERR_NOT_FOUND', `${ref.toString()}: manifest unknown`);
    return { digest: ref.digest, mediaType: head.mediaType, size: head.size };
  }
  const tag = ref.tag ?? 'latest';
  try {
    const m = await registry.getManifest(ref.repository, tag, ['pull', 'push']);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  } catch (err) {
    // An unsigned image under an enforcing trust policy is not served by tag: ask Pier's tag history for the digest.
    if (!(err instanceof ClientError) || err.status !== 403) throw err;
    const history = await new PierApi(registry).history(ref.repository, tag, 1).catch(() => undefined);
    const current = history?.current ? Digest.tryParse(history.current) : undefined;
    if (!current) throw err;
    return resolve(registry, ref.withDigest(current));
  }
}

async function putBundle(registry: Registry, repository: RepositoryName, target: { digest: Digest; mediaType: string; size: number }, key: KeyObject, now: Date): Promise<Digest> {
  const statement = signStatement(target.digest);
  const signature = signBytes(key, dssePae(Cosign.inTotoPayloadType, statement));
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const bundle = Buffer.from(
    JSON.stringify({
      mediaType: Cosign.bundleMediaType,
      verificationMaterial: { publicKey: { hint: createHash('sha256').update(spki).digest('base64') }, tlogEntries: [] },
      dsseEnvelope: { payload: statement.toString('base64'), payloadType: Cosign.inTotoPayloadType, signatures: [{ sig: signature.toString('base64'), keyid: '' }] },
    }),
  );
  const bundleDigest = await putBlob(registry, repository, bundle);
  const empty = Buffer.from('{}');
  const emptyDigest = await putBlob(registry, repository, empty);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: Cosign.bundleMediaType,
      config: { mediaType: MediaTypes.ociEmpty, digest: emptyDigest.toString(), size: empty.length },
      layers: [{ mediaType: Cosign.bundleMediaType, digest: bundleDigest.toString(), size: bundle.length, annotations: { 'org.opencontainers.image.title': `${bundleDigest.algorithm}-${bundleDigest.encoded}.sigstore.json` } }],
      subject: { mediaType: target.mediaType, digest: target.digest.toString(), size: target.size },
      annotations: { [Cosign.bundleContentAnnotation]: 'dsse-envelope', [Cosign.bundlePredicateAnnotation]: Cosign.signPredicateType, 'org.opencontainers.image.created': now.toISOString() },
    }),
  );
  return registry.putManifest(repository, Digest.of(manifest).toString(), manifest, MediaTypes.ociManifest);
}

/** Uploads a small blob in one request unless the repository has it. */
async function putBlob(registry: Registry, repository: RepositoryName, bytes: Buffer): Promise<Digest> {
  const digest = Digest.of(bytes);
  if (await registry.hasBlob(repository, digest, ['pull', 'push'])) return digest;
  const session = await registry.startUpload(repository);
  await registry.sendUpload(repository, session.location, bytes, { digest, length: bytes.length });
  return digest;
}

function descriptorJson(d: Descriptor): { mediaType: string; size: number; digest: string; annotations?: Record<string, string> } {
  return { mediaType: d.mediaType, size: d.size, digest: d.digest.toString(), ...(d.annotations ? { annotations: d.annotations } : {}) };
}
