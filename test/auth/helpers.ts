/**
 * Starts Pier with accounts for the auth tests: users, tokens and rules are
 * written to a fresh data folder's database before the registry starts
 * (as `pier user add` would), then the registry runs in-process.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { openSqliteAccountStore as openAuthStore } from '../../src/store/meta/sql/sqlite.js';
import type { AuthStore } from '../../src/auth/store.js';
import type { ConfigInput } from '../../src/registry/config.js';
import type { TestImage } from '../helpers/images.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';

export interface AuthRegistry extends TestRegistry {
  /** A second handle on the registry's database, for changes while it runs. */
  store: AuthStore;
}

export async function startAuthRegistry(setup: (store: AuthStore) => Promise<void>, overrides: ConfigInput = {}): Promise<AuthRegistry> {
  const dataDir = await tempDir('pier-auth-');
  const before = await openAuthStore(path.join(dataDir, 'pier.db'));
  try {
    await setup(before.store);
  } finally {
    await before.close();
  }
  const registry = await startTestRegistry(overrides, { dataDir });
  const opened = await openAuthStore(path.join(dataDir, 'pier.db'));
  return {
    ...registry,
    store: opened.store,
    async close() {
      await opened.close();
      await registry.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** GET /auth/token with optional Basic credentials; returns the status and the token. */
export async function fetchToken(url: string, scopes: string[], authorization?: string, service = 'pier'): Promise<{ status: number; token?: string; body: Record<string, unknown> }> {
  const q = new URLSearchParams({ service });
  for (const s of scopes) q.append('scope', s);
  const res = await fetch(`${url}/auth/token?${q.toString()}`, { headers: authorization ? { authorization } : {} });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, body, ...(typeof body.token === 'string' ? { token: body.token } : {}) };
}

/** Pushes an image with monolithic uploads, sending `authorization` on every request. Returns the first non-2xx status, or the manifest's 201. */
export async function pushAs(url: string, repository: string, reference: string, image: TestImage, authorization: string | undefined): Promise<number> {
  const headers: Record<string, string> = authorization ? { authorization } : {};
  for (const b of [image.config, ...image.layers]) {
    const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.data, headers: { ...headers, 'content-type': 'application/octet-stream' } });
    await res.arrayBuffer();
    if (res.status !== 201) return res.status;
  }
  const res = await fetch(`${url}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: image.manifest, headers: { ...headers, 'content-type': image.mediaType } });
  await res.arrayBuffer();
  return res.status;
}
