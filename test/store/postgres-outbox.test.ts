/**
 * The webhook outbox on PostgreSQL with a writer that commits late: a tag
 * change whose transaction is still open when a later one commits must
 * not be skipped by the fan-out cursor (ids are handed out in insert
 * order, not commit order), and the later change waits behind it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { Digest } from '../../src/oci/digest.js';
import { parseRepositoryName, parseTag } from '../../src/oci/reference.js';
import type { TagEventRow } from '../../src/store/meta/lifecycle-store.js';
import { openPostgresDatabase } from '../../src/store/meta/sql/postgres.js';
import { SqlLifecycleStore } from '../../src/store/meta/sql/sql-lifecycle-store.js';
import { SqlMetaStore } from '../../src/store/meta/sql/sql-meta-store.js';
import { freshDatabase } from '../helpers/postgres.js';

function manifest(label: string) {
  const content = Buffer.from(JSON.stringify({ label }));
  return { digest: Digest.of(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, artifactType: undefined, subject: undefined, annotations: undefined, blobs: [], manifests: [] };
}

test('webhook outbox on PostgreSQL: a change committed late is fanned out, not skipped, and the changes after it wait for it', async () => {
  const database = await freshDatabase('outbox');
  const db = await openPostgresDatabase(database.url);
  const slow = new pg.Client({ connectionString: database.url });
  try {
    const meta = new SqlMetaStore(db);
    const store = new SqlLifecycleStore(db);
    const r = parseRepositoryName('team/app');
    const [v1, v2] = [manifest('v1'), manifest('v2')];
    await meta.putManifest(r, v1, [], 'setup');
    await meta.putManifest(r, v2, [], 'setup');
    await store.initCursor();
    const plan = (events: TagEventRow[]) => events.map((e) => ({ endpoint: 'e', eventId: `ev-${e.id}`, eventType: e.action, payload: JSON.stringify(e) }));

    // A writer that has written its history row (the lower id) but not yet committed.
    await slow.connect();
    await slow.query('begin');
    const repoId = (await slow.query<{ id: string }>('select id from repositories where name = $1', ['team/app'])).rows[0]!.id;
    await slow.query(`insert into tag_history (repository_id, tag, action, old_digest, new_digest, actor, at) values ($1, 'slow', 'create', null, $2, 'slow', 0)`, [repoId, v1.digest.toString()]);
    // A later change commits first.
    await meta.moveTag(r, parseTag('fast'), { to: v2.digest.toString(), actor: 'fast' });
    assert.equal(await store.fanOut(100, plan), 0, 'the committed change waits behind the open transaction');
    await slow.query('commit');

    let fanned = 0;
    const deadline = Date.now() + 30_000; // another session on a shared server may hold the horizon back for a while
    while (fanned < 2 && Date.now() < deadline) {
      const n = await store.fanOut(100, plan);
      fanned += n;
      if (n === 0) await new Promise((res) => setTimeout(res, 20));
    }
    const delivered = (await store.recentDeliveries('e', 10)).reverse().map((d) => (JSON.parse(d.payload) as TagEventRow).tag);
    assert.deepEqual(delivered, ['slow', 'fast'], 'both, in commit order');
  } finally {
    await slow.end().catch(() => undefined);
    await db.destroy();
    await database.drop();
  }
});
