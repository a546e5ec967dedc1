/**
 * Webhooks for CI/CD, delivered from a durable queue.
 *
 * Events come from tag_history, which the metadata store writes in the
 * same transaction as every tag change: a committed change is an event,
 * and a crash cannot lose one. A fan-out step copies new history rows
 * (after a cursor kept in lifecycle_state) into one webhook_deliveries row
 * per matching endpoint, moving the cursor in the same transaction.
 *
 * Each endpoint's queue is delivered strictly in order, one at a time:
 * the oldest pending delivery is retried with exponential backoff (1 s
 * doubling up to webhooks.backoffMax) and blocks the ones behind it, so a
 * receiver sees every tag's events in order. After webhooks.maxAttempts
 * it is marked failed and the queue moves on. Every attempt is logged in
 * webhook_attempts. Shutdown waits for in-flight requests, so a graceful
 * restart delivers each event exactly once; after a crash, an event whose
 * request was in flight is sent again with the same `X-Pier-Delivery` id.
 *
 * Request: POST, JSON body (see docs/api.md), headers `X-Pier-Event`
 * (type), `X-Pier-Delivery` (event id), and with a secret
 * `X-Pier-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { TagAction } from '../store/meta/meta-store.js';
import { LifecycleError } from './errors.js';
import type { WebhookEndpoint, WebhookEventType } from './rules.js';
import type { LifecycleDb } from './schema.js';

export interface WebhookSettings {
  endpoints: WebhookEndpoint[];
  maxAttempts: number;
  /** Seconds. */
  backoffMax: number;
  /** Seconds. */
  timeout: number;
}

export interface WebhookEvent {
  /** Stable across retries and restarts: `tag-history-<n>`. */
  id: string;
  type: WebhookEventType | 'test';
  action: TagAction | 'test';
  repository: string;
  tag: string;
  digest: string | null;
  previousDigest: string | null;
  actor: string;
  at: string;
}

export interface DeliveryRecord {
  id: number;
  eventId: string;
  type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  createdAt: string;
  finishedAt: string | undefined;
  lastError: string | undefined;
}

export interface AttemptResult {
  ok: boolean;
  status: number | undefined;
  error: string | undefined;
  ms: number;
}

const TICK_MS = 200;
const FAN_OUT_BATCH = 500;
const CURSOR = 'webhook_cursor';

export const EVENT_TYPES: Record<TagAction, WebhookEventType> = { create: 'push', move: 'tag_move', delete: 'delete', rollback: 'rollback' };

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Map<string, Promise<void>>();
  private fanning: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly db: LifecycleDb,
    private readonly settings: WebhookSettings,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const cursor = await this.db.selectFrom('lifecycle_state').select('value').where('key', '=', CURSOR).executeTakeFirst();
    if (!cursor) {
      // First start: history written before this version is not replayed.
      const max = await this.db.selectFrom('tag_history').select((eb) => eb.fn.max('id').as('m')).executeTakeFirst();
      await this.db
        .insertInto('lifecycle_state')
        .values({ key: CURSOR, value: Number(max?.m ?? 0) })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
    }
    this.timer = setInterval(() => this.nudge(), TICK_MS);
    this.timer.unref();
    this.nudge();
  }

  /** Looks for new events and due deliveries now (called after a tag commit). */
  nudge(): void {
    if (this.closed) return;
    if (this.fanning) {
      this.again = true;
      return;
    }
    this.fanning = (async () => {
      do {
        this.again = false;
        await this.fanOut();
      } while (this.again && !this.closed);
      for (const endpoint of this.settings.endpoints) {
        if (this.inflight.has(endpoint.name)) continue;
        const run = this.drain(endpoint)
          .catch((err: unknown) => this.log.error({ err, webhook: endpoint.name }, 'webhook delivery failed'))
          .finally(() => this.inflight.delete(endpoint.name));
        this.inflight.set(endpoint.name, run);
      }
    })()
      .catch((err: unknown) => this.log.error({ err }, 'webhook fan-out failed'))
      .finally(() => {
        this.fanning = undefined;
      });
  }

  /** Copies tag_history rows after the cursor into deliveries, moving the cursor, in one transaction. */
  private async fanOut(): Promise<void> {
    for (;;) {
      const moved = await this.db.transaction().execute(async (tx) => {
        const cursor = Number((await tx.selectFrom('lifecycle_state').select('value').where('key', '=', CURSOR).executeTakeFirst())?.value ?? 0);
        const rows = await tx
          .selectFrom('tag_history as h')
          .innerJoin('repositories as r', 'r.id', 'h.repository_id')
          .select(['h.id', 'r.name', 'h.tag', 'h.action', 'h.old_digest', 'h.new_digest', 'h.actor', 'h.at'])
          .where('h.id', '>', cursor)
          .orderBy('h.id')
          .limit(FAN_OUT_BATCH)
          .execute();
        if (rows.length === 0) return 0;
        const now = Date.now();
        const deliveries = [];
        for (const row of rows) {
          const event: WebhookEvent = {
            id: `tag-history-${Number(row.id)}`,
            type: EVENT_TYPES[row.action],
            action: row.action,
            repository: row.name,
            tag: row.tag,
            digest: row.new_digest,
            previousDigest: row.old_digest,
            actor: row.actor,
            at: new Date(Number(row.at)).toISOString(),
          };
          for (const endpoint of this.settings.endpoints) {
            if (!endpoint.events.includes(event.type as WebhookEventType) || !endpoint.repository.matches(event.repository)) continue;
            deliveries.push({
              endpoint: endpoint.name,
              event_id: event.id,
              event_type: event.type,
              payload: JSON.stringify(event),
              status: 'pending' as const,
              attempts: 0,
              next_at: now,
              created_at: now,
              finished_at: null,
              last_error: null,
            });
          }
        }
        if (deliveries.length > 0) {
          await tx
            .insertInto('webhook_deliveries')
            .values(deliveries)
            .onConflict((oc) => oc.columns(['endpoint', 'event_id']).doNothing())
            .execute();
        }
        await tx.updateTable('lifecycle_state').set({ value: Number(rows[rows.length - 1]!.id) }).where('key', '=', CURSOR).execute();
        return rows.length;
      });
      if (moved < FAN_OUT_BATCH) return;
    }
  }

  /** Delivers the endpoint's due deliveries in order; stops at the first that fails or is not yet due. */
  private async drain(endpoint: WebhookEndpoint): Promise<void> {
    while (!this.closed) {
      const row = await this.db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('endpoint', '=', endpoint.name)
        .where('status', '=', 'pending')
        .orderBy('id')
        .limit(1)
        .executeTakeFirst();
      if (!row || Number(row.next_at) > Date.now()) return;
      const result = await this.send(endpoint, row.event_type, row.event_id, row.payload);
      const attempts = Number(row.attempts) + 1;
      const now = Date.now();
      const failed = !result.ok && attempts >= this.settings.maxAttempts;
      await this.db.transaction().execute(async (tx) => {
        await tx
          .insertInto('webhook_attempts')
          .values({ delivery_id: Number(row.id), endpoint: endpoint.name, at: now, status_code: result.status ?? null, error: result.error ?? null, ms: result.ms })
          .execute();
        await tx
          .updateTable('webhook_deliveries')
          .set({
            attempts,
            status: result.ok ? 'delivered' : failed ? 'failed' : 'pending',
            next_at: result.ok || failed ? now : now + this.backoff(attempts),
            finished_at: result.ok || failed ? now : null,
            last_error: result.ok ? null : (result.error ?? `HTTP ${result.status}`),
          })
          .where('id', '=', Number(row.id))
          .execute();
      });
      if (failed) this.log.warn({ webhook: endpoint.name, event: row.event_id, attempts }, 'webhook delivery gave up');
      if (!result.ok && !failed) return;
    }
  }

  private backoff(attempts: number): number {
    const max = this.settings.backoffMax * 1000;
    return Math.min(max, Math.min(1000, max) * 2 ** (attempts - 1));
  }

  private async send(endpoint: WebhookEndpoint, type: string, eventId: string, body: string): Promise<AttemptResult> {
    const started = Date.now();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'pier-webhook/0.1',
      'x-pier-event': type,
      'x-pier-delivery': eventId,
    };
    if (endpoint.secret) headers['x-pier-signature-256'] = sign(endpoint.secret, body);
    try {
      const res = await fetch(endpoint.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.settings.timeout * 1000), redirect: 'manual' });
      await res.arrayBuffer().catch(() => undefined);
      const ok = res.status >= 200 && res.status < 300;
      return { ok, status: res.status, error: ok ? undefined : `HTTP ${res.status}`, ms: Date.now() - started };
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return { ok: false, status: undefined, error: cause?.code ?? cause?.message ?? (err as Error).message, ms: Date.now() - started };
    }
  }

  endpoint(name: string): WebhookEndpoint {
    const endpoint = this.settings.endpoints.find((e) => e.name === name);
    if (!endpoint) throw new LifecycleError('ERR_WEBHOOK_UNKNOWN', `no webhook named ${JSON.stringify(name)} is configured`);
    return endpoint;
  }

  /** Sends a sample event now, outside the queue, and logs it. */
  async test(name: string, actor: string): Promise<AttemptResult & { event: WebhookEvent }> {
    const endpoint = this.endpoint(name);
    const now = Date.now();
    const event: WebhookEvent = {
      id: `test-${now}`,
      type: 'test',
      action: 'test',
      repository: 'pier/webhook-test',
      tag: 'latest',
      digest: `sha256:${'0'.repeat(64)}`,
      previousDigest: null,
      actor,
      at: new Date(now).toISOString(),
    };
    const payload = JSON.stringify(event);
    const result = await this.send(endpoint, 'test', event.id, payload);
    await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .insertInto('webhook_deliveries')
        .values({
          endpoint: name,
          event_id: event.id,
          event_type: 'test',
          payload,
          status: result.ok ? 'delivered' : 'failed',
          attempts: 1,
          next_at: now,
          created_at: now,
          finished_at: Date.now(),
          last_error: result.ok ? null : (result.error ?? null),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await tx
        .insertInto('webhook_attempts')
        .values({ delivery_id: Number(row.id), endpoint: name, at: now, status_code: result.status ?? null, error: result.error ?? null, ms: result.ms })
        .execute();
    });
    return { ...result, event };
  }

  /** The endpoint's newest deliveries, and its queue's state. */
  async deliveries(name: string, limit: number): Promise<{ pending: number; failed: number; delivered: number; deliveries: DeliveryRecord[] }> {
    this.endpoint(name);
    const counts = await this.db
      .selectFrom('webhook_deliveries')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('endpoint', '=', name)
      .groupBy('status')
      .execute();
    const count = (s: string) => Number(counts.find((c) => c.status === s)?.n ?? 0);
    const rows = await this.db.selectFrom('webhook_deliveries').selectAll().where('endpoint', '=', name).orderBy('id', 'desc').limit(limit).execute();
    return {
      pending: count('pending'),
      failed: count('failed'),
      delivered: count('delivered'),
      deliveries: rows.map((r) => ({
        id: Number(r.id),
        eventId: r.event_id,
        type: r.event_type,
        status: r.status,
        attempts: Number(r.attempts),
        createdAt: new Date(Number(r.created_at)).toISOString(),
        finishedAt: r.finished_at === null ? undefined : new Date(Number(r.finished_at)).toISOString(),
        lastError: r.last_error ?? undefined,
      })),
    };
  }

  /** Stops taking new work and waits for requests in flight (each bounded by webhooks.timeout). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.fanning;
    await Promise.all(this.inflight.values());
  }
}
