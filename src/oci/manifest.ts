/**
 * Parsing and validation of image manifests and indexes (OCI and Docker
 * schema 2). Pure: takes bytes, returns a {@link ParsedManifest} or throws a
 * {@link ManifestError} saying what is wrong.
 */
import { Digest } from './digest.js';
import { MediaTypes, isIndexMediaType, isManifestMediaType, isValidMediaType } from './media-types.js';
import { PierError } from './pier-error.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
  data?: string;
}

export interface ParsedManifest {
  /** The effective media type: from the document, or the Content-Type it was sent with. */
  mediaType: string;
  kind: 'manifest' | 'index';
  config?: Descriptor;
  /** Layers of an image manifest, or [] for an index. */
  layers: Descriptor[];
  /** Child manifests of an index, or [] for an image manifest. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** `artifactType`; for an image manifest without one, its config media type (as the referrers API reports it). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class ManifestError extends PierError {
  readonly code = 'ERR_MANIFEST_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Manifests larger than this are refused (the spec suggests at least 4 MiB be accepted). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string): never {
  throw new ManifestError(message);
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) fail(`${where} must be an object of strings`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(`${where}.${k} must be a string`);
  }
  return value as Record<string, string>;
}

export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) fail(`${where} must be a descriptor object`);
  const { mediaType, digest, size, urls, annotations, artifactType, platform, data } = value;
  if (typeof mediaType !== 'string' || !isValidMediaType(mediaType)) fail(`${where}.mediaType is missing or invalid`);
  if (typeof digest !== 'string') fail(`${where}.digest is missing`);
  const parsedDigest = Digest.tryParse(digest) ?? fail(`${where}.digest ${JSON.stringify(digest.slice(0, 200))} is invalid`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail(`${where}.size must be a non-negative integer`);
  const descriptor: Descriptor = { mediaType, digest: parsedDigest, size };
  if (urls !== undefined) {
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) fail(`${where}.urls must be an array of strings`);
    descriptor.urls = urls;
  }
  const ann = stringMap(annotations, `${where}.annotations`);
  if (ann) descriptor.annotations = ann;
  if (artifactType !== undefined) {
    if (typeof artifactType !== 'string' || !isValidMediaType(artifactType)) fail(`${where}.artifactType is invalid`);
    descriptor.artifactType = artifactType;
  }
  if (platform !== undefined) {
    if (!isObject(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string') {
      fail(`${where}.platform needs os and architecture`);
    }
    descriptor.platform = platform as unknown as Platform;
  }
  if (data !== undefined) {
    if (typeof data !== 'string') fail(`${where}.data must be base64`);
    descriptor.data = data;
  }
  return descriptor;
}

function descriptorList(value: unknown, where: string): Descriptor[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(`${where} must be an array`);
  return value.map((d, i) => parseDescriptor(d, `${where}[${i}]`));
}

/**
 * Parses manifest bytes sent with `contentType` (the request's Content-Type,
 * parameters stripped; may be undefined). The document's own `mediaType`,
 * when present, must agree with a manifest Content-Type.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    fail('manifest is not valid JSON');
  }
  if (!isObject(doc)) fail('manifest must be a JSON object');
  if (doc.schemaVersion !== 2) {
    fail(doc.schemaVersion === 1 ? 'schema 1 manifests are not supported' : 'schemaVersion must be 2');
  }
  let mediaType: string;
  if (doc.mediaType !== undefined) {
    if (typeof doc.mediaType !== 'string') fail('mediaType must be a string');
    if (!isManifestMediaType(doc.mediaType)) fail(`unsupported manifest mediaType ${JSON.stringify(doc.mediaType)}`);
    if (contentType && isManifestMediaType(contentType) && contentType !== doc.mediaType) {
      fail(`mediaType ${doc.mediaType} does not match Content-Type ${contentType}`);
    }
    mediaType = doc.mediaType;
  } else if (contentType && isManifestMediaType(contentType)) {
    mediaType = contentType;
  } else if (Array.isArray(doc.manifests)) {
    mediaType = MediaTypes.ociIndex;
  } else {
    mediaType = MediaTypes.ociManifest;
  }
  if (mediaType.startsWith('application/vnd.docker') && doc.mediaType === undefined) {
    fail('Docker schema 2 manifests must carry their mediaType');
  }

  const annotations = stringMap(doc.annotations, 'annotations');
  const subject = doc.subject === undefined ? undefined : parseDescriptor(doc.subject, 'subject');
  let artifactType: string | undefined;
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string' || !isValidMediaType(doc.artifactType)) fail('artifactType is invalid');
    artifactType = doc.artifactType;
  }

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) fail('an index needs a manifests array');
    if (doc.config !== undefined || doc.layers !== undefined) fail('an index has no config or layers');
    const manifests = descriptorList(doc.manifests, 'manifests');
    return { mediaType, kind: 'index', layers: [], manifests, subject, artifactType, annotations };
  }
  if (doc.manifests !== undefined) fail('an image manifest has no manifests array');
  if (doc.config === undefined) fail('an image manifest needs a config descriptor');
  const config = parseDescriptor(doc.config, 'config');
  if (doc.layers === undefined && mediaType === MediaTypes.dockerManifest) fail('a Docker manifest needs a layers array');
  const layers = descriptorList(doc.layers, 'layers');
  // The referrers API reports the config media type when a manifest has no artifactType.
  artifactType ??= config.mediaType;
  return { mediaType, kind: 'manifest', config, layers, manifests: [], subject, artifactType, annotations };
}

/** Every descriptor a manifest references that must exist in its repository. */
export function referencedDescriptors(manifest: ParsedManifest): { blobs: Descriptor[]; manifests: Descriptor[] } {
  if (manifest.kind === 'index') return { blobs: [], manifests: manifest.manifests };
  // Non-distributable (foreign) layers with URLs are fetched elsewhere and need not be pushed.
  const layers = manifest.layers.filter((l) => !(l.urls && l.urls.length > 0 && l.mediaType.includes('foreign')));
  return { blobs: manifest.config ? [manifest.config, ...layers] : layers, manifests: [] };
}
