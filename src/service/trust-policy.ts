/**
 * The signature trust policy (`signatures.trust` in the configuration): per
 * repository pattern, the public keys whose cosign signatures are trusted
 * and a mode. A serve policy (./serve-policy.ts):
 *
 * - `off` (the default, and for repositories no rule matches): nothing is checked;
 * - `warn`: an image without a valid signature is served, and recorded
 *   (log line, metric, audit entry);
 * - `enforce`: it is refused, naming why (no signature, untrusted key,
 *   signed for another digest, not a cosign payload).
 *
 * The first rule whose `repository` matches decides. Pushes are never
 * checked, so push → sign → pull works.
 */
import { readFileSync } from 'node:fs';
import { ANY, Pattern, RuleError } from '../lifecycle/rules.js';
import type { RepositoryName } from '../oci/reference.js';
import { list, section } from '../shared/config-schema.js';
import type { ServePolicy, ServeRequest, ServeVerdict } from './serve-policy.js';
import { trustedKey, type SignatureVerifier, type TrustedKey } from './signatures.js';

export const TRUST_MODES = ['off', 'warn', 'enforce'] as const;
export type TrustMode = (typeof TRUST_MODES)[number];

export interface TrustRule {
  repository: Pattern;
  mode: TrustMode;
  keys: TrustedKey[];
}

const PROBLEM_WORDS = {
  unsigned: 'it is not signed',
  untrusted: 'no signature verifies with a trusted key',
  'wrong-digest': 'its signature is for another digest',
  'bad-payload': 'its signed payload is not a cosign signature',
} as const;

export class TrustPolicy implements ServePolicy {
  constructor(
    private readonly rules: readonly TrustRule[],
    private readonly verifier: SignatureVerifier,
  ) {}

  /** The rule for a repository (the first that matches), if any. */
  ruleFor(repository: RepositoryName): TrustRule | undefined {
    return this.rules.find((r) => r.repository.matches(repository));
  }

  async check({ repository, tag, manifest }: ServeRequest): Promise<ServeVerdict> {
    const rule = this.ruleFor(repository);
    if (!rule || rule.mode === 'off') return { outcome: 'allow' };
    const verdict = await this.verifier.verify(repository, manifest, rule.keys);
    if (verdict.valid) return { outcome: 'allow' };
    const message = `${repository}:${tag} (${manifest.digest.toString()}) is refused by the signature policy for "${rule.repository.source}": ${PROBLEM_WORDS[verdict.problem]} (${verdict.message})`;
    return { outcome: rule.mode === 'enforce' ? 'deny' : 'warn', policy: 'signature', reason: verdict.problem, message };
  }
}

/**
 * Parses `signatures.trust`: a list of `{ repository, mode, keys }`. Each
 * key is PEM text or the path of a PEM file (read now, so a bad key stops
 * the start with a ConfigError naming it). `enforce` and `warn` need at
 * least one key.
 */
export function parseTrustRules(raw: unknown): TrustRule[] {
  let value = raw;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw new RuleError('', 'must be a list of trust rules (YAML, or JSON in the environment variable)');
    }
  }
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new RuleError('', 'must be a list of trust rules');
  return value.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new RuleError(`[${i}]`, 'must be a mapping describing one trust rule');
    const rule = item as Record<string, unknown>;
    for (const k of Object.keys(rule)) if (!['repository', 'mode', 'keys'].includes(k)) throw new RuleError(`[${i}].${k}`, 'unknown key (expected one of repository, mode, keys)');
    const mode = rule.mode ?? 'off';
    if (typeof mode !== 'string' || !(TRUST_MODES as readonly string[]).includes(mode)) throw new RuleError(`[${i}].mode`, `must be one of ${TRUST_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
    const rawKeys = rule.keys === undefined ? [] : Array.isArray(rule.keys) ? (rule.keys as unknown[]) : [rule.keys];
    const keys = rawKeys.map((k, j) => readKey(k, `[${i}].keys[${j}]`));
    if (mode !== 'off' && keys.length === 0) throw new RuleError(`[${i}].keys`, `mode ${mode} needs at least one public key (PEM text or a file path)`);
    return { repository: rule.repository === undefined ? ANY : Pattern.parse(rule.repository, `[${i}].repository`), mode: mode as TrustMode, keys };
  });
}

function readKey(raw: unknown, at: string): TrustedKey {
  if (typeof raw !== 'string' || raw.trim() === '') throw new RuleError(at, 'must be PEM text or the path of a PEM file');
  let pem = raw;
  if (!raw.includes('-----BEGIN')) {
    try {
      pem = readFileSync(raw, 'utf8');
    } catch (err) {
      throw new RuleError(at, `cannot read ${raw}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  try {
    return trustedKey(pem);
  } catch (err) {
    throw new RuleError(at, `not a usable public key: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** The `signatures` configuration section, declared once (src/shared/config-schema.ts); src/registry/config.ts composes it. */
export const signaturesSection = section({
  trust: list({
    doc: 'List of `{repository, mode, keys}`: per repository pattern (the first that matches), the PEM public keys (inline, or file paths) whose cosign signatures are trusted, and `mode` `off` (default), `warn` (serve unsigned images, and record it: log, `pier_serve_policy_total`, audit `policy-warn`) or `enforce` (refuse them by tag with `DENIED` naming why). See Signatures below.',
    parse: (raw, ctx) => {
      try {
        return parseTrustRules(raw);
      } catch (err) {
        if (err instanceof RuleError) ctx.fail(err.message, err.at);
        throw err;
      }
    },
  }),
});
