/**
 * A client for Pier's own JSON API (/pier/v1, docs/api.md): tag history,
 * rollback, GC, retention, usage, webhook tests, and administration of
 * users, groups, tokens and policy rules. It rides on a
 * {@link Registry}, so credentials, retries and TLS are those of every
 * other registry call. The response types are the server's (src/api/pier-v1.ts).
 */
import type { ScanResponse, VulnDbRecordsResponse, VulnDbResponse, GcResponse, GroupInfo, ImportResponse, NewToken, RetentionResponse, RollbackResponse, RuleInfo, TagHistoryResponse, TokenInfo, UserInfo, WebhookTestResponse } from '../api/pier-v1.js';
import type { RepositoryName } from '../oci/reference.js';
import { scope, type Action, type Registry } from './registry.js';
import { Readable } from 'node:stream';
import { ClientError } from './errors.js';
import { readBody, type HttpRequest } from './transport.js';

export type { ScanFinding, ScanResponse, VulnDbRecordsResponse, VulnDbResponse, GcResponse, GroupInfo, HistoryChange, HistoryVersion, ImportResponse, NewToken, RetentionResponse, RollbackResponse, RuleInfo, TagHistoryResponse, TokenInfo, UserInfo, WebhookTestResponse } from '../api/pier-v1.js';

const seg = encodeURIComponent;

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
    if (res.status === 200) return JSON.parse((await readBody(res)).toString('utf8')) as T;
    // An answer the server explains (no such user, name taken, bad input) is reported in its words.
    // A 403 (not an admin) is a refusal like any other: refusalError words it (`denied: …`, docs/errors.md).
    const answer = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
    let message: string | undefined;
    try {
      message = (JSON.parse(answer.toString('utf8')) as { errors?: { message?: string }[] }).errors?.[0]?.message;
    } catch {
      // not an OCI error body
    }
    if (message && [400, 404, 409].includes(res.status)) {
      const code = res.status === 404 ? 'ERR_NOT_FOUND' : 'ERR_HTTP_STATUS';
      throw new ClientError(code, `${what}: ${this.registry.registry}: ${message}`, { status: res.status });
    }
    throw await this.registry.fail({ ...res, body: Readable.from([answer]) }, what, options.repository, options.actions);
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

  // ---- scans and the vulnerability database

  /** The image's scan (`reference`: a tag or digest); `now` scans it first. */
  scan(repository: RepositoryName, reference: string, now: boolean): Promise<ScanResponse> {
    return this.call(now ? 'POST' : 'GET', `/pier/v1/repositories/${repository}/scans/${reference}`, `scanning ${repository}:${reference}`, { repository });
  }

  vulnDb(): Promise<VulnDbResponse> {
    return this.call('GET', '/pier/v1/vulndb', 'reading the vulnerability database state');
  }

  vulnDbRecords(records: unknown[]): Promise<VulnDbRecordsResponse> {
    return this.call('POST', '/pier/v1/vulndb/records', 'importing vulnerability records', { body: { records } });
  }

  vulnDbFinish(databaseDate: string, records: number): Promise<VulnDbResponse> {
    return this.call('POST', '/pier/v1/vulndb/imports', 'finishing the vulnerability database import', { body: { databaseDate, records } });
  }

  // ---- administration (admin only)

  listUsers(): Promise<{ users: UserInfo[] }> {
    return this.call('GET', '/pier/v1/users', 'listing users');
  }

  addUser(name: string, password: string, admin: boolean): Promise<{ name: string; admin: boolean }> {
    return this.call('POST', '/pier/v1/users', `adding user ${name}`, { body: { name, password, admin } });
  }

  importHtpasswd(htpasswd: string, update: boolean): Promise<ImportResponse> {
    return this.call('POST', '/pier/v1/users/import', 'importing users', { body: { htpasswd, update } });
  }

  removeUser(name: string): Promise<unknown> {
    return this.call('DELETE', `/pier/v1/users/${seg(name)}`, `removing user ${name}`);
  }

  changePassword(name: string, password: string): Promise<unknown> {
    return this.call('PUT', `/pier/v1/users/${seg(name)}/password`, `changing the password of ${name}`, { body: { password } });
  }

  setAdmin(name: string, admin: boolean): Promise<unknown> {
    return this.call('PUT', `/pier/v1/users/${seg(name)}/admin`, `setting admin of ${name}`, { body: { admin } });
  }

  listGroups(): Promise<{ groups: GroupInfo[] }> {
    return this.call('GET', '/pier/v1/groups', 'listing groups');
  }

  addGroup(name: string): Promise<unknown> {
    return this.call('POST', '/pier/v1/groups', `adding group ${name}`, { body: { name } });
  }

  removeGroup(name: string): Promise<unknown> {
    return this.call('DELETE', `/pier/v1/groups/${seg(name)}`, `removing group ${name}`);
  }

  addMember(group: string, user: string): Promise<unknown> {
    return this.call('PUT', `/pier/v1/groups/${seg(group)}/members/${seg(user)}`, `adding ${user} to ${group}`);
  }

  removeMember(group: string, user: string): Promise<unknown> {
    return this.call('DELETE', `/pier/v1/groups/${seg(group)}/members/${seg(user)}`, `removing ${user} from ${group}`);
  }

  listTokens(): Promise<{ tokens: TokenInfo[] }> {
    return this.call('GET', '/pier/v1/tokens', 'listing tokens');
  }

  createToken(token: { name: string; scopes: string[]; expiresIn?: number | undefined; owner?: string | undefined }): Promise<NewToken> {
    return this.call('POST', '/pier/v1/tokens', `creating token ${token.name}`, { body: token });
  }

  revokeToken(name: string): Promise<unknown> {
    return this.call('DELETE', `/pier/v1/tokens/${seg(name)}`, `revoking token ${name}`);
  }

  listRules(): Promise<{ rules: RuleInfo[] }> {
    return this.call('GET', '/pier/v1/policy', 'listing policy rules');
  }

  addRule(subject: string, repositories: string, actions: string[]): Promise<{ id: number }> {
    return this.call('POST', '/pier/v1/policy', 'adding a policy rule', { body: { subject, repositories, actions } });
  }

  removeRule(id: number): Promise<unknown> {
    return this.call('DELETE', `/pier/v1/policy/${id}`, `removing rule ${id}`);
  }
}
