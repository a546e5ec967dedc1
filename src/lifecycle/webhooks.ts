/**
 * Webhooks for CI/CD, delivered from a durable queue.
 *
 * Events come from tag_history, which the metadata store writes in the
 * same transaction as every tag change: a committed change is an event,
 * and a crash cannot lose one. A fan-out step copies new history rows
 * (after a cursor kept in lifecycle_state) into one webhook_deliveries row
 * per matching endpoint, moving the cursor in the same transaction.
 *
 * Each endpoint's queue is delivered strictly in order, one at a time (by
 * the replica holding the `webhook-delivery` lease, under a lock per
 * endpoint, both from the coordinator):
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
import type { Coordinator } from '../store/coordinator/coordinator.js';
import type { NewDelivery, WebhookOutbox } from '../store/meta/lifecycle-store.js';
import { LifecycleError } from './errors.js';
import type { WebhookEndpoint, WebhookEventType } from './rules.js';

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
/** How long the delivering replica keeps the lease without renewing it (each tick renews). */
const DELIVERY_LEASE_MS = 10_000;

export const EVENT_TYPES: Record<TagAction, WebhookEventType> = { create: 'push', move: 'tag_move', delete: 'delete', rollback: 'rollback' };

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  /** This process's delivery runs, for close() to wait on (which endpoint is being drained is the coordinator's). */
  private readonly running = new Set<Promise<void>>();
  private fanning: Promise<void> | undefined;
  private again = false;
  private nudged = false;
  private closed = false;

  constructor(
    private readonly db: WebhookOutbox,
    private readonly coordinator: Pick<Coordinator, 'tryLock' | 'acquireLease'>,
    private readonly settings: WebhookSettings,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    // First start: history written before this version is not replayed.
    await this.db.initCursor();
    // The tick retries due deliveries and picks up other replicas' commits. With no endpoint there is
    // nothing to deliver: the cursor moves on the nudges after this replica's own tag commits.
    if (this.settings.endpoints.length > 0) {
      this.timer = setInterval(() => this.nudge(), TICK_MS);
      this.timer.unref();
    }
    this.nudge();
  }

  /**
   * Looks for new events and due deliveries (called after a tag commit),
   * once for all the nudges of this turn of the event loop: a push's
   * manifest and tag events, and concurrent pushes, share one fan-out.
   */
  nudge(): void {
    if (this.closed || this.nudged) return;
    this.nudged = true;
    setImmediate(() => {
      this.nudged = false;
      this.fanOutNow();
    });
  }

  private fanOutNow(): void {
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
      // One delivering replica (the lease), one drain per endpoint (the lock): each queue stays in order.
      if (this.settings.endpoints.length === 0 || !(await this.coordinator.acquireLease('webhook-delivery', DELIVERY_LEASE_MS))) return;
      for (const endpoint of this.settings.endpoints) {
        const release = await this.coordinator.tryLock(`webhook:${endpoint.name}`);
        if (!release) continue;
        const run: Promise<void> = this.drain(endpoint)
          .catch((err: unknown) => this.log.error({ err, webhook: endpoint.name }, 'webhook delivery failed'))
          .finally(async () => {
            this.running.delete(run);
            await release();
          });
        this.running.add(run);
      }
    })()
      .catch((err: unknown) => this.log.error({ err }, 'webhook fan-out failed'))
      .finally(() => {
        this.fanning = undefined;
      });
  }

  /**
   * The deliveries of an event that does not come from tag_history (a
   * finished scan): one per endpoint subscribed to `type` whose pattern
   * matches the repository. The caller writes them in the transaction
   * that records the event (SupplyStore.saveScan), then calls nudge().
   */
  plan(type: WebhookEventType, repository: string, eventId: string, payload: string): NewDelivery[] {
    return this.settings.endpoints
      .filter((e) => e.events.includes(type) && e.repository.matches(repository))
      .map((e) => ({ endpoint: e.name, eventId, eventType: type, payload }));
  }

  /** Copies tag_history rows after the cursor into deliveries, moving the cursor, in one transaction. */
  private async fanOut(): Promise<void> {
    for (;;) {
      const moved = await this.db.fanOut(FAN_OUT_BATCH, (rows) => {
        const deliveries: NewDelivery[] = [];
        for (const row of rows) {
          const event: WebhookEvent = {
            id: `tag-history-${row.id}`,
            type: EVENT_TYPES[row.action],
            action: row.action,
            repository: row.repository,
            tag: row.tag,
            digest: row.newDigest,
            previousDigest: row.oldDigest,
            actor: row.actor,
            at: new Date(row.at).toISOString(),
          };
          for (const endpoint of this.settings.endpoints) {
            if (!endpoint.events.includes(event.type as WebhookEventType) || !endpoint.repository.matches(event.repository)) continue;
            deliveries.push({ endpoint: endpoint.name, eventId: event.id, eventType: event.type, payload: JSON.stringify(event) });
          }
        }
        return deliveries;
      });
      if (moved < FAN_OUT_BATCH) return;
    }
  }

  /** Delivers the endpoint's due deliveries in order; stops at the first that fails or is not yet due. */
  private async drain(endpoint: WebhookEndpoint): Promise<void> {
    while (!this.closed) {
      const row = await this.db.nextPending(endpoint.name);
      if (!row || row.nextAt > Date.now()) return;
      const result = await this.send(endpoint, row.eventType, row.eventId, row.payload);
      const attempts = row.attempts + 1;
      const now = Date.now();
      const failed = !result.ok && attempts >= this.settings.maxAttempts;
      await this.db.recordAttempt(
        row,
        { at: now, statusCode: result.status, error: result.error, ms: result.ms },
        {
          attempts,
          status: result.ok ? 'delivered' : failed ? 'failed' : 'pending',
          nextAt: result.ok || failed ? now : now + this.backoff(attempts),
          finishedAt: result.ok || failed ? now : undefined,
          lastError: result.ok ? undefined : (result.error ?? `HTTP ${result.status}`),
        },
      );
      if (failed) this.log.warn({ webhook: endpoint.name, event: row.eventId, attempts }, 'webhook delivery gave up');
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
    await this.db.recordSent(
      { endpoint: name, eventId: event.id, eventType: 'test', payload, status: result.ok ? 'delivered' : 'failed', createdAt: now, finishedAt: Date.now(), lastError: result.ok ? undefined : result.error },
      { at: now, statusCode: result.status, error: result.error, ms: result.ms },
    );
    return { ...result, event };
  }

  /** The endpoint's newest deliveries, and its queue's state. */
  async deliveries(name: string, limit: number): Promise<{ pending: number; failed: number; delivered: number; deliveries: DeliveryRecord[] }> {
    this.endpoint(name);
    const counts = await this.db.deliveryCounts(name);
    const rows = limit > 0 ? await this.db.recentDeliveries(name, limit) : [];
    return {
      ...counts,
      deliveries: rows.map((r) => ({
        id: r.id,
        eventId: r.eventId,
        type: r.eventType,
        status: r.status,
        attempts: r.attempts,
        createdAt: new Date(r.createdAt).toISOString(),
        finishedAt: r.finishedAt === undefined ? undefined : new Date(r.finishedAt).toISOString(),
        lastError: r.lastError,
      })),
    };
  }

  /** Stops taking new work and waits for requests in flight (each bounded by webhooks.timeout). */
  async close(): Promise<void> {
    // A nudge of this turn still fans out: a graceful stop leaves no committed event behind the cursor.
    if (this.nudged) {
      this.nudged = false;
      this.fanOutNow();
    }
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.fanning;
    await Promise.all(this.running);
  }
}
