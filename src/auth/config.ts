/**
 * The auth module's configuration section (`auth.*` and `policy` in the
 * registry's YAML): its types, defaults and what the config loader
 * (src/registry/config.ts) composes into the registry's configuration.
 */
import type { Rule } from './policy.js';

export interface AuthConfig {
  /** The `service` of the Bearer challenge and the `aud` of tokens. */
  service: string;
  /** The `iss` of tokens. */
  issuer: string;
  /** The token endpoint URL in challenges (default: this registry's /auth/token, from the request's Host). */
  realm: string | undefined;
  /** Folder of token signing keys (see src/auth/keys.ts). */
  keys: string;
  /** Lifetime of bearer tokens, seconds. */
  tokenTtl: number;
  /** Lifetime of refresh tokens (`access_type=offline`), seconds. */
  refreshTtl: number;
  /** Seconds a verified Basic credential is trusted without re-hashing. */
  cacheTtl: number;
  /** Serve everyone everything on a non-loopback address while no user exists. */
  insecureOpen: boolean;
  /** Failed logins from one address within `window` seconds before it gets 429 (0 = never). */
  throttle: { failures: number; window: number };
  /**
   * An admin created at start when the database has no user (a registry
   * in a container gets its first admin this way). Set when a password
   * or password file is configured.
   */
  initialAdmin: { name: string; password: string } | { name: string; passwordFile: string } | undefined;
}

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
