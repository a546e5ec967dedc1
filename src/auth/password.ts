/**
 * Password hashing. Pier's own hashes are scrypt
 * (`$scrypt$N=32768,r=8,p=1$SALT$HASH`, ~50 ms each, on libuv's thread
 * pool); bcrypt hashes imported from an Apache htpasswd file (`$2y$`,
 * `$2a$`, `$2b$`) verify as they are until the user's next `pier user passwd`.
 * Verification is constant-time in the compared bytes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PARAMS = { N: 32768, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { ...options, maxmem: 128 * options.N! * options.r! * 2 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, PARAMS);
  return `$scrypt$N=${PARAMS.N},r=${PARAMS.r},p=${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether `hash` is a format {@link verifyPassword} understands. */
export function isSupportedHash(hash: string): boolean {
  return /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash) || /^\$scrypt\$N=\d+,r=\d+,p=\d+\$[^$]+\$[^$]+$/.test(hash);
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  // bcryptjs is loaded only for imported htpasswd hashes.
  if (hash.startsWith('$2')) return (await import('bcryptjs')).default.compare(password, hash);
  const m = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$]+)$/.exec(hash);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await scryptAsync(password, Buffer.from(m[4]!, 'base64'), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Costs about as much as a real verification: run when the user does not exist, so timing does not tell. */
export async function dummyVerify(password: string): Promise<void> {
  await scryptAsync(password, Buffer.alloc(16), PARAMS);
}
