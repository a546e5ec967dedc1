/**
 * Token signing keys. Layout of the key folder (`auth.keys`, default
 * DATA/keys):
 *
 *     keys/
 *       2026-11-23T15-40-00Z-a1b2c3.key   PKCS#8 PEM private key (ECDSA P-256)
 *       2026-11-23T15-40-00Z-a1b2c3.crt   self-signed X.509 certificate of its public key
 *       other-replica.crt          a certificate alone: verifies, never signs
 *
 * The last `.key` by name signs (names are creation times, so a new key
 * generated next to the old one takes over while tokens signed by the old
 * one stay valid until both it is removed and they expire). Every `.key`
 * and `.crt` verifies. With no `.key`, one is generated on start.
 *
 * Replicas on one PostgreSQL keep their keys in the database instead
 * ({@link loadStoredKeySet}): the first to start creates one, every replica
 * signs with the newest and verifies with all, so a token issued by one is
 * accepted by every other. `.crt` files in the folder still verify there.
 *
 * The key id (`kid`) is the libtrust fingerprint of the public key, the
 * form CNCF distribution 2.8 looks up among the keys of its
 * `rootcertbundle`, so a `.crt` here is all distribution needs to trust
 * Pier as its token issuer.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { SigningKeyStore, StoredSigningKey } from '../store/meta/signing-keys.js';

export interface SigningKey {
  kid: string;
  alg: 'ES256' | 'RS256';
  privateKey: KeyObject;
}

export interface KeySet {
  signer: SigningKey;
  /** Public keys by kid. */
  verifiers: Map<string, { alg: 'ES256' | 'RS256'; key: KeyObject }>;
  /** PEM certificates of every verifying key, e.g. for a distribution `rootcertbundle`. */
  certificates: string[];
}

/** libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, in groups of four. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const digest = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

function algOf(key: KeyObject): 'ES256' | 'RS256' {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  throw new Error(`unsupported token key type ${key.asymmetricKeyType ?? 'unknown'}: use ECDSA P-256 or RSA`);
}

// --- a minimal DER writer, enough for one self-signed certificate ---

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const n of rest) {
    const group = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) group.unshift((v & 0x7f) | 0x80);
    bytes.push(...group);
  }
  return tlv(0x06, Buffer.from(bytes));
}
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}
function name(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));
}

/** A self-signed X.509 v3 certificate (CA, 10 years) for `privateKey`, as PEM. */
export function selfSignedCertificate(privateKey: KeyObject, commonName: string): string {
  const alg = algOf(privateKey);
  const sigAlg = alg === 'ES256' ? seq(oid('1.2.840.10045.4.3.2')) : seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  serial[0]! |= 0x01;
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
  const later = new Date(now.getTime() + 10 * 365 * 86400_000);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const basicConstraints = seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq(tlv(0x01, Buffer.from([0xff])))));
  const keyUsage = seq(oid('2.5.29.15'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, tlv(0x03, Buffer.from([0x01, 0x86])))); // digitalSignature, keyCertSign, cRLSign
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    sigAlg,
    name(commonName),
    seq(time(now), time(later)),
    name(commonName),
    spki,
    tlv(0xa3, seq(basicConstraints, keyUsage)),
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, sigAlg, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** A new signing key (ECDSA P-256) and its certificate, as PEM, named by creation time then randomness. */
export function newSigningKey(commonName = 'pier token issuer'): StoredSigningKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = new Date();
  // Creation time first (the newest signs), then randomness: two registries starting together never collide.
  const id = `${now.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
  return { id, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certificate: selfSignedCertificate(privateKey, commonName), createdAt: now.getTime() };
}

/** Creates a new signing key (and its certificate) in `dir`; returns its file stem. */
export async function generateSigningKey(dir: string, commonName = 'pier token issuer'): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = newSigningKey(commonName);
  // Certificate first, each through a temp file and a rename: a crash leaves either no key or a whole one.
  const put = async (name: string, data: string, mode: number) => {
    const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path.join(dir, name));
  };
  await put(`${key.id}.crt`, key.certificate, 0o644);
  await put(`${key.id}.key`, key.privateKey, 0o600);
  return key.id;
}

/** Loads every key in `dir` (generating one when there is none). */
export async function loadKeySet(dir: string): Promise<KeySet> {
  let files = await listKeyFolder(dir);
  if (!files.some((f) => f.endsWith('.key'))) {
    await generateSigningKey(dir);
    files = await listKeyFolder(dir);
  }
  const keys = new KeyCollector();
  await keys.addFolder(dir, files);
  return keys.result();
}

/**
 * The keys of replicas sharing a database: every key in `store` (the first
 * replica to start creates one; the newest signs), plus any certificate in
 * the folder `dir` if it exists (they verify, never sign; a `.key` file
 * there is not used).
 */
export async function loadStoredKeySet(store: SigningKeyStore, dir: string): Promise<KeySet> {
  const keys = new KeyCollector();
  const files = await listKeyFolder(dir);
  await keys.addFolder(dir, files.filter((f) => !f.endsWith('.key')));
  for (const key of await store.signingKeys(() => newSigningKey())) {
    keys.addCertificates(key.certificate);
    keys.addPrivateKey(key.privateKey);
  }
  return keys.result();
}

async function listKeyFolder(dir: string): Promise<string[]> {
  const files = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return files.sort();
}

/** Gathers verifiers and certificates; the last private key added signs. */
class KeyCollector {
  private readonly verifiers: KeySet['verifiers'] = new Map();
  private readonly certificates: string[] = [];
  private signer: SigningKey | undefined;

  async addFolder(dir: string, files: string[]): Promise<void> {
    for (const file of files) {
      if (file.startsWith('.')) continue;
      const full = path.join(dir, file);
      if (file.endsWith('.key')) this.addPrivateKey(await readFile(full, 'utf8'));
      else if (file.endsWith('.crt') || file.endsWith('.pem')) this.addCertificates(await readFile(full, 'utf8'));
    }
  }

  addPrivateKey(pem: string): void {
    const privateKey = createPrivateKey(pem);
    const publicKey = createPublicKey(privateKey);
    const kid = libtrustKeyId(publicKey);
    const alg = algOf(privateKey);
    this.verifiers.set(kid, { alg, key: publicKey });
    this.signer = { kid, alg, privateKey };
  }

  addCertificates(text: string): void {
    for (const block of text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      const publicKey = new X509Certificate(block).publicKey;
      this.verifiers.set(libtrustKeyId(publicKey), { alg: algOf(publicKey), key: publicKey });
      this.certificates.push(`${block}\n`);
    }
  }

  result(): KeySet {
    return { signer: this.signer!, verifiers: this.verifiers, certificates: this.certificates };
  }
}
