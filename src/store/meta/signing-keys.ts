/**
 * Token signing keys kept in the metadata store, so that replicas sharing
 * one database sign and verify with the same keys (src/auth/keys.ts turns
 * them into a KeySet). The store keeps PEM text as written; auth parses it.
 */

export interface StoredSigningKey {
  /** A name that sorts by creation time (the newest key signs). */
  id: string;
  /** PKCS#8 PEM. */
  privateKey: string;
  /** Self-signed X.509 PEM of its public key. */
  certificate: string;
  createdAt: number;
}

export interface SigningKeyStore {
  /**
   * Every stored key, oldest first. When there is none, stores the key
   * `create` makes and returns it: with several replicas starting at once,
   * exactly one key is created and all of them get it.
   */
  signingKeys(create: () => StoredSigningKey): Promise<StoredSigningKey[]>;
}
