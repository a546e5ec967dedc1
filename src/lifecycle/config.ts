/**
 * The lifecycle module's configuration sections (`history`, `gc`,
 * `retention`, `tags`, `quotas`, `webhooks`, `lifecycle`): the registry's
 * configuration (src/registry/config.ts) composes them.
 */
import type { ImmutableTagRule, QuotaRule, RetentionRule, WebhookEndpoint } from './rules.js';

export interface LifecycleConfig {
  /** Tag history: versions kept per tag (their manifests and blobs survive GC). */
  history: {
    /** The last `keep` distinct versions of every existing tag, the current one included. */
    keep: number;
    /** Also every version that was current within this many seconds (0 = count only). */
    maxAge: number;
  };
  gc: {
    /** Seconds an unreferenced blob link or untagged manifest survives (so a push in progress can finish). */
    gracePeriod: number;
    /** Run GC every this many seconds (0 = only on demand: `pier gc`). */
    schedule: number;
  };
  retention: {
    /** Apply the retention rules every this many seconds (0 = only on demand: `pier retention`). */
    schedule: number;
    rules: RetentionRule[];
  };
  tags: { immutable: ImmutableTagRule[] };
  quotas: QuotaRule[];
  webhooks: {
    endpoints: WebhookEndpoint[];
    /** Attempts per event before it is marked failed and the endpoint's queue moves on. */
    maxAttempts: number;
    /** Longest wait between attempts, in seconds (backoff doubles from 1 s up to this). */
    backoffMax: number;
    /** Seconds to wait for a receiver's response. */
    timeout: number;
  };
  lifecycle: {
    /** Principal names with admin rights on the /pier/v1 API (besides principals the auth module marks admin). */
    admins: string[];
  };
}
