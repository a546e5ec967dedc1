/**
 * Helpers for the lifecycle tests: a gate that names the principal after
 * the basic-auth user (so history shows real actors; `admin` is an admin),
 * and fetch with those credentials.
 */
import { OciError } from '../../src/oci/errors.js';
import type { AccessGate, Principal } from '../../src/registry/access.js';

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
};

export function basic(user: string): string {
  return `Basic ${Buffer.from(`${user}:${PASSWORD}`).toString('base64')}`;
}

/** fetch as `user` (with the test gate). */
export function as(user: string) {
  return (url: string, init: RequestInit = {}) => fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: basic(user) } });
}

/** An Io for running `pier` commands in-process, capturing output; credentials for `user` on `host`. */
export async function cliIo(dir: string, host: string, user: string) {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const { PassThrough } = await import('node:stream');
  const config = path.join(dir, `docker-${user}`);
  await mkdir(config, { recursive: true });
  await writeFile(path.join(config, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${PASSWORD}`).toString('base64') } } }));
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    io: { stdout, stderr, stdin: new PassThrough(), env: { DOCKER_CONFIG: config, HOME: dir, PIER_CACHE_DIR: path.join(dir, 'cache'), XDG_CONFIG_HOME: path.join(dir, 'xdg') } },
    output: () => out,
    errors: () => err,
  };
}
