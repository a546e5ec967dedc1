/**
 * Schema migrations, in order: one file each under migrations/, registered
 * here. Each runs once, recorded by Kysely's Migrator. The same migrations
 * serve SQLite and PostgreSQL; the few types that differ come from
 * migrations/types.ts.
 */
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import * as initial from './migrations/0001-initial.js';
import * as auth from './migrations/0002-auth.js';
import * as lifecycle from './migrations/0003-lifecycle.js';
import * as quotaReservations from './migrations/0004-quota-reservations.js';
import * as coordination from './migrations/0005-coordination.js';
import * as signingKeys from './migrations/0006-signing-keys.js';
import * as historyCommitOrder from './migrations/0007-history-commit-order.js';
import * as blobUploads from './migrations/0008-blob-uploads.js';
import * as supply from './migrations/0010-supply.js';
import * as uiSessions from './migrations/0013-ui-sessions.js';
import * as generatedContent from './migrations/0120-generated-content.js';
import type { Dialect } from './migrations/types.js';

export type { Dialect } from './migrations/types.js';

type Step = { up(db: Kysely<unknown>, dialect: Dialect): Promise<void> };

/** Append new migrations at the end; never edit or reorder a released one. */
const STEPS: [string, Step][] = [
  ['0001-initial', initial],
  ['0002-auth', auth],
  ['0003-lifecycle', lifecycle],
  ['0004-quota-reservations', quotaReservations],
  ['0005-coordination', coordination],
  ['0006-signing-keys', signingKeys],
  ['0007-history-commit-order', historyCommitOrder],
  ['0008-blob-uploads', blobUploads],
  ['0010-supply', supply],
  ['0013-ui-sessions', uiSessions],
  ['0120-generated-content', generatedContent],
];

export function migrationProvider(dialect: Dialect): MigrationProvider {
  const migrations: Record<string, Migration> = {};
  for (const [name, step] of STEPS) migrations[name] = { up: (db) => step.up(db, dialect) };
  return { getMigrations: async () => migrations };
}
