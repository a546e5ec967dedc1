/**
 * GC's history watermark on PostgreSQL with a tag change that commits
 * late: ids are handed out at insert, so a change with a lower id can
 * commit after GC read the watermark, unseen by its mark. If the tag then
 * moves on, the manifest it pointed at is a kept version of the tag, and
 * the sweep's re-check must still spare it (it once compared ids, and
 * deleted it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { SqlLifecycleStore } from '../../src/store/meta/sql/sql-lifecycle-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { freshDatabase } from '../helpers/postgres.js';

function manifest(label: string) {
  const content = Buffer.from(JSON.stringify({ label }));
  return { digest: Digest.of(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, artifactType: undefined, subject: undefined, annotations: undefined, blobs: [], manifests: [] };
}

test('GC on PostgreSQL: a tag change committed after the watermark, with a lower id, still keeps its manifest', async () => {
  const database = await freshDatabase('h_cl_gc_watermark');
  const db = await openPostgresDatabase(database.url);
  const slow = new pg.Client({ connectionString: database.url });
  try {
    const meta = new SqlMetaStore(db);
    const store = new SqlLifecycleStore(db);
    const r = parseRepositoryName('team/app');
    const [old, next, other] = [manifest('old'), manifest('next'), manifest('other')];
    for (const m of [old, next, other]) await meta.putManifest(r, m, [], 'setup');
    const repoId = (await store.manifests())[0]!.repositoryId;

    // A rollback of tag "slow" to the old manifest: its transaction has written the tag and its history row
    // (the lower id), and has not committed yet.
    await slow.connect();
    await slow.query('begin');
    await slow.query(`insert into tags (repository_id, name, manifest_digest, updated_at) values ($1, 'slow', $2, 0)`, [repoId, old.digest.toString()]);
    await slow.query(`insert into tag_history (repository_id, tag, action, old_digest, new_digest, actor, at) values ($1, 'slow', 'rollback', null, $2, 'slow', 0)`, [repoId, old.digest.toString()]);
    // A later change (higher id) commits first; then GC marks: it sees neither the tag nor the history row of "slow".
    await meta.moveTag(r, parseTag('fast'), { to: other.digest.toString(), actor: 'fast' });
    const watermark = await store.historyWatermark();
    assert.ok(!(await store.tags()).some((t) => t.name === 'slow'), 'the mark does not see the open change');
    await slow.query('commit');
    // The tag moves on: the old manifest is now the previous version of "slow", which history keeps.
    await meta.moveTag(r, parseTag('slow'), { to: next.digest.toString(), actor: 'later' });

    const deleted = await store.deleteUnreachableManifests([[repoId, [old.digest.toString()]]], watermark, Date.now() + 60_000);
    assert.deepEqual(deleted, [[repoId, []]], 'a manifest a tag pointed at after the watermark survives');
    assert.ok((await store.manifests()).some((m) => m.digest === old.digest.toString()));
  } finally {
    await slow.end().catch(() => undefined);
    await db.destroy();
    await database.drop();
  }
});
