/**
 * Builds the access gate a registry runs with, from its configuration and
 * database, and applies the safe default: with no user, token or rule,
 * Pier serves everyone only on a loopback address; on any other address it
 * refuses to start unless `auth.insecureOpen` (`--insecure-open`) says so.
 */
import { readFile } from 'node:fs/promises';
import { PierError } from '../oci/pier-error.js';
import { isLoopback } from '../shared/loopback.js';
import type { AuthSetup } from './config.js';
import { AccountError, addUser } from './accounts.js';
import { AuthGate } from './gate.js';
import { loadKeySet, type KeySet } from './keys.js';
import { AuthStoreError, type AuthStore } from './store.js';
import type { Counters } from '../store/coordinator/coordinator.js';
import { CountingLoginThrottle } from './throttle.js';
import { TokenService } from './tokens.js';

export class AuthSetupError extends PierError {
  readonly code = 'ERR_AUTH_REQUIRED';
}

type Logger = { warn(obj: object, msg: string): void; error(obj: object, msg: string): void; info(obj: object, msg: string): void };

/**
 * Creates `auth.initialAdmin` when the database has no user (a registry in a
 * container gets its first admin from its configuration, as Harbor's admin
 * password does). Never changes an existing user.
 */
async function createInitialAdmin(config: AuthSetup, store: AuthStore, log: Logger): Promise<void> {
  const initial = config.auth.initialAdmin;
  if (!initial || (await store.counts()).users > 0) return;
  let password: string;
  if ('passwordFile' in initial) {
    try {
      password = (await readFile(initial.passwordFile, 'utf8')).split(/\r?\n/)[0] ?? '';
    } catch (err) {
      throw new AuthSetupError(`auth.initialAdmin.passwordFile: cannot read ${initial.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  } else {
    password = initial.password;
  }
  try {
    await addUser(store.as({ name: 'config' }), initial.name, password, { admin: true });
  } catch (err) {
    if (err instanceof AccountError) throw new AuthSetupError(`auth.initialAdmin: ${err.message}`);
    // Another replica starting at the same time created it first.
    if (err instanceof AuthStoreError && err.code === 'ERR_USER_EXISTS') return;
    throw err;
  }
  log.info({ user: initial.name }, 'created the initial admin from auth.initialAdmin');
}

/**
 * `counters`: where failed logins are counted (the coordinator's, so replicas sharing it share the throttle).
 * `keys`: where the token signing keys come from (default: the `auth.keys` folder; replicas on one
 * database pass the database's, see keys.ts loadStoredKeySet).
 */
export async function createAuthGate(config: AuthSetup, store: AuthStore, counters: Counters, log: Logger, keys: () => Promise<KeySet> = () => loadKeySet(config.auth.keys)): Promise<AuthGate> {
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  const loopback = isLoopback(host);
  await createInitialAdmin(config, store, log);
  const counts = await store.counts();
  const empty = counts.users === 0 && counts.tokens === 0 && counts.rules === 0 && config.policy.length === 0;
  if (empty && !loopback && !config.auth.insecureOpen) {
    throw new AuthSetupError(
      `refusing to serve ${config.listen} with no users: anyone could push and delete. ` +
        `Set a first admin (PIER_AUTH_INITIAL_ADMIN_PASSWORD or auth.initialAdmin.passwordFile), ` +
        `or listen on 127.0.0.1 and add one (echo PASSWORD | pier user add NAME --admin --registry 127.0.0.1:PORT), ` +
        `or pass --insecure-open (PIER_AUTH_INSECURE_OPEN=true) to serve everyone everything`,
    );
  }
  const tokens = new TokenService(await keys(), { issuer: config.auth.issuer, service: config.auth.service, ttl: config.auth.tokenTtl });
  const throttle = new CountingLoginThrottle(counters, config.auth.throttle.failures === 0 ? Infinity : config.auth.throttle.failures, config.auth.throttle.window * 1000);
  const gate = new AuthGate(
    store,
    tokens,
    throttle,
    { service: config.auth.service, realm: config.auth.realm, https: config.https, cacheTtl: config.auth.cacheTtl, rules: config.policy, openWhenEmpty: loopback || config.auth.insecureOpen },
    log,
  );
  await gate.start();
  if (gate.isOpen) {
    log.warn({ listen: config.listen }, loopback ? 'no users configured: serving everyone everything on loopback only (pier user add NAME to require logins)' : 'insecure-open: serving everyone everything');
  }
  return gate;
}
