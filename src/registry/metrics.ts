/** Prometheus metrics for the registry, served on /metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DiskSpace } from '../store/disk-space.js';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  bytesReceived: Counter;
  bytesSent: Counter;
  blobsCommitted: Counter;
  manifestsPushed: Counter;
  /** Layers the scanner read from the blob store (a cached layer inventory is not read again). */
  scannerLayerReads: Counter;
  /** Requests answered 507: `min_free` (refused below the minimum) or `full` (a write failed for lack of space). */
  storageRefusals: Counter<'reason'>;
  /** Pulls by tag a serve policy refused (`deny`) or let through with a warning (`warn`), by policy and reason. */
  servePolicy: Counter<'policy' | 'outcome' | 'reason'>;
  /** Open client connections. */
  connections: Gauge;
  /** Connections the server closed: `header_timeout`, `idle_timeout`, `body_rate`, `shed`, `refused`. */
  connectionsClosed: Counter<'reason'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pier_' });
  return {
    registry,
    requests: new Counter({ name: 'pier_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    duration: new Histogram({
      name: 'pier_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    bytesReceived: new Counter({ name: 'pier_http_received_bytes_total', help: 'Request body bytes received', registers: [registry] }),
    bytesSent: new Counter({ name: 'pier_http_sent_bytes_total', help: 'Response body bytes sent (by Content-Length)', registers: [registry] }),
    blobsCommitted: new Counter({ name: 'pier_blobs_committed_total', help: 'Blob uploads completed', registers: [registry] }),
    manifestsPushed: new Counter({ name: 'pier_manifests_pushed_total', help: 'Manifests pushed', registers: [registry] }),
    scannerLayerReads: new Counter({ name: 'pier_scanner_layer_reads_total', help: 'Layers the scanner read from the blob store', registers: [registry] }),
    storageRefusals: new Counter({ name: 'pier_storage_refusals_total', help: 'Requests answered 507 for lack of storage, by reason (min_free, full)', labelNames: ['reason'], registers: [registry] }),
    servePolicy: new Counter({ name: 'pier_serve_policy_total', help: 'Pulls by tag a serve policy refused (deny) or let through with a warning (warn)', labelNames: ['policy', 'outcome', 'reason'], registers: [registry] }),
    connections: new Gauge({ name: 'pier_connections', help: 'Open client connections', registers: [registry] }),
    connectionsClosed: new Counter({ name: 'pier_connections_closed_total', help: 'Connections closed by the server, by reason', labelNames: ['reason'], registers: [registry] }),
  };
}

/** Adds `pier_storage_free_bytes` and `pier_storage_min_free_bytes` per watched volume, read at scrape time. */
export function registerDiskSpaceMetrics(metrics: Metrics, space: DiskSpace): void {
  let pending: ReturnType<DiskSpace['status']> | undefined;
  // One statfs round per scrape serves both gauges.
  const read = () =>
    (pending ??= space.status().finally(() => {
      pending = undefined;
    }));
  new Gauge({
    name: 'pier_storage_free_bytes',
    help: 'Free bytes on the volume of each data folder (storage, database)',
    labelNames: ['volume'],
    registers: [metrics.registry],
    async collect() {
      for (const v of await read()) this.set({ volume: v.name }, v.free);
    },
  });
  new Gauge({
    name: 'pier_storage_min_free_bytes',
    help: 'Free bytes below which new uploads are refused',
    labelNames: ['volume'],
    registers: [metrics.registry],
    async collect() {
      for (const v of await read()) this.set({ volume: v.name }, v.minFree);
    },
  });
}
