/**
 * A client for Pier's own JSON API (/pier/v1, docs/api.md): tag history,
 * rollback, GC, retention, usage and webhook tests. It rides on a
 * {@link Registry}, so credentials, retries and TLS are those of every
 * other registry call. The response types are the server's (src/api/pier-v1.ts).
 */
import type { GcResponse, RetentionResponse, RollbackResponse, TagHistoryResponse, WebhookTestResponse } from '../api/pier-v1.js';
import type { RepositoryName } from '../oci/reference.js';
import { scope, type Action, type Registry } from './registry.js';
import { readBody, type HttpRequest } from './transport.js';

export type { GcResponse, HistoryChange, HistoryVersion, RetentionResponse, RollbackResponse, TagHistoryResponse, WebhookTestResponse } from '../api/pier-v1.js';

export class PierApi {
  constructor(private readonly registry: Registry) {}

  private async call<T>(method: HttpRequest['method'], path: string, what: string, options: { body?: unknown; repository?: string; actions?: Action[] } = {}): Promise<T> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const res = await this.registry.request({
      method,
      url: new URL(path, this.registry.base),
      headers: body ? { 'content-type': 'application/json' } : {},
      ...(body ? { body } : {}),
      scopes: options.repository ? [scope(options.repository, ...(options.actions ?? ['pull']))] : [],
    });
    if (res.status !== 200) throw await this.registry.fail(res, what, options.repository, options.actions);
    return JSON.parse((await readBody(res)).toString('utf8')) as T;
  }

  history(repository: RepositoryName, tag: string, limit?: number): Promise<TagHistoryResponse> {
    return this.call('GET', `/pier/v1/repositories/${repository}/tags/${tag}/history${limit ? `?limit=${limit}` : ''}`, `reading the history of ${tag}`, { repository });
  }

  rollback(repository: RepositoryName, tag: string, target: { to: string } | { steps: number }): Promise<RollbackResponse> {
    return this.call('POST', `/pier/v1/repositories/${repository}/tags/${tag}/rollback`, `rolling back ${tag}`, { body: target, repository, actions: ['pull', 'push'] });
  }

  gc(dryRun: boolean): Promise<GcResponse> {
    return this.call('POST', `/pier/v1/gc${dryRun ? '?dryRun=1' : ''}`, 'garbage collection');
  }

  retention(apply: boolean): Promise<RetentionResponse> {
    return this.call('POST', `/pier/v1/retention${apply ? '?apply=1' : ''}`, 'retention');
  }

  webhookTest(name: string): Promise<WebhookTestResponse> {
    return this.call('POST', `/pier/v1/webhooks/${encodeURIComponent(name)}/test`, `testing webhook ${name}`);
  }
}
