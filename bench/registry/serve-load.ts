/**
 * Read load: GET manifest by tag, HEAD manifest, HEAD blob, each at N
 * keep-alive connections for a fixed time with `ab`; throughput and p99.
 */
import { runLoad } from '../lib/ab.js';
import type { LoadOptions } from '../lib/ab.js';
import { MANIFEST_ACCEPT } from '../lib/oci-client.js';
import { memoryImage, randomBuffer, OCI_MANIFEST } from '../lib/image.js';
import type { RegistryKind } from '../lib/registries.js';
import type { Context, Scenario } from './context.js';
import { MiB, errorText, order } from './context.js';

const REPO = 'bench/serve';

export const serveLoad: Scenario = {
  name: 'serve',
  summary: 'GET manifest, HEAD manifest, HEAD blob under load',
  async run(ctx: Context): Promise<void> {
    const { sizes, results } = ctx;
    const c = sizes.loadConnections;
    const s = sizes.loadSeconds;
    const image = memoryImage([randomBuffer(MiB), randomBuffer(2 * MiB)], 'serve');
    const blob = image.layers[1]!.desc;
    for (const kind of ['pier', 'distribution'] as const) {
      const client = ctx.clients[kind];
      for (const l of [...image.layers, image.config]) await client.pushBlob(REPO, l.desc.digest, l.data);
      await client.putManifest(REPO, 'latest', image.manifest, OCI_MANIFEST);
      const got = await client.getManifest(REPO, 'latest');
      if (!got.body.equals(image.manifest)) results.note(`${kind}: GET manifest returned different bytes than were pushed`);
      const dcd = got.headers['docker-content-digest'];
      if (dcd !== image.manifestDigest) results.note(`${kind}: GET manifest Docker-Content-Digest is ${String(dcd)}, want ${image.manifestDigest}`);
    }

    const cases: { id: string; label: string; load: (kind: RegistryKind) => LoadOptions }[] = [
      {
        id: 'get-manifest',
        label: 'GET manifest by tag',
        load: (k) => ({ url: `${ctx.registries[k].url}/v2/${REPO}/manifests/latest`, method: 'GET', connections: c, seconds: s, headers: { Accept: MANIFEST_ACCEPT } }),
      },
      {
        id: 'head-manifest',
        label: 'HEAD manifest by tag',
        load: (k) => ({ url: `${ctx.registries[k].url}/v2/${REPO}/manifests/latest`, method: 'HEAD', connections: c, seconds: s, headers: { Accept: MANIFEST_ACCEPT } }),
      },
      {
        id: 'head-blob',
        label: 'HEAD blob',
        load: (k) => ({ url: `${ctx.registries[k].url}/v2/${REPO}/blobs/${blob.digest}`, method: 'HEAD', connections: c, seconds: s }),
      },
    ];
    for (const cs of cases) {
      results.metric(`${cs.id}.rps`, `${cs.label}, ${c} conns, ${s} s: throughput`, 'req/s', { on: 'ratio', op: '>=', bound: 3, text: '≥ 3x' });
      results.metric(`${cs.id}.p99`, `${cs.label}: p99 latency`, 'ms', { on: 'ratio', op: '<=', bound: 0.5, text: '≤ 0.5x' });
      for (let round = 0; round < ctx.options.rounds; round++) {
        for (const kind of order(round)) {
          ctx.log(`${cs.id} round ${round + 1}/${ctx.options.rounds} ${kind}`);
          try {
            const r = await runLoad(cs.load(kind));
            results.add(`${cs.id}.rps`, kind, r.requestsPerSecond);
            results.add(`${cs.id}.p99`, kind, r.p99Ms);
            if (r.non2xx > 0) results.problem(`${cs.id}.rps`, kind, `${r.non2xx} of ${r.completed} responses not 2xx`);
            if (r.failed > 0) results.problem(`${cs.id}.rps`, kind, `ab counted ${r.failed} failed requests (connect/length/exceptions)`);
          } catch (err) {
            results.problem(`${cs.id}.rps`, kind, errorText(err));
          }
        }
      }
    }
  },
};
