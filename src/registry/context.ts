/** What every route handler gets: the stores, config, gate and the request at hand. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobStore } from '../store/blob/blob-store.js';
import type { MetaStore } from '../store/meta/meta-store.js';
import type { AccessGate, Action, Principal } from './access.js';
import type { RegistryConfig } from './config.js';
import type { Metrics } from './metrics.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { parseRepositoryName, type RepositoryName } from '../oci/reference.js';

export interface RegistryDeps {
  config: RegistryConfig;
  blobs: BlobStore;
  meta: MetaStore;
  gate: AccessGate;
  metrics: Metrics;
  /** History, rules, GC, quotas, webhooks: routes call its LifecycleHooks where a push or delete commits. */
  lifecycle: Lifecycle;
}

export class Call {
  /** Bytes of request body consumed, for the access log. */
  bytesIn = 0;
  principal: Principal | undefined;

  constructor(
    readonly deps: RegistryDeps,
    readonly req: FastifyRequest,
    readonly reply: FastifyReply,
    readonly query: URLSearchParams,
  ) {}

  identity() {
    return { headers: this.req.headers, ip: this.req.ip };
  }

  /** Parses the repository name, then checks the caller's rights on it. */
  async repository(raw: string, actions: Action[]): Promise<{ name: RepositoryName; principal: Principal }> {
    const name = parseRepositoryName(raw);
    const principal = await this.deps.gate.require(this.identity(), { repository: name, actions });
    this.principal = principal;
    return { name, principal };
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}
