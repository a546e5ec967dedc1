/**
 * Domain events: what the repository service announces after a change
 * committed. Audit, metrics and webhooks subscribe (wired by the
 * composition root, src/registry/server.ts); the scanner will too.
 *
 * Delivery is synchronous and in process, after the commit: a listener
 * that throws is logged and never undoes the change. What must survive a
 * crash is not an event: webhooks are fanned out from tag_history, which
 * commits with the change, and an event only wakes that queue.
 */
import type { TagChange } from '../store/meta/meta-store.js';

/** Who made a change: the principal's name (as in tag history) and, for a request, its address. */
export interface Actor {
  name: string;
  ip?: string | undefined;
}

export type DomainEvent =
  /** A manifest was stored (by tag, or by digest alone: `tags` empty). `reference` is what the client named. */
  | { type: 'manifest-pushed'; repository: string; digest: string; reference: string; tags: string[]; actor: Actor }
  /** A manifest (by digest) or a tag (by name) was deleted through the registry API. */
  | { type: 'manifest-deleted'; repository: string; reference: string; actor: Actor }
  /**
   * A tag was created, moved, deleted or rolled back (one tag_history row).
   * `actor` is the request's (with its address) when a request made it;
   * `override` marks an admin's delete of an immutable tag.
   */
  | { type: 'tag-changed'; repository: string; change: TagChange; actor?: Actor | undefined; override?: 'immutable' | undefined }
  /** An upload became a blob linked into the repository. */
  | { type: 'blob-committed'; repository: string; digest: string; size: number }
  /** A blob already stored was linked into the repository from `from` (a mount). */
  | { type: 'blob-mounted'; repository: string; digest: string; from: string; actor: Actor }
  /** A blob was unlinked from the repository. */
  | { type: 'blob-deleted'; repository: string; digest: string; actor: Actor }
  /** A serve policy (src/service/serve-policy.ts) refused an image asked for by tag. */
  | ({ type: 'serve-refused' } & ServePolicyRecord)
  /** A serve policy in `warn` mode let an image through that it would have refused. */
  | ({ type: 'serve-warned' } & ServePolicyRecord);

/** What a serve policy said about a pull: `policy` (`signature`, ...), a short `reason`, and the full message. */
export interface ServePolicyRecord {
  repository: string;
  tag: string;
  digest: string;
  policy: string;
  reason: string;
  message: string;
  actor?: Actor | undefined;
}

export type DomainEventType = DomainEvent['type'];
type Listener<T extends DomainEventType> = (event: Extract<DomainEvent, { type: T }>) => void;

export class DomainEvents {
  private readonly listeners = new Map<DomainEventType, ((event: DomainEvent) => void)[]>();

  constructor(private readonly onError: (err: unknown, event: DomainEvent) => void = () => undefined) {}

  on<T extends DomainEventType>(type: T, listener: Listener<T>): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener as (event: DomainEvent) => void);
    this.listeners.set(type, list);
  }

  emit(event: DomainEvent): void {
    for (const listener of this.listeners.get(event.type) ?? []) {
      try {
        listener(event);
      } catch (err) {
        this.onError(err, event);
      }
    }
  }
}
