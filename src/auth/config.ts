/**
 * The auth module's configuration section (`auth.*` and `policy` in the
 * registry's YAML), each key declared once (src/shared/config-schema.ts):
 * the registry's configuration (src/registry/config.ts) composes them, and
 * {@link AuthConfig} is inferred from the declarations.
 */
import { count, dataPath, flag, list, localPath, section, seconds, text, type Out, type ParseContext } from '../shared/config-schema.js';
import type { Rule } from './policy.js';
import { PolicyConfigError, parsePolicyRules } from './rules-config.js';

/** The admin created at start when the database has no user; set when a password or password file is configured. */
export type InitialAdmin = { name: string; password: string } | { name: string; passwordFile: string } | undefined;

export const authSection = section({
  service: text({ default: 'pier', doc: 'The `service` in Bearer challenges and the `aud` of tokens.' }),
  issuer: text({ default: 'pier', doc: 'The `iss` of tokens (what a distribution using Pier as its token issuer sets as `issuer`).' }),
  realm: text({ doc: "Token endpoint URL in challenges (default: this registry's `/auth/token`, from the request's `Host`)." }),
  keys: dataPath({ default: 'keys', doc: 'Token signing keys folder, relative to `data`; a key and its certificate are generated on first start.' }),
  tokenTtl: seconds({ default: '5m', doc: 'Lifetime of bearer tokens (never beyond the expiry of the CI token that obtained one).' }),
  refreshTtl: seconds({ default: '30d', doc: 'Lifetime of refresh tokens (`access_type=offline`).' }),
  cacheTtl: seconds({ default: '60s', doc: 'How long a verified Basic credential is trusted without hashing again (changes from `pier user`/`token` apply within a second regardless).' }),
  insecureOpen: flag({ default: false, doc: 'With no users, serve everyone everything even on a non-loopback address (`--insecure-open`).' }),
  throttle: section({
    failures: count({
      default: 5,
      doc: 'Failed logins for one account from one address within the window before that account gets 429 from there (`0`: never); other accounts behind the same address are unaffected, and a success clears the count.',
    }),
    window: seconds({ default: '60s', doc: "The throttle's window." }),
  }),
  initialAdmin: section(
    {
      name: text({ default: 'admin', doc: 'Name of the admin created at start when the database has no user and a password below is set (a registry in a container gets its first admin this way).' }),
      password: text({ doc: "That admin's password (at least 8 characters); used only to create it, never to change it later." }),
      passwordFile: localPath({ doc: 'Or a file holding it (a Docker or Kubernetes secret); its first line is the password.' }),
    },
    ({ name, password, passwordFile }, ctx): InitialAdmin => {
      if (password !== undefined && passwordFile !== undefined) ctx.fail('set password or passwordFile, not both');
      if (password !== undefined) return { name, password };
      if (passwordFile !== undefined) return { name, passwordFile };
      return undefined;
    },
  ),
});

export const policyKey = list({
  doc: 'Access rules: a YAML list of `{subjects, repositories, actions}` (JSON in the environment); see Access control.',
  parse: (raw: unknown, ctx: ParseContext): Rule[] => {
    try {
      return parsePolicyRules(raw);
    } catch (err) {
      if (err instanceof PolicyConfigError) ctx.fail(err.message, err.at);
      throw err;
    }
  },
});

/**
 * `service`: the Bearer challenge's `service` and tokens' `aud`; `issuer`:
 * tokens' `iss`; `realm`: the token URL in challenges (undefined: derived
 * from the request); `keys`: the signing keys folder; `tokenTtl`,
 * `refreshTtl`, `cacheTtl`: seconds; `throttle`: failed logins per window
 * before 429; `initialAdmin`: see {@link InitialAdmin}.
 */
export type AuthConfig = Out<typeof authSection>;

/** What building the gate needs to know about the server it guards. */
export interface AuthSetup {
  auth: AuthConfig;
  /** Access rules from the configuration (`pier policy` adds more in the store). */
  policy: Rule[];
  /** `host:port` the registry listens on: decides the safe default. */
  listen: string;
  /** The data folder, named in the refusal message. */
  data: string;
  /** Whether the registry serves HTTPS (the scheme of a derived token realm). */
  https: boolean;
}
