/**
 * Helpers for the lifecycle tests: a gate that names the principal after
 * the basic-auth user (so history shows real actors; `admin` is an admin),
 * and fetch with those credentials.
 */
import { OciError } from '../../src/oci/errors.js';
import type { AccessGate, Principal } from '../../src/registry/access.js';
import { ALL_NAMES } from '../../src/shared/name-patterns.js';

export const PASSWORD = 'secret';

/** Any user with password `secret`; refuses anonymous requests with a Basic challenge. */
export const userGate: AccessGate = {
  async require(request) {
    const header = request.headers.authorization;
    const m = typeof header === 'string' ? /^Basic (.+)$/i.exec(header) : null;
    if (!m) throw new OciError('UNAUTHORIZED', 'authentication required', { headers: { 'www-authenticate': 'Basic realm="pier-test"' } });
    const [user, pass] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
    if (!user || pass !== PASSWORD) throw new OciError('UNAUTHORIZED', 'bad credentials', { headers: { 'www-authenticate': 'Basic realm="pier-test"' } });
    const principal: Principal & { admin?: boolean } = { name: user, ...(user === 'admin' ? { admin: true } : {}) };
    return principal;
  },
  async canPull() {
    return true;
  },
  async canMountFrom() {
    return true;
  },
  async pullable() {
    return ALL_NAMES;
  },
  async rights() {
    return ['pull', 'push', 'delete'];
  },
};

export function basic(user: string): string {
  return `Basic ${Buffer.from(`${user}:${PASSWORD}`).toString('base64')}`;
}

/** fetch as `user` (with the test gate). */
export function as(user: string) {
  return (url: string, init: RequestInit = {}) => fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: basic(user) } });
}

/**
 * Runs the built `pier` as a child process (as CI does), with credentials
 * for `user` on `host` in a private docker config; `run` resolves to the
 * exit code, `output`/`errors` give what the last run printed.
 */
export async function cliIo(dir: string, host: string, user: string) {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const { runPier } = await import('../client/harness.js');
  const config = path.join(dir, `docker-${user}`);
  await mkdir(config, { recursive: true });
  await writeFile(path.join(config, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${PASSWORD}`).toString('base64') } } }));
  const env = { DOCKER_CONFIG: config, HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache'), XDG_CONFIG_HOME: path.join(dir, 'xdg') };
  let out = '';
  let err = '';
  return {
    async run(args: string[]): Promise<number | null> {
      const r = await runPier(args, { env, timeoutMs: 60_000 });
      out = r.stdout;
      err = r.stderr;
      return r.code;
    },
    output: () => out,
    errors: () => err,
  };
}
