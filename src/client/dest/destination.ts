/**
 * Where `pier pull` writes an image, and the one interface every file
 * destination implements.
 *
 * A writer stages everything in a temporary folder next to the destination
 * and makes it visible only in {@link ImageWriter.commit}, by renames: a pull
 * that fails (a blob that does not match its digest, a broken connection,
 * Ctrl-C) leaves the destination as it was.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, Digest } from '../../oci/index.js';
import type { SourceImage, SourceRoot } from '../sources/source.js';

export type DestinationSpec =
  /** An OCI image layout folder; `tag` becomes the `org.opencontainers.image.ref.name` annotation. */
  | { transport: 'oci'; path: string; tag?: string }
  /** A tar of an OCI image layout. */
  | { transport: 'oci-archive'; path: string; tag?: string }
  /** A classic `docker save` tarball; `name` (`NAME:TAG`) becomes its RepoTags. */
  | { transport: 'docker-archive'; path: string; name?: string };

export interface ImageWriter {
  /** `oci:/path:tag`, for messages. */
  readonly description: string;
  /** False when the destination holds one image only (docker-archive): an index must be narrowed to one platform first. */
  readonly holdsIndex: boolean;
  /** Throws (ClientError ERR_CONFIG) when the destination cannot store `root` (a layer compression it cannot unpack). */
  check(root: SourceRoot): void;
  /** True when the destination already holds this blob (an existing layout): it is not fetched again. */
  has(digest: Digest): Promise<boolean>;
  /**
   * Stores layer `index` of `image` from `body`. `body` fails (and so this
   * rejects) when the bytes do not match `descriptor`; what was written
   * stays in the staging area until {@link discard}. Called concurrently,
   * once per distinct layer digest.
   */
  putLayer(image: SourceImage, index: number, descriptor: Descriptor, body: Readable): Promise<void>;
  /** Writes manifests, configs and the top-level file, then makes the image visible at the destination at once. */
  commit(root: SourceRoot): Promise<void>;
  /** Removes the staging area; the destination is left as it was. Safe to call after commit (does nothing). */
  discard(): Promise<void>;
}
