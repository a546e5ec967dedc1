/**
 * Read-only summaries for the web UI's lists (/pier/v1/repositories and a
 * repository's tags): one query each, so a list of 10,000 repositories or
 * 1,000 tags is one round trip. One SQL implementation
 * (sql/sql-browse-store.ts). Nothing here writes.
 */

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
  /** Every repository with its counts, in name order. */
  repositorySummaries(): Promise<RepositorySummary[]>;
  /** The tags of a repository with their manifests, in name order; undefined for an unknown repository. */
  tagSummaries(repository: string): Promise<TagSummary[] | undefined>;
}
