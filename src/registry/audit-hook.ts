/**
 * The audit log's record of changes to what the registry stores: a
 * listener on the repository service's domain events
 * (src/service/events.ts), which the service emits where each change is
 * made, once it committed — never inferred from HTTP responses, so an
 * admin delete through /pier/v1, a rollback and retention's deletions are
 * recorded as surely as a push.
 *
 * Actions: `push` (target: the reference pushed), `delete` (a manifest or
 * tag deleted through /v2), `delete-blob`, `mount` (target `DIGEST from
 * REPO`), and one entry per tag change: `tag-create`, `tag-move`,
 * `tag-delete`, `override-delete` (an immutable tag deleted by an admin),
 * `rollback` (target `TAG OLD -> NEW`). A pull a serve policy refused
 * is `policy-deny` (outcome `denied`), one it let through in `warn` mode
 * `policy-warn` (target `TAG DIGEST POLICY: REASON`). Account, token and policy changes
 * are recorded by the account store in the same transaction as the change
 * (src/store/meta/sql/sql-account-store.ts); denials and failed logins by
 * the access gate.
 */
import type { AuditEntry, AuditLog } from '../auth/store.js';
import type { DomainEvent, DomainEvents } from '../service/events.js';

type Logger = { error(obj: object, msg: string): void };

const TAG_ACTIONS = { create: 'tag-create', move: 'tag-move', delete: 'tag-delete', rollback: 'rollback' } as const;

/** The audit entry for a change, or undefined for events that are not one (a blob committed is part of a push). */
export function auditEntryOf(event: DomainEvent, at = new Date()): AuditEntry | undefined {
  const ok = { at, outcome: 'ok' as const };
  switch (event.type) {
    case 'manifest-pushed':
      return { ...ok, actor: event.actor.name, ip: event.actor.ip, action: 'push', repository: event.repository, target: event.reference };
    case 'manifest-deleted':
      return { ...ok, actor: event.actor.name, ip: event.actor.ip, action: 'delete', repository: event.repository, target: event.reference };
    case 'blob-deleted':
      return { ...ok, actor: event.actor.name, ip: event.actor.ip, action: 'delete-blob', repository: event.repository, target: event.digest };
    case 'blob-mounted':
      return { ...ok, actor: event.actor.name, ip: event.actor.ip, action: 'mount', repository: event.repository, target: `${event.digest} from ${event.from}` };
    case 'tag-changed': {
      const { change } = event;
      const action = change.action === 'delete' && event.override ? 'override-delete' : TAG_ACTIONS[change.action];
      const target = change.action === 'delete' ? change.tag : `${change.tag} ${change.oldDigest ?? '-'} -> ${change.newDigest ?? '-'}`;
      // A job (retention) has no request: its name is the tag history's actor.
      return { ...ok, actor: event.actor?.name ?? change.actor, ip: event.actor?.ip, action, repository: event.repository, target };
    }
    case 'serve-refused':
    case 'serve-warned':
      // A pull a serve policy refused (`denied`) or let through with a warning (`ok`): `policy-deny` / `policy-warn`.
      return {
        at,
        outcome: event.type === 'serve-refused' ? 'denied' : 'ok',
        actor: event.actor?.name ?? 'anonymous',
        ip: event.actor?.ip,
        action: event.type === 'serve-refused' ? 'policy-deny' : 'policy-warn',
        repository: event.repository,
        target: `${event.tag} ${event.digest} ${event.policy}: ${event.reason}`,
      };
    case 'blob-committed':
      return undefined;
  }
}

/** Records every change event in `audit`; a failed write is logged (the change itself has happened). */
export function registerAuditHook(events: DomainEvents, audit: AuditLog, log: Logger): void {
  const record = (event: DomainEvent) => {
    const entry = auditEntryOf(event);
    if (entry) audit.record(entry).catch((err: unknown) => log.error({ err }, 'writing the audit log failed'));
  };
  for (const type of ['manifest-pushed', 'manifest-deleted', 'blob-deleted', 'blob-mounted', 'tag-changed', 'serve-refused', 'serve-warned'] as const) events.on(type, record);
}
