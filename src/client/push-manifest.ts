/** Manifests the push engine builds (for compressed raw layers) and the platform choice in an index. */
import { MediaTypes, type Descriptor, type Platform } from '../oci/index.js';

export interface BuiltManifest {
  bytes: Buffer;
  mediaType: string;
}

/** Whether `p` is the platform `want` (`os/arch[/variant]`; no variant matches any). */
export function matchesPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined, want: string): boolean {
  if (!p) return false;
  const [os, arch, variant] = want.split('/');
  return p.os === os && p.architecture === arch && (!variant || p.variant === variant);
}

/** `os/arch[/variant]`, or `?` when unknown. */
export function platformName(p: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined): string {
  return p ? `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}` : '?';
}

/**
 * The manifest of an image whose layers were compressed here (Docker
 * schema 2, as `docker push` writes) or sent uncompressed (`oci`: OCI
 * media types, layers as plain tars).
 */
export function buildManifest(config: Descriptor, layers: Descriptor[], oci: boolean): BuiltManifest {
  const doc = {
    schemaVersion: 2,
    mediaType: oci ? MediaTypes.ociManifest : MediaTypes.dockerManifest,
    config: { mediaType: oci ? MediaTypes.ociConfig : MediaTypes.dockerConfig, size: config.size, digest: config.digest.toString() },
    layers: layers.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest.toString() })),
  };
  return { bytes: Buffer.from(JSON.stringify(doc)), mediaType: doc.mediaType };
}
