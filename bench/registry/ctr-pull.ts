/**
 * containerd pulls (and unpacks) one large image: `ctr images pull
 * --plain-http`, a fresh containerd for every pull so nothing is cached
 * client-side. The image (uncompressed tar layers of random bytes) is pushed
 * once, untimed.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { imageConfig, imageManifest, sha256, writeRandomTarLayer, OCI_CONFIG, OCI_MANIFEST } from '../lib/image.js';
import type { Descriptor } from '../lib/image.js';
import { ctrPull } from '../lib/containerd.js';
import { hasNginx, startAccelPier, type AccelPier } from '../lib/nginx.js';
import { RegistryClient } from '../lib/oci-client.js';
import { PeakRss, cpuSeconds, syncDisks } from '../lib/proc.js';
import type { Context, Scenario } from './context.js';
import { GiB, MiB, errorText, order } from './context.js';

const REPO = 'bench/ctr';

export const ctrPullScenario: Scenario = {
  name: 'pull',
  summary: 'containerd (ctr) pulls a large image',
  async run(ctx: Context): Promise<void> {
    const { sizes, results } = ctx;
    const total = sizes.ctrLayers * sizes.ctrLayerBytes;
    const totalLabel = total >= GiB ? `${total / GiB} GiB` : `${total / MiB} MiB`;
    const label = `ctr pull ${totalLabel} image (${sizes.ctrLayers} layers), unpacked`;
    results.metric('pull.wall', `${label}: wall time`, 's', { on: 'ratio', op: '<=', bound: 1.0, text: '≤ 1.0x' });
    results.metric('pull.cpu', `${label}: registry CPU`, 's');
    results.metric('pull.rss', `${label}: registry peak RSS`, 'MB');
    results.metric('getblob.wall', `GET the ${sizes.ctrLayers} layers in parallel (undici, no unpack): wall time`, 's');
    results.metric('getblob.cpu', `GET the ${sizes.ctrLayers} layers in parallel: registry CPU per GiB`, 's/GiB', { on: 'ratio', op: '<=', bound: 1.0, text: '≤ 1.0x' });
    const accelLabel = 'Pier behind nginx (X-Accel-Redirect) vs distribution';
    results.metric('pull-accel.wall', `${label}, ${accelLabel}: wall time`, 's', { on: 'ratio', op: '<=', bound: 1.0, text: '≤ 1.0x' });
    results.metric('getblob-accel.cpu', `GET the ${sizes.ctrLayers} layers, ${accelLabel}: Pier + nginx CPU per GiB`, 's/GiB', { on: 'ratio', op: '<=', bound: 1.0, text: '≤ 1.0x' });

    ctx.log(`generating ${sizes.ctrLayers} tar layers (${totalLabel})`);
    const layers: { desc: Descriptor; path: string }[] = [];
    for (let i = 0; i < sizes.ctrLayers; i++) {
      const path = join(ctx.tmp, `ctr-layer-${i}.tar`);
      layers.push({ desc: await writeRandomTarLayer(path, `data-${i}.bin`, sizes.ctrLayerBytes - 2048), path });
    }
    const cfg = imageConfig(layers.map((l) => l.desc), 'ctr');
    const cfgDesc: Descriptor = { mediaType: OCI_CONFIG, digest: sha256(cfg), size: cfg.length };
    const manifest = imageManifest(cfgDesc, layers.map((l) => l.desc));
    for (const kind of ['pier', 'distribution'] as const) {
      ctx.log(`pushing the pull image to ${kind} (untimed)`);
      const client = ctx.clients[kind];
      try {
        for (const l of layers) {
          if (!(await client.blobExists(REPO, l.desc.digest))) {
            await client.uploadMonolithic(REPO, l.desc.digest, l.desc.size, () => createReadStream(l.path, { highWaterMark: MiB }));
          }
        }
        await client.pushBlob(REPO, cfgDesc.digest, cfg);
        await client.putManifest(REPO, 'latest', manifest, OCI_MANIFEST);
      } catch (err) {
        results.problem('pull.wall', kind, `seeding the image: ${errorText(err)}`);
      }
    }

    let accel: AccelPier | undefined;
    let accelClient: RegistryClient | undefined;
    if (!hasNginx()) results.note('pull-accel: nginx is not installed (scripts/install-deps.sh); the X-Accel-Redirect rows are empty');
    else {
      try {
        ctx.log('starting Pier behind nginx (X-Accel-Redirect) and pushing the pull image to it (untimed)');
        accel = await startAccelPier(join(ctx.tmp, 'pier-accel'));
        accelClient = new RegistryClient(accel.url, 8);
        for (const l of layers) await accelClient.uploadMonolithic(REPO, l.desc.digest, l.desc.size, () => createReadStream(l.path, { highWaterMark: MiB }));
        await accelClient.pushBlob(REPO, cfgDesc.digest, cfg);
        await accelClient.putManifest(REPO, 'latest', manifest, OCI_MANIFEST);
      } catch (err) {
        results.problem('pull-accel.wall', 'pier', `starting or seeding Pier behind nginx: ${errorText(err)}`);
        await accelClient?.close();
        await accel?.stop();
        accel = undefined;
      }
    }

    try {
      for (let round = 0; round < ctx.options.rounds; round++) {
        if (accel && accelClient) {
          const a = accel;
          const pids = [a.pier.pid, a.nginx.pid];
          const cpuNow = () => pids.reduce((t, pid) => t + cpuSeconds(pid), 0);
          ctx.log(`pull round ${round + 1}/${ctx.options.rounds} pier behind nginx`);
          try {
            await syncDisks();
            const r = await ctrPull(join(ctx.tmp, `containerd-accel-${round}`), `${a.host}/${REPO}:latest`, 600_000);
            if (r.ok) results.add('pull-accel.wall', 'pier', r.seconds);
            else results.problem('pull-accel.wall', 'pier', `ctr pull failed: ${r.output.replace(/\s+/g, ' ')}`);
            const cpu0 = cpuNow();
            const got = await Promise.all(layers.map((l) => accelClient.fetchBlob(REPO, l.desc.digest)));
            const bytes = got.reduce((x, y) => x + y, 0);
            if (bytes !== layers.reduce((x, l) => x + l.desc.size, 0)) throw new Error(`received ${bytes} bytes`);
            results.add('getblob-accel.cpu', 'pier', (cpuNow() - cpu0) / (bytes / GiB));
          } catch (err) {
            results.problem('pull-accel.wall', 'pier', errorText(err));
          }
        }
        for (const kind of order(round)) {
          if (ctx.results.metrics.find((m) => m.id === 'pull.wall')?.problems[kind].some((p) => p.startsWith('seeding'))) continue;
          ctx.log(`pull round ${round + 1}/${ctx.options.rounds} ${kind}`);
          const reg = ctx.registries[kind];
          try {
            await syncDisks();
            const cpu0 = cpuSeconds(reg.pid);
            const rss = new PeakRss(reg.pid);
            const r = await ctrPull(join(ctx.tmp, `containerd-${kind}-${round}`), `${reg.host}/${REPO}:latest`, 600_000);
            const cpu = cpuSeconds(reg.pid) - cpu0;
            const peak = rss.stop();
            if (!r.ok) {
              results.problem('pull.wall', kind, `ctr pull failed: ${r.output.replace(/\s+/g, ' ')}`);
              continue;
            }
            results.add('pull.wall', kind, r.seconds);
            if (kind === 'distribution' && accel) results.add('pull-accel.wall', kind, r.seconds);
            results.add('pull.cpu', kind, cpu);
            results.add('pull.rss', kind, peak / 1e6);
          } catch (err) {
            results.problem('pull.wall', kind, errorText(err));
          }
          // The registry side alone: the same layers fetched by a client that
          // only counts bytes, so containerd's writing and unpacking is out.
          try {
            const cpu0 = cpuSeconds(reg.pid);
            const t0 = performance.now();
            const got = await Promise.all(layers.map((l) => ctx.clients[kind].fetchBlob(REPO, l.desc.digest)));
            const seconds = (performance.now() - t0) / 1000;
            const bytes = got.reduce((a, b) => a + b, 0);
            if (bytes !== layers.reduce((a, l) => a + l.desc.size, 0)) throw new Error(`received ${bytes} bytes`);
            results.add('getblob.wall', kind, seconds);
            const perGiB = (cpuSeconds(reg.pid) - cpu0) / (bytes / GiB);
            results.add('getblob.cpu', kind, perGiB);
            // The X-Accel-Redirect rows compare with distribution as it is (it always sends the bytes itself).
            if (kind === 'distribution' && accel) results.add('getblob-accel.cpu', kind, perGiB);
          } catch (err) {
            results.problem('getblob.wall', kind, errorText(err));
          }
        }
      }
    } finally {
      await accelClient?.close();
      await accel?.stop();
    }
  },
};
