/**
 * Many clients pushing at once: N images of 3 layers (one base layer shared by
 * all, two of their own) plus a config, each to its own repository, all
 * started together. Each push HEADs every blob first (as docker and skopeo
 * do), uploads the missing ones monolithically (POST + PUT) in parallel, then
 * PUTs the manifest. Fresh content every round.
 */
import { memoryImage, randomBuffer, OCI_MANIFEST } from '../lib/image.js';
import type { MemoryImage } from '../lib/image.js';
import { RegistryClient } from '../lib/oci-client.js';
import { PeakRss, cpuSeconds, syncDisks } from '../lib/proc.js';
import type { Context, Scenario } from './context.js';
import { MiB, errorText, order } from './context.js';

function images(n: number, layerBytes: number, label: string): MemoryImage[] {
  const base = randomBuffer(layerBytes);
  return Array.from({ length: n }, (_, i) => memoryImage([base, randomBuffer(layerBytes), randomBuffer(layerBytes)], `${label}-${i}`));
}

async function pushImage(client: RegistryClient, repo: string, image: MemoryImage): Promise<void> {
  await Promise.all([...image.layers, image.config].map((b) => client.pushBlob(repo, b.desc.digest, b.data)));
  const digest = await client.putManifest(repo, 'latest', image.manifest, OCI_MANIFEST);
  if (digest !== undefined && digest !== image.manifestDigest) throw new Error(`manifest digest ${digest}, want ${image.manifestDigest}`);
}

export const concurrentPush: Scenario = {
  name: 'push',
  summary: 'concurrent pushes of a 3-layer image to separate repositories',
  async run(ctx: Context): Promise<void> {
    const { sizes, results } = ctx;
    const n = sizes.pushes;
    const label = `${n} concurrent pushes, 3 × ${sizes.pushLayerBytes / MiB} MiB layers`;
    results.metric('push.wall', `${label}: wall time`, 's', { on: 'ratio', op: '<=', bound: 0.7, text: '≤ 0.7x' });
    results.metric('push.errors', `${label}: failed pushes`, '', { on: 'pier', op: '<=', bound: 0, text: '0' });
    results.metric('push.rss', `${label}: registry peak RSS`, 'MB', { on: 'pier', op: '<=', bound: 250, text: '≤ 250 MB' });
    results.metric('push.cpu', `${label}: registry CPU`, 's');
    for (let round = 0; round < ctx.options.rounds; round++) {
      for (const kind of order(round)) {
        ctx.log(`push round ${round + 1}/${ctx.options.rounds} ${kind}: generating ${n * 2 + 1} layers`);
        const imgs = images(n, sizes.pushLayerBytes, `r${round}-${kind}`);
        const reg = ctx.registries[kind];
        // One client per pusher would be closer to reality; one pool with a
        // connection per concurrent request is equivalent on the wire.
        const client = new RegistryClient(reg.url, n * 4);
        try {
          await syncDisks();
          ctx.log(`push round ${round + 1}/${ctx.options.rounds} ${kind}: pushing`);
          const cpu0 = cpuSeconds(reg.pid);
          const rss = new PeakRss(reg.pid);
          const t0 = performance.now();
          const outcomes = await Promise.allSettled(imgs.map((img, i) => pushImage(client, `bench/push-r${round}-${i}`, img)));
          const seconds = (performance.now() - t0) / 1000;
          const cpu = cpuSeconds(reg.pid) - cpu0;
          const peak = rss.stop();
          const failed = outcomes.filter((o) => o.status === 'rejected');
          results.add('push.wall', kind, seconds);
          results.add('push.errors', kind, failed.length);
          results.add('push.rss', kind, peak / 1e6);
          results.add('push.cpu', kind, cpu);
          for (const f of failed.slice(0, 3)) results.problem('push.errors', kind, errorText(f.reason));
          // Spot-check that what was pushed can be read back.
          for (const i of [0, n - 1]) {
            const got = await client.getManifest(`bench/push-r${round}-${i}`, 'latest').catch((err: unknown) => err);
            if (got instanceof Error) results.problem('push.errors', kind, `read-back: ${errorText(got)}`);
          }
        } catch (err) {
          results.problem('push.wall', kind, errorText(err));
        } finally {
          await client.close();
        }
      }
    }
  },
};
