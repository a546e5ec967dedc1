/**
 * Serve policies: checks that may refuse to serve an image manifest named
 * by tag (a pull), run by RepositoryService.getManifest after the
 * manifest is found. The vulnerability policy (src/supply/policy.ts) is
 * one; a signature trust policy plugs in the same way. Reads by digest
 * are never checked: that is how signatures, SBOMs and attestations (and
 * an index's children) are read.
 *
 * A policy answers allow or deny with a reason; the first deny wins and
 * becomes a {@link ServePolicyError} (DENIED, 403, the reason in the
 * message). A policy that only records (warn modes, scans still pending)
 * allows and records on its own.
 */
import { PierError } from '../oci/pier-error.js';

export type ServeDecision = { allow: true } | { allow: false; reason: string };

export interface ServePolicy {
  /** `reference`: the tag the client named; `digest`: the manifest it resolves to. */
  check(repository: string, reference: string, digest: string): Promise<ServeDecision>;
}

export class ServePolicyError extends PierError {
  readonly code = 'ERR_SERVE_DENIED';
}

/** Runs each policy in order; the first deny throws. */
export async function enforceServePolicies(policies: readonly ServePolicy[], repository: string, reference: string, digest: string): Promise<void> {
  for (const policy of policies) {
    const decision = await policy.check(repository, reference, digest);
    if (!decision.allow) throw new ServePolicyError(decision.reason);
  }
}
