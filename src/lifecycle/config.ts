/**
 * The lifecycle module's configuration sections (`history`, `gc`,
 * `retention`, `tags`, `quotas`, `webhooks`, `lifecycle`), each key declared
 * once (src/shared/config-schema.ts): the registry's configuration
 * (src/registry/config.ts) composes them, and {@link LifecycleConfig} is
 * inferred from the declarations.
 */
import { BYTES_HINT, parseBytes } from '../shared/bytes.js';
import { count, list, section, seconds, type ParseContext, type ShapeOut } from '../shared/config-schema.js';
import { RuleError, parseImmutableTagRules, parseNameList, parseQuotaRules, parseRetentionRules, parseWebhookEndpoints } from './rules.js';

/** A list key read by one of src/lifecycle/rules.ts's parsers; its RuleError names the entry. */
function rules<T>(doc: string, parse: (raw: unknown, ctx: ParseContext) => T[]) {
  return list({
    doc,
    parse: (raw, ctx) => {
      try {
        return parse(raw, ctx);
      } catch (err) {
        if (err instanceof RuleError) ctx.fail(err.message, err.at);
        throw err;
      }
    },
  });
}

export const lifecycleShape = {
  history: section({
    keep: count({ default: 10, doc: 'Versions kept per existing tag (current one included): their manifests and blobs survive GC and can be rolled back to (`pier rollback`).' }),
    maxAge: seconds({ default: 0, doc: 'Also keep every version that was current within this long (`30d`); `0` = by count only.' }),
  }),
  gc: section({
    gracePeriod: seconds({ default: '1h', doc: 'Unreferenced blobs and untagged manifests younger than this survive GC (so a push in progress finishes).' }),
    schedule: seconds({ default: '24h', doc: 'Run online GC this often (`0` = only `pier gc`).' }),
  }),
  retention: section({
    schedule: seconds({ default: '24h', doc: 'Apply `retention.rules` this often (`0` = only `pier retention --apply`).' }),
    rules: rules(
      'List of `{repository, keepLast, keepDays, keep}`: per repository pattern, keep the last N pushed tags, tags pushed or pulled within D days, and tags matching `keep` patterns; delete the rest.',
      (raw) => parseRetentionRules(raw),
    ),
  }),
  tags: section({
    immutable: rules(
      'List of `{repository, tags, except}`: tags matching `tags` (not `except`) cannot be pushed over or deleted (`DENIED`); an admin may delete one through the Pier API.',
      (raw) => parseImmutableTagRules(raw),
    ),
  }),
  quotas: rules(
    'List of `{namespace, limit}`: each namespace (first path segment) matching the pattern may store at most `limit` bytes (`10GiB`); every byte (chunked bodies and mounts included) is reserved before it is stored, so concurrent pushes cannot pass it together.',
    (raw, ctx) => parseQuotaRules(raw, (at, v) => parseBytes(v) ?? ctx.fail(`must be ${BYTES_HINT} (got ${JSON.stringify(v)})`, at)),
  ),
  webhooks: section({
    endpoints: rules(
      'List of `{name, url, events, repository, secret \\| secretEnv}`; events `push`, `tag_move`, `delete`, `rollback` (the default), `scan_complete`. See docs/api.md.',
      (raw, ctx) => parseWebhookEndpoints(raw, ctx.env),
    ),
    maxAttempts: count({ default: 20, atLeast: 1, doc: 'Attempts per event before it is marked failed.' }),
    backoffMax: seconds({ default: '5m', doc: 'Longest wait between attempts (backoff doubles from 1 s).' }),
    timeout: seconds({ default: '10s', doc: 'How long to wait for a receiver.' }),
  }),
  lifecycle: section({
    admins: rules('Principal names allowed GC, retention, usage, webhook logs and immutable-tag overrides (besides admins the auth module marks).', (raw) => parseNameList(raw)),
  }),
};

/**
 * `history`: versions kept per tag (`keep`) and for how long (`maxAge`,
 * seconds); `gc`: `gracePeriod` and `schedule` (seconds, 0 = on demand);
 * `retention`: `schedule` and `rules`; `tags.immutable`; `quotas`;
 * `webhooks`: endpoints and delivery (`maxAttempts`, `backoffMax`,
 * `timeout`); `lifecycle.admins`.
 */
export type LifecycleConfig = ShapeOut<typeof lifecycleShape>;
