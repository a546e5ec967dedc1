/** The web UI's list queries over SQL (tables of migrations 0001 and 0003): see ../browse.ts. */
import { sql, type Kysely } from 'kysely';
import { likeLiteral } from '../../../shared/name-patterns.js';
import type { BrowseQueries, Page, RepositoryQuery, RepositorySummary, TagQuery, TagSummary } from '../browse.js';
import { namesIn } from './name-filter.js';
import type { Database } from './schema.js';

export class SqlBrowseStore implements BrowseQueries {
  constructor(private readonly db: Kysely<Database>) {}

  async repositorySummaries(query: RepositoryQuery): Promise<Page<RepositorySummary>> {
    // Grouped subqueries joined once: one pass over each table, whatever the number of repositories.
    const from = sql`from repositories r
      left join (select repository_id, count(*) as n from tags group by repository_id) t on t.repository_id = r.id
      left join (select repository_id, sum(size) as bytes from repository_blobs group by repository_id) b on b.repository_id = r.id
      left join (select repository_id, sum(size) as bytes, max(created_at) as pushed_at from manifests group by repository_id) m on m.repository_id = r.id
      where (coalesce(t.n, 0) > 0 or m.pushed_at is not null) and ${namesIn(sql.ref('r.name'), query.names)}${query.q === '' ? sql`` : sql` and lower(r.name) like ${`%${likeLiteral(query.q.toLowerCase())}%`} escape '\\'`}`;
    const counted = await sql<{ n: number | string }>`select count(*) as n ${from}`.execute(this.db);
    const total = Number(counted.rows[0]?.n ?? 0);
    if (total === 0 || query.offset >= total || query.limit === 0) return { total, items: [] };
    const dir = query.order === 'desc' ? sql`desc` : sql`asc`;
    const key = query.sort === 'pushed' ? sql`coalesce(m.pushed_at, 0) ${dir}, ` : query.sort === 'size' ? sql`coalesce(b.bytes, 0) + coalesce(m.bytes, 0) ${dir}, ` : sql``;
    const rows = await sql<{ name: string; tags: number | null; blob_bytes: number | null; manifest_bytes: number | null; pushed_at: number | null }>`
      select r.name as name, t.n as tags, b.bytes as blob_bytes, m.bytes as manifest_bytes, m.pushed_at as pushed_at
      ${from}
      order by ${key}r.name ${dir}
      limit ${query.limit} offset ${query.offset}`.execute(this.db);
    return {
      total,
      items: rows.rows.map((r) => ({
        name: r.name,
        tags: Number(r.tags ?? 0),
        bytes: Number(r.blob_bytes ?? 0) + Number(r.manifest_bytes ?? 0),
        pushedAt: r.pushed_at === null ? null : Number(r.pushed_at),
      })),
    };
  }

  async tagSummaries(repository: string, query: TagQuery): Promise<Page<TagSummary> | undefined> {
    const repo = await this.db.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirst();
    if (!repo) return undefined;
    const counted = await this.db.selectFrom('tags').select((eb) => eb.fn.countAll<number | string>().as('n')).where('repository_id', '=', repo.id).executeTakeFirst();
    const total = Number(counted?.n ?? 0);
    if (total === 0 || query.offset >= total || query.limit === 0) return { total, items: [] };
    let page = this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
      .leftJoin('tag_pulls as p', (j) => j.onRef('p.repository_id', '=', 't.repository_id').onRef('p.tag', '=', 't.name'))
      .select((eb) => [
        't.name',
        't.manifest_digest',
        't.updated_at',
        'm.media_type',
        'm.size',
        'm.content',
        'p.pulled_at',
        eb
          .selectFrom('tag_history as h')
          .select('h.actor')
          .whereRef('h.repository_id', '=', 't.repository_id')
          .whereRef('h.tag', '=', 't.name')
          .orderBy('h.id', 'desc')
          .limit(1)
          .as('actor'),
      ])
      .where('t.repository_id', '=', repo.id);
    if (query.sort === 'pushed') page = page.orderBy('t.updated_at', query.order).orderBy('t.name', 'asc');
    else page = page.orderBy('t.name', query.order);
    const rows = await page.limit(query.limit).offset(query.offset).execute();
    return {
      total,
      items: rows.map((r) => ({
      name: r.name,
      digest: r.manifest_digest,
      mediaType: r.media_type,
      manifestSize: Number(r.size),
      content: r.content,
      pushedAt: Number(r.updated_at),
      pushedBy: r.actor ?? null,
      pulledAt: r.pulled_at === null ? null : Number(r.pulled_at),
      })),
    };
  }
}

