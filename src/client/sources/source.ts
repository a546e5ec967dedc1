/**
 * What the push engine reads from: an image (config + layers, and the
 * exact manifest bytes when the source has them) or an index of images.
 *
 * A layer is either a {@link StoredBlob} (bytes already in their pushed
 * form, digest known: OCI layouts, registries) or a {@link RawLayer} (an
 * uncompressed tar named by its diffID, compressed on the fly: docker save,
 * the daemon). `open(start)` may be called many times (retries, resume).
 */
import type { Readable } from 'node:stream';
import type { Descriptor, Digest, Platform } from '../../oci/index.js';

export interface StoredBlob {
  kind: 'stored';
  descriptor: Descriptor;
  open(start?: number): Promise<Readable>;
}

export interface RawLayer {
  kind: 'raw';
  diffID: Digest;
  /** Uncompressed size in bytes. */
  size: number;
  open(): Promise<Readable>;
}

export type SourceLayer = StoredBlob | RawLayer;

export interface SourceImage {
  kind: 'image';
  /** The manifest exactly as the source has it; absent when it must be built (raw layers). */
  manifest?: { bytes: Buffer; mediaType: string; digest: Digest };
  config: { descriptor: Descriptor; bytes: Buffer };
  layers: SourceLayer[];
  platform?: Platform;
}

export interface SourceIndex {
  kind: 'index';
  manifest: { bytes: Buffer; mediaType: string; digest: Digest };
  images: { descriptor: Descriptor; image: SourceImage }[];
}

export type SourceRoot = SourceImage | SourceIndex;

export interface ImageSource {
  /** A description for messages (`oci:/path:tag`). */
  readonly description: string;
  /** The image name the source carries (docker-archive RepoTags, daemon name), used when DEST is omitted. */
  readonly defaultName?: string;
  /** When blobs live in a repository of a registry, where they could be mounted from. */
  readonly mountFrom?: { registry: string; repository: string };
  root(): Promise<SourceRoot>;
  close(): Promise<void>;
}
