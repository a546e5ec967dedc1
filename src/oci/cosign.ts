/**
 * The formats of cosign's key-based image signatures, written by `pier
 * sign` (src/client/sign.ts) and read by the registry's trust policy
 * (src/service/signatures.ts). Pure: names, builders and parsers only.
 *
 * Two layouts (docs/decisions/0100-signature-verification.md):
 *
 * - the tag form (cosign's SIGNATURE_SPEC.md): tag `sha256-<hex>.sig` in
 *   the image's repository holds an image manifest whose layers are
 *   simple-signing payloads (`application/vnd.dev.cosign.simplesigning.v1+json`),
 *   each with its base64 signature in the layer annotation
 *   `dev.cosignproject.cosign/signature`. The payload names the image by
 *   `critical.image.docker-manifest-digest`.
 * - the referrer form (cosign's BUNDLE_SPEC.md): an OCI 1.1 artifact
 *   manifest whose `subject` is the image and whose one layer is a Sigstore
 *   bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`) holding a DSSE
 *   envelope of an in-toto statement naming the image's digest as subject
 *   (what `cosign sign` v3 writes, predicate type
 *   `https://sigstore.dev/cosign/sign/v1`), or a message signature over the
 *   manifest bytes (its message digest is the image's digest).
 */
import type { Digest } from './digest.js';

export const Cosign = {
  simpleSigningMediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  signatureAnnotation: 'dev.cosignproject.cosign/signature',
  /** `critical.type` of a cosign image signature payload. */
  signatureType: 'cosign container image signature',
  bundleMediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  /** The v0.3 bundle's earlier media type, still read. */
  bundleMediaTypeLegacy: 'application/vnd.dev.sigstore.bundle+json;version=0.3',
  inTotoPayloadType: 'application/vnd.in-toto+json',
  inTotoStatementType: 'https://in-toto.io/Statement/v1',
  /** The predicate type of a cosign v3 image signature (DSSE in a bundle). */
  signPredicateType: 'https://sigstore.dev/cosign/sign/v1',
  bundleContentAnnotation: 'dev.sigstore.bundle.content',
  bundlePredicateAnnotation: 'dev.sigstore.bundle.predicateType',
} as const;

/** `sha256:abc…` → `sha256-abc….sig` (`.att`, `.sbom` for cosign's other attachments). */
export function cosignTag(digest: Digest, suffix: 'sig' | 'att' | 'sbom' = 'sig'): string {
  return `${digest.algorithm}-${digest.encoded}.${suffix}`;
}

/**
 * Tags that hold supply-chain metadata rather than images: cosign's
 * `.sig`/`.att`/`.sbom` tags and the referrers tag schema's `sha256-<hex>`.
 * Never subject to a serve policy.
 */
export function isAttachmentTag(tag: string): boolean {
  return /^sha(?:256|512)-[0-9a-f]{64,128}(?:\.(?:sig|att|sbom))?$/.test(tag);
}

/**
 * The simple-signing payload cosign signs for `digest`, byte for byte as
 * cosign marshals it (Go struct order, no whitespace, `optional` null).
 */
export function simpleSigningPayload(dockerReference: string, digest: Digest): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest.toString() }, type: Cosign.signatureType },
      optional: null,
    }),
    'utf8',
  );
}

/** What a simple-signing payload names, or why it is not one. */
export type SimpleSigningClaim = { ok: true; digest: string } | { ok: false; problem: string };

/**
 * Reads a simple-signing payload: `critical.type` must be cosign's and
 * `critical.image.docker-manifest-digest` present (the key is matched
 * case-insensitively, as containers/image writes `Docker-manifest-digest`).
 */
export function parseSimpleSigning(payload: Uint8Array): SimpleSigningClaim {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return { ok: false, problem: 'the payload is not JSON' };
  }
  const critical = field(doc, 'critical');
  if (critical === undefined) return { ok: false, problem: 'the payload has no "critical" section' };
  if (field(critical, 'type') !== Cosign.signatureType) return { ok: false, problem: `critical.type is not ${JSON.stringify(Cosign.signatureType)}` };
  const image = field(critical, 'image');
  const digest = image === undefined ? undefined : field(image, 'docker-manifest-digest');
  if (typeof digest !== 'string') return { ok: false, problem: 'critical.image.docker-manifest-digest is missing' };
  return { ok: true, digest };
}

/** The in-toto statement `cosign sign` (v3) puts in its DSSE envelope for `digest`. */
export function signStatement(digest: Digest): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: Cosign.inTotoStatementType,
      subject: [{ digest: { [digest.algorithm]: digest.encoded } }],
      predicateType: Cosign.signPredicateType,
      predicate: {},
    }),
    'utf8',
  );
}

/** The subject digests (`sha256:…`) an in-toto statement names, or why it is not one. */
export function statementSubjects(payload: Uint8Array): { ok: true; digests: string[] } | { ok: false; problem: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return { ok: false, problem: 'the DSSE payload is not JSON' };
  }
  const type = field(doc, '_type');
  if (typeof type !== 'string' || !type.startsWith('https://in-toto.io/Statement/')) return { ok: false, problem: 'the DSSE payload is not an in-toto statement' };
  const subject = field(doc, 'subject');
  if (!Array.isArray(subject)) return { ok: false, problem: 'the in-toto statement has no subject list' };
  const digests: string[] = [];
  for (const s of subject as unknown[]) {
    const d = field(s, 'digest');
    if (d === undefined) continue;
    for (const alg of ['sha256', 'sha512']) {
      const v = field(d, alg);
      if (typeof v === 'string') digests.push(`${alg}:${v.toLowerCase()}`);
    }
  }
  return { ok: true, digests };
}

/** DSSE's pre-authentication encoding: what a DSSE signature signs. */
export function dssePae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), Buffer.from(payload)]);
}

/** `obj[key]` for a JSON object, matching the key exactly or else case-insensitively. */
function field(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  const record = obj as Record<string, unknown>;
  if (Object.hasOwn(record, key)) return record[key];
  const lower = key.toLowerCase();
  const found = Object.keys(record).find((k) => k.toLowerCase() === lower);
  return found === undefined ? undefined : record[found];
}
