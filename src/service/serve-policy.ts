/**
 * The serve-policy hook: rules asked before the registry serves an image
 * manifest by tag (a pull), which may let it through, let it through with
 * a warning, or refuse it with a reason. The signature trust policy
 * (./trust-policy.ts) is one; a vulnerability policy is another. The
 * repository service runs them in order in `getManifest`; a refusal is a
 * {@link ServePolicyError}, which src/registry/http-errors.ts answers as
 * `DENIED` (403) with the reason in the message.
 *
 * What is never subject (see {@link isServedImage}): reads by digest (a
 * pull resolves a tag first, so the tag is the gate; signers and
 * verifiers need the digest), cosign's `.sig`/`.att`/`.sbom` tags and the
 * referrers tag schema, and manifests that are not images: artifacts with
 * a subject (signatures, attestations, SBOMs) or an artifactType that is
 * not an image config.
 */
import { isAttachmentTag } from '../oci/cosign.js';
import { MediaTypes } from '../oci/media-types.js';
import { PierError } from '../oci/pier-error.js';
import type { RepositoryName, Tag } from '../oci/reference.js';
import type { ManifestRecord } from '../store/meta/meta-store.js';

export interface ServeRequest {
  repository: RepositoryName;
  tag: Tag;
  manifest: ManifestRecord;
}

/**
 * `allow`: serve. `warn`: serve, and record `reason` (log, metric, audit).
 * `deny`: refuse with `message`. `policy` names the rule set
 * (`signature`, `vulnerability`); `reason` is a short stable word for
 * metrics and `detail`.
 */
export type ServeVerdict = { outcome: 'allow' } | { outcome: 'warn' | 'deny'; policy: string; reason: string; message: string };

export interface ServePolicy {
  /** Decides whether the manifest `request` names may be served. Throws only on a fault (store errors). */
  check(request: ServeRequest): Promise<ServeVerdict>;
}

/** A serve policy refused a pull: `DENIED` (403) on the wire, with `detail: { policy, reason }`. */
export class ServePolicyError extends PierError {
  readonly code = 'ERR_SERVE_DENIED';
  constructor(
    readonly policy: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServePolicyError';
  }
}

const IMAGE_CONFIGS: ReadonlySet<string> = new Set([MediaTypes.ociConfig, MediaTypes.dockerConfig]);

/** Whether a manifest read by `tag` is an image a serve policy judges (see the module comment). */
export function isServedImage(tag: string, manifest: Pick<ManifestRecord, 'subject' | 'artifactType'>): boolean {
  if (isAttachmentTag(tag)) return false;
  if (manifest.subject !== undefined) return false;
  // An index has no artifactType unless it declares one; an image's is its config's media type.
  return manifest.artifactType === undefined || IMAGE_CONFIGS.has(manifest.artifactType);
}
