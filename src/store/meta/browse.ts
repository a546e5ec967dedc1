/**
 * Read-only summaries for the web UI's lists (/pier/v1/repositories and a
 * repository's tags), one page at a time: the database filters (by name
 * and by what the viewer may pull), sorts and pages, so a list of 10,000
 * repositories or 1,000 tags costs a count and one page. One SQL
 * implementation (sql/sql-browse-store.ts), tested by
 * test/store/browse-store-suite.ts. Nothing here writes.
 */
import type { NamePatterns } from '../../shared/name-patterns.js';

export type Order = 'asc' | 'desc';

export interface RepositoryQuery {
  /** Only names containing this text (compared in lower case); '' for all. */
  q: string;
  /** Ties are broken by name, in the same order. A repository never pushed sorts as pushed at 0. */
  sort: 'name' | 'pushed' | 'size';
  order: Order;
  offset: number;
  limit: number;
  /** Only these names (what the viewer may pull). */
  names: NamePatterns;
}

export interface TagQuery {
  /** `pushed`: when the tag last changed; ties are broken by name, ascending. */
  sort: 'name' | 'pushed';
  order: Order;
  offset: number;
  limit: number;
}

/** One page of a list and the size of the whole list. */
export interface Page<T> {
  total: number;
  items: T[];
}

export interface RepositorySummary {
  name: string;
  tags: number;
  /** Linked blob bytes plus manifest bytes (what `usage` counts for the repository). */
  bytes: number;
  /** When its newest manifest was pushed (epoch ms), or null for a repository with none. */
  pushedAt: number | null;
}

export interface TagSummary {
  name: string;
  digest: string;
  mediaType: string;
  /** The manifest's own bytes (the UI's sizes add config and layers: see service/image-view.ts). */
  manifestSize: number;
  content: Buffer;
  /** When the tag last changed (epoch ms) and who changed it (its newest history row). */
  pushedAt: number;
  pushedBy: string | null;
  /** The last pull by this tag (epoch ms), or null. */
  pulledAt: number | null;
}

export interface BrowseQueries {
  /** One page of the repositories that match the query and hold a tag or a manifest (empty ones are left out). */
  repositorySummaries(query: RepositoryQuery): Promise<Page<RepositorySummary>>;
  /** One page of a repository's tags with their manifests; undefined for an unknown repository. */
  tagSummaries(repository: string, query: TagQuery): Promise<Page<TagSummary> | undefined>;
}
