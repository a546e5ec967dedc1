/** Kysely types for the lifecycle tables (migration 0003-lifecycle), added to the metadata schema. */
import type { Generated, Kysely } from 'kysely';
import type { Database } from '../store/meta/sql/schema.js';

export interface TagPullsTable {
  repository_id: number;
  tag: string;
  pulled_at: number;
}

/** Small named counters: `webhook_cursor` is the last tag_history id fanned out to webhook deliveries. */
export interface LifecycleStateTable {
  key: string;
  value: number;
}

export interface WebhookDeliveriesTable {
  id: Generated<number>;
  endpoint: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_at: number;
  created_at: number;
  finished_at: number | null;
  last_error: string | null;
}

export interface WebhookAttemptsTable {
  id: Generated<number>;
  delivery_id: number;
  endpoint: string;
  at: number;
  status_code: number | null;
  error: string | null;
  ms: number;
}

export type LifecycleTables = {
  tag_pulls: TagPullsTable;
  lifecycle_state: LifecycleStateTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
};

export type LifecycleDatabase = Database & LifecycleTables;
export type LifecycleDb = Kysely<LifecycleDatabase>;
