/** What every route handler gets: the repository service, config, gate and the request at hand. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessGate, Action, Principal } from '../auth/access.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { DiskSpace } from '../store/disk-space.js';
import type { AuthStore } from '../auth/store.js';
import type { WebSessions } from '../auth/sessions.js';
import type { SessionRecord } from '../store/meta/sessions.js';
import type { ImageViews } from '../service/image-view.js';
import { parseRepositoryName, type RepositoryName } from '../oci/reference.js';
import type { Actor } from '../service/events.js';
import type { RepositoryService } from '../service/repository-service.js';
import type { RegistryConfig } from './config.js';
import type { Metrics } from './metrics.js';
import type { Supply } from '../supply/supply.js';

export interface RegistryDeps {
  config: RegistryConfig;
  /** Every read and change of a repository goes through it. */
  service: RepositoryService;
  gate: AccessGate;
  metrics: Metrics;
  /** The /pier/v1 admin services: history, GC, retention, usage, webhooks. */
  lifecycle: Lifecycle;
  /** Free space of the data folders, for /healthz (absent: not watched). */
  space?: DiskSpace;
  /**
   * Users, groups, tokens and rules for the admin API; `refresh` makes the
   * gate see a change at once. Absent when the registry runs with a custom gate.
   */
  accounts?: { store: AuthStore; refresh(): Promise<void> } | undefined;
  /** What the web UI's endpoints read, through the service (src/service/image-view.ts), and its sessions (absent without accounts). */
  web: { views: ImageViews; sessions: WebSessions | undefined };
  /** Scans, SBOMs and the vulnerability database (src/supply). */
  supply: Supply;
}

export class Call {
  /** Bytes of request body consumed, for the access log. */
  bytesIn = 0;
  principal: Principal | undefined;
  /** The web UI session this request carries (resolved from its cookie under /pier/ only). */
  session: SessionRecord | undefined;

  constructor(
    readonly deps: RegistryDeps,
    readonly req: FastifyRequest,
    readonly reply: FastifyReply,
    readonly query: URLSearchParams,
  ) {}

  identity() {
    return { headers: this.req.headers, ip: this.req.ip, session: this.session?.user };
  }

  /** Parses the repository name, then checks the caller's rights on it. */
  async repository(raw: string, actions: Action[]): Promise<{ name: RepositoryName; principal: Principal }> {
    const name = parseRepositoryName(raw);
    const principal = await this.deps.gate.require(this.identity(), { repository: name, actions });
    this.principal = principal;
    return { name, principal };
  }

  /** Who is making this request, for tag history and the audit log. */
  actor(principal: Principal): Actor {
    return { name: principal.name, ip: this.req.ip };
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}
