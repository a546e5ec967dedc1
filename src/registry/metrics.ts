/** Prometheus metrics for the registry, served on /metrics. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
  bytesReceived: Counter;
  bytesSent: Counter;
  blobsCommitted: Counter;
  manifestsPushed: Counter;
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
  };
}
