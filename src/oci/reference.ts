/**
 * Repository names, tags and image references, parsed once at the edge.
 *
 * Repository names and tags follow the OCI distribution spec's grammar.
 * {@link ImageReference.parse} adds Docker's normalisation for clients
 * (`ubuntu` → `docker.io/library/ubuntu:latest`).
 */
import { Digest } from './digest.js';
import { PierError } from './pier-error.js';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);

/** Longest repository name accepted (distribution limits name plus host to 255). */
export const MAX_REPOSITORY_LENGTH = 255;

export class InvalidReferenceError extends PierError {
  readonly code = 'ERR_REFERENCE_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceError';
  }
}

export function isRepositoryName(value: string): boolean {
  return value.length > 0 && value.length <= MAX_REPOSITORY_LENGTH && REPOSITORY.test(value);
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}

/** A repository name that matched the spec's grammar. */
export type RepositoryName = string & { readonly __brand: 'RepositoryName' };
/** A tag that matched the spec's grammar. */
export type Tag = string & { readonly __brand: 'Tag' };

export function parseRepositoryName(value: string): RepositoryName {
  if (!isRepositoryName(value)) throw new InvalidReferenceError(`invalid repository name ${JSON.stringify(value.slice(0, 300))}`);
  return value as RepositoryName;
}

export function parseTag(value: string): Tag {
  if (!isTag(value)) throw new InvalidReferenceError(`invalid tag ${JSON.stringify(value.slice(0, 200))}`);
  return value as Tag;
}

/** What a manifest request names: a tag or a digest. */
export type ManifestReference = { kind: 'tag'; tag: Tag } | { kind: 'digest'; digest: Digest };

/** Parses the `<reference>` path segment of a manifest URL. Throws on anything else. */
export function parseManifestReference(value: string): ManifestReference {
  if (value.includes(':')) return { kind: 'digest', digest: Digest.parse(value) };
  return { kind: 'tag', tag: parseTag(value) };
}

export const DOCKER_HUB = 'docker.io';

/**
 * A fully-qualified image reference: registry host, repository, and a tag
 * and/or digest. `ImageReference.parse('ubuntu')` is
 * `docker.io/library/ubuntu:latest`.
 */
export class ImageReference {
  private constructor(
    /** Registry host as the user named it (`docker.io`, `127.0.0.1:5000`). */
    readonly registry: string,
    readonly repository: RepositoryName,
    readonly tag: Tag | undefined,
    readonly digest: Digest | undefined,
  ) {}

  static parse(value: string, options: { defaultTag?: string } = {}): ImageReference {
    let rest = value.trim();
    let digest: Digest | undefined;
    const at = rest.indexOf('@');
    if (at !== -1) {
      digest = Digest.parse(rest.slice(at + 1));
      rest = rest.slice(0, at);
    }
    let tag: Tag | undefined;
    const lastColon = rest.lastIndexOf(':');
    if (lastColon > rest.lastIndexOf('/')) {
      tag = parseTag(rest.slice(lastColon + 1));
      rest = rest.slice(0, lastColon);
    }
    let registry = DOCKER_HUB;
    let path = rest;
    const slash = rest.indexOf('/');
    if (slash !== -1) {
      const first = rest.slice(0, slash);
      if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
        if (!DOMAIN.test(first)) throw new InvalidReferenceError(`invalid registry host ${JSON.stringify(first)}`);
        registry = first;
        path = rest.slice(slash + 1);
      }
    }
    if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
    if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
    const repository = parseRepositoryName(path);
    if (!tag && !digest) tag = parseTag(options.defaultTag ?? 'latest');
    return new ImageReference(registry, repository, tag, digest);
  }

  static of(registry: string, repository: RepositoryName, ref: { tag?: Tag; digest?: Digest }): ImageReference {
    return new ImageReference(registry, repository, ref.tag, ref.digest);
  }

  /** The host to connect to (Docker Hub's API lives on registry-1.docker.io). */
  get apiHost(): string {
    return this.registry === DOCKER_HUB ? 'registry-1.docker.io' : this.registry;
  }

  /** The tag or digest to use in a manifest URL (the digest wins when both are set). */
  get manifestReference(): string {
    return this.digest ? this.digest.toString() : (this.tag ?? 'latest');
  }

  withTag(tag: Tag): ImageReference {
    return new ImageReference(this.registry, this.repository, tag, undefined);
  }

  withDigest(digest: Digest): ImageReference {
    return new ImageReference(this.registry, this.repository, this.tag, digest);
  }

  /** `registry/repository[:tag][@digest]`. */
  toString(): string {
    return `${this.registry}/${this.repository}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest.toString()}` : ''}`;
  }
}
