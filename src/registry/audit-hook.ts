/**
 * Writes the audit log's record of changes: every manifest push (`push`,
 * with the tag or digest) and every delete of a manifest, tag or blob,
 * with who did it and from where. Denials and failed logins are recorded
 * by the access gate itself.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../auth/store.js';
import { matchRoute } from './router.js';

export function registerAuditHook(app: FastifyInstance, audit: AuditLog, log: { error(obj: object, msg: string): void }): void {
  app.addHook('onResponse', async (req, reply) => {
    const method = req.method;
    if (method !== 'PUT' && method !== 'DELETE') return;
    const status = reply.statusCode;
    if (status !== 201 && status !== 202) return;
    let pathname = req.url.split('?')[0] ?? '';
    try {
      pathname = decodeURIComponent(pathname);
    } catch {
      return;
    }
    const route = matchRoute(pathname);
    if (!route) return;
    let action: string;
    let target: string;
    if (route.kind === 'manifest') {
      action = method === 'PUT' ? 'push' : 'delete';
      target = route.reference;
    } else if (route.kind === 'blob' && method === 'DELETE') {
      action = 'delete-blob';
      target = route.digest;
    } else {
      return;
    }
    audit
      .record({ at: new Date(), actor: req.call?.principal?.name ?? 'anonymous', ip: req.ip, action, repository: route.name, target, outcome: 'ok' })
      .catch((err: unknown) => log.error({ err }, 'writing the audit log failed'));
  });
}
