/**
 * 0120: what the registry generated itself (the scanner's SBOM referrers,
 * decision 0120) is marked, so it is kept outside users' quotas: a
 * `generated` flag (0/1) on blob links and manifests. A link stays
 * generated only while no user pushes or mounts the same digest into the
 * repository; a user's link is never turned into a generated one.
 */
import type { Kysely } from 'kysely';
import type { Dialect } from './types.js';

export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('repository_blobs').addColumn('generated', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('manifests').addColumn('generated', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
