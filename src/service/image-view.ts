/**
 * What the web UI shows of images: a tag's platforms and compressed size,
 * a manifest with its layers, config and referrers, and the differences
 * between two manifests. Reads only, through the repository service and
 * the browse queries (src/store/meta/browse.ts); nothing here writes.
 *
 * Config documents are read from the blob store once per digest and kept
 * in a bounded cache (content-addressed, so never stale).
 */
import { Digest } from '../oci/digest.js';
import { parseManifest, type Descriptor, type ParsedManifest, type Platform } from '../oci/manifest.js';
import type { RepositoryName } from '../oci/reference.js';
import type { BrowseQueries, Page, RepositoryQuery, RepositorySummary, TagQuery } from '../store/meta/browse.js';

export type { Page, RepositoryQuery, TagQuery } from '../store/meta/browse.js';
import type { RepositoryService } from './repository-service.js';

export interface LayerInfo {
  digest: string;
  mediaType: string;
  size: number;
}

/** A tag as the UI lists it (the wire shape is src/api/pier-v1.ts TagInfo). */
export interface TagView {
  name: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  size: number;
  pushedAt: string;
  pushedBy: string | null;
  lastPulledAt: string | null;
  immutable: boolean;
}

export interface ManifestView {
  repository: string;
  digest: string;
  mediaType: string;
  kind: 'image' | 'index';
  size: number;
  platforms: string[];
  config: (LayerInfo & { document: unknown }) | null;
  layers: LayerInfo[];
  manifests: (LayerInfo & { platform: string | null })[];
  annotations: Record<string, string>;
  tags: string[];
  referrers: { artifactType: string; manifests: (LayerInfo & { annotations: Record<string, string> })[] }[];
}

export interface ConfigChange {
  field: string;
  from: string | null;
  to: string | null;
}

export interface ManifestDiff {
  repository: string;
  from: string;
  to: string;
  layersAdded: LayerInfo[];
  layersRemoved: LayerInfo[];
  size: { from: number; to: number };
  platforms: { from: string[]; to: string[] };
  config: ConfigChange[];
}

/** Config documents larger than this are not read (a config is a few KiB). */
const MAX_CONFIG = 1024 * 1024;
const CACHE_ENTRIES = 2000;

/** An image's summary: its platforms, total compressed size and layers (an index: all of its images'). */
interface ImageSummary {
  platforms: string[];
  size: number;
  layers: LayerInfo[];
  /** The config of the image (an index: of its first image), parsed. */
  config: ImageConfig | undefined;
}

interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; Labels?: Record<string, string> | null; ExposedPorts?: Record<string, unknown> | null; User?: string; WorkingDir?: string };
}

export function platformName(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

function layerInfo(d: Descriptor): LayerInfo {
  return { digest: d.digest.toString(), mediaType: d.mediaType, size: d.size };
}

export class ImageViews {
  private readonly configs = new Map<string, unknown>();

  constructor(
    private readonly service: RepositoryService,
    private readonly browse: BrowseQueries,
    private readonly isImmutable: (repository: string, tag: string) => boolean,
  ) {}

  /** One page of repositories with their tag count, bytes and last push (`query.names`: what the viewer may pull). */
  repositories(query: RepositoryQuery): Promise<Page<RepositorySummary>> {
    return this.browse.repositorySummaries(query);
  }

  /** One page of a repository's tags with their details; undefined for an unknown repository. Only the page's manifests are read. */
  async tags(repository: RepositoryName, query: TagQuery): Promise<Page<TagView> | undefined> {
    const page = await this.browse.tagSummaries(repository, query);
    if (!page) return undefined;
    const rows = page.items;
    const summaries = new Map<string, Promise<ImageSummary>>();
    const out: TagView[] = [];
    for (const r of rows) {
      let summary = summaries.get(r.digest);
      if (!summary) {
        summary = this.summarize(repository, parseManifest(r.content, r.mediaType), r.manifestSize);
        summaries.set(r.digest, summary);
      }
      const s = await summary;
      out.push({
        name: r.name,
        digest: r.digest,
        mediaType: r.mediaType,
        platforms: s.platforms,
        size: s.size,
        pushedAt: new Date(r.pushedAt).toISOString(),
        pushedBy: r.pushedBy,
        lastPulledAt: r.pulledAt === null ? null : new Date(r.pulledAt).toISOString(),
        immutable: this.isImmutable(repository, r.name),
      });
    }
    return { total: page.total, items: out };
  }

  /** One manifest with its layers, config, tags and referrers; undefined when the repository lacks it. */
  async manifest(repository: RepositoryName, digest: Digest): Promise<ManifestView | undefined> {
    const record = await this.service.getManifest(repository, { kind: 'digest', digest });
    if (!record) return undefined;
    const parsed = parseManifest(record.content, record.mediaType);
    const summary = await this.summarize(repository, parsed, record.size);
    const groups = new Map<string, ManifestView['referrers'][number]['manifests']>();
    for (const r of await this.service.listReferrers(repository, digest)) {
      const type = r.artifactType ?? r.mediaType;
      const list = groups.get(type) ?? [];
      list.push({ digest: r.digest.toString(), mediaType: r.mediaType, size: r.size, annotations: r.annotations ?? {} });
      groups.set(type, list);
    }
    return {
      repository,
      digest: digest.toString(),
      mediaType: record.mediaType,
      kind: parsed.kind === 'index' ? 'index' : 'image',
      size: summary.size,
      platforms: summary.platforms,
      config: parsed.config ? { ...layerInfo(parsed.config), document: await this.readConfig(parsed.config) } : null,
      layers: parsed.kind === 'index' ? [] : parsed.layers.map(layerInfo),
      manifests: parsed.manifests.map((m) => ({ ...layerInfo(m), platform: m.platform ? platformName(m.platform) : null })),
      annotations: parsed.annotations ?? {},
      tags: await this.service.tagsPointingAt(repository, digest),
      referrers: [...groups].map(([artifactType, manifests]) => ({ artifactType, manifests })),
    };
  }

  /** What changed from one manifest to another; undefined when the repository lacks either. */
  async diff(repository: RepositoryName, from: Digest, to: Digest): Promise<ManifestDiff | undefined> {
    const [a, b] = await Promise.all([from, to].map((d) => this.service.getManifest(repository, { kind: 'digest', digest: d })));
    if (!a || !b) return undefined;
    const [sa, sb] = await Promise.all([
      this.summarize(repository, parseManifest(a.content, a.mediaType), a.size),
      this.summarize(repository, parseManifest(b.content, b.mediaType), b.size),
    ]);
    const before = new Set(sa.layers.map((l) => l.digest));
    const after = new Set(sb.layers.map((l) => l.digest));
    return {
      repository,
      from: from.toString(),
      to: to.toString(),
      layersAdded: sb.layers.filter((l) => !before.has(l.digest)),
      layersRemoved: sa.layers.filter((l) => !after.has(l.digest)),
      size: { from: sa.size, to: sb.size },
      platforms: { from: sa.platforms, to: sb.platforms },
      config: configChanges(sa.config, sb.config),
    };
  }

  private async summarize(repository: RepositoryName, m: ParsedManifest, ownSize: number): Promise<ImageSummary> {
    if (m.kind === 'index') {
      const out: ImageSummary = { platforms: [], size: ownSize, layers: [], config: undefined };
      for (const child of m.manifests) {
        const record = await this.service.getManifest(repository, { kind: 'digest', digest: child.digest });
        if (!record) continue;
        const parsed = parseManifest(record.content, record.mediaType);
        if (parsed.kind === 'index') continue;
        const s = await this.summarize(repository, parsed, record.size);
        // Attestation manifests (buildx) name the platform unknown/unknown: not a platform to run.
        const platform = child.platform ? platformName(child.platform) : s.platforms[0];
        if (platform !== undefined && platform !== 'unknown/unknown') out.platforms.push(platform);
        out.size += s.size;
        for (const l of s.layers) if (!out.layers.some((x) => x.digest === l.digest)) out.layers.push(l);
        out.config ??= s.config;
      }
      return out;
    }
    const config = m.config ? ((await this.readConfig(m.config)) as ImageConfig | null) ?? undefined : undefined;
    const platform = config?.os && config.architecture ? platformName({ os: config.os, architecture: config.architecture, variant: config.variant }) : undefined;
    return {
      platforms: platform ? [platform] : [],
      size: ownSize + (m.config?.size ?? 0) + m.layers.reduce((n, l) => n + l.size, 0),
      layers: m.layers.map(layerInfo),
      config,
    };
  }

  /** The config document when it is JSON of at most 1 MiB, else null. */
  private async readConfig(d: Descriptor): Promise<unknown> {
    const key = d.digest.toString();
    if (this.configs.has(key)) return this.configs.get(key);
    let value: unknown = null;
    if (d.size <= MAX_CONFIG && (d.mediaType.endsWith('+json') || d.mediaType.endsWith('.json') || d.mediaType.includes('json'))) {
      try {
        const chunks: Buffer[] = [];
        for await (const c of await this.service.openBlob(Digest.parse(key))) chunks.push(c as Buffer);
        value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        value = null;
      }
    }
    if (this.configs.size >= CACHE_ENTRIES) this.configs.delete(this.configs.keys().next().value!);
    this.configs.set(key, value);
    return value;
  }
}

/** Changes in what runs: entrypoint, cmd, user, working dir, each env var, label and exposed port. */
export function configChanges(a: ImageConfig | undefined, b: ImageConfig | undefined): ConfigChange[] {
  const out: ConfigChange[] = [];
  const ca = a?.config ?? {};
  const cb = b?.config ?? {};
  const str = (v: string[] | string | null | undefined) => (v === undefined || v === null || (Array.isArray(v) && v.length === 0) || v === '' ? null : Array.isArray(v) ? JSON.stringify(v) : v);
  const one = (field: string, x: string | null, y: string | null) => {
    if (x !== y) out.push({ field, from: x, to: y });
  };
  one('entrypoint', str(ca.Entrypoint), str(cb.Entrypoint));
  one('cmd', str(ca.Cmd), str(cb.Cmd));
  one('user', str(ca.User), str(cb.User));
  one('workingDir', str(ca.WorkingDir), str(cb.WorkingDir));
  const env = (list: string[] | null | undefined) => new Map((list ?? []).map((e) => [e.split('=', 1)[0]!, e.slice(e.indexOf('=') + 1)]));
  const maps: [string, Map<string, string>, Map<string, string>][] = [
    ['env', env(ca.Env), env(cb.Env)],
    ['label', new Map(Object.entries(ca.Labels ?? {})), new Map(Object.entries(cb.Labels ?? {}))],
    ['exposedPort', new Map(Object.keys(ca.ExposedPorts ?? {}).map((p) => [p, p])), new Map(Object.keys(cb.ExposedPorts ?? {}).map((p) => [p, p]))],
  ];
  for (const [prefix, x, y] of maps) {
    for (const k of [...new Set([...x.keys(), ...y.keys()])].sort()) one(`${prefix}.${k}`, x.get(k) ?? null, y.get(k) ?? null);
  }
  return out;
}
