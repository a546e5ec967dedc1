/**
 * One large blob, uploaded monolithically (POST + one PUT) and in fixed-size
 * chunks (POST, PATCH..., PUT). Each upload has fresh content (a new digest),
 * dirty pages are flushed before it starts, and the registry's CPU time and
 * peak RSS are read from /proc around it.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { MutableRandomFile } from '../lib/image.js';
import { PeakRss, cpuTimes, syncDisks } from '../lib/proc.js';
import type { Context, Scenario } from './context.js';
import { GiB, MiB, errorText, order } from './context.js';

function sizeLabel(bytes: number): string {
  return bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`;
}

export const upload: Scenario = {
  name: 'upload',
  summary: 'upload one large blob, monolithic and chunked',
  async run(ctx: Context): Promise<void> {
    const { sizes, results } = ctx;
    const size = sizes.uploadBytes;
    ctx.log(`generating ${sizeLabel(size)} of random data`);
    const file = await MutableRandomFile.create(join(ctx.tmp, 'upload.bin'), size);
    const modes = [
      { id: 'upload-mono', label: `upload ${sizeLabel(size)} blob, monolithic` },
      { id: 'upload-chunked', label: `upload ${sizeLabel(size)} blob, ${sizes.uploadChunk / MiB} MiB chunks` },
    ] as const;
    for (const mode of modes) {
      // Issue 16: monolithic ≤ 0.7x, chunked ≤ 0.8x of distribution (wall and CPU per GiB).
      const bound = mode.id === 'upload-mono' ? 0.7 : 0.8;
      results.metric(`${mode.id}.wall`, `${mode.label}: wall time`, 's', { on: 'ratio', op: '<=', bound, text: `≤ ${bound}x` });
      results.metric(`${mode.id}.cpu`, `${mode.label}: registry CPU per GiB`, 's/GiB', { on: 'ratio', op: '<=', bound, text: `≤ ${bound}x` });
      results.metric(`${mode.id}.sys`, `${mode.label}: … of which in the kernel`, 's/GiB');
      results.metric(`${mode.id}.rss`, `${mode.label}: registry peak RSS`, 'MB', { on: 'pier', op: '<=', bound: 100, text: '≤ 100 MB' });
      for (let round = 0; round < ctx.options.rounds; round++) {
        for (const kind of order(round)) {
          ctx.log(`${mode.id} round ${round + 1}/${ctx.options.rounds} ${kind}`);
          const reg = ctx.registries[kind];
          const client = ctx.clients[kind];
          const repo = `bench/${mode.id}`;
          try {
            const digest = await file.renew();
            await syncDisks();
            const cpu0 = cpuTimes(reg.pid);
            const rss = new PeakRss(reg.pid);
            const t0 = performance.now();
            let failure: Error | undefined;
            try {
              if (mode.id === 'upload-mono') {
                await client.uploadMonolithic(repo, digest, size, () => createReadStream(file.path, { highWaterMark: MiB }));
              } else {
                await client.uploadChunkedFile(repo, digest, file.path, size, sizes.uploadChunk);
              }
            } catch (err) {
              failure = err instanceof Error ? err : new Error(String(err));
            }
            const seconds = (performance.now() - t0) / 1000;
            const cpu1 = cpuTimes(reg.pid);
            const cpu = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
            const peak = rss.stop();
            if (failure !== undefined) throw failure;
            results.add(`${mode.id}.wall`, kind, seconds);
            results.add(`${mode.id}.cpu`, kind, cpu / (size / GiB));
            results.add(`${mode.id}.sys`, kind, (cpu1.sys - cpu0.sys) / (size / GiB));
            results.add(`${mode.id}.rss`, kind, peak / 1e6);
            if (!(await client.blobExists(repo, digest))) results.problem(`${mode.id}.wall`, kind, 'blob not found (HEAD) after a successful upload');
          } catch (err) {
            results.problem(`${mode.id}.wall`, kind, errorText(err));
          }
        }
      }
    }
  },
};
