/** The behaviour every SessionStore implementation must have (web UI sessions). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SessionStore } from '../../src/store/meta/sessions.js';

export interface SessionStoreFixture {
  store: SessionStore;
  close(): Promise<void>;
}

export function sessionStoreSuite(name: string, open: () => Promise<SessionStoreFixture>): void {
  describe(`SessionStore: ${name}`, () => {
    test('a session is found until it expires or is deleted, alone or with its user', async () => {
      const fixture = await open();
      const store = fixture.store;
      try {
        const now = new Date(1_800_000_000_000);
        const later = new Date(now.getTime() + 60_000);
        await store.createSession({ idHash: 'h1', user: 'alice', csrf: 'c1', createdAt: now, expiresAt: later });
        await store.createSession({ idHash: 'h2', user: 'alice', csrf: 'c2', createdAt: now, expiresAt: later });
        await store.createSession({ idHash: 'h3', user: 'bob', csrf: 'c3', createdAt: now, expiresAt: new Date(now.getTime() + 1000) });
        const s = await store.getSession('h1', now);
        assert.deepEqual([s?.user, s?.csrf, s?.expiresAt.getTime()], ['alice', 'c1', later.getTime()]);
        assert.equal(await store.getSession('nope', now), undefined);
        assert.equal(await store.getSession('h3', new Date(now.getTime() + 1000)), undefined, 'expired at its expiry');
        assert.equal(await store.deleteExpiredSessions(new Date(now.getTime() + 1000)), 1);
        assert.equal(await store.deleteSession('h1'), true);
        assert.equal(await store.deleteSession('h1'), false);
        assert.equal(await store.getSession('h1', now), undefined);
        assert.equal(await store.deleteUserSessions('alice'), 1);
        assert.equal(await store.getSession('h2', now), undefined);
      } finally {
        await fixture.close();
      }
    });
  });
}
