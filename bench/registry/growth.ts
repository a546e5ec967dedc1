/**
 * Does the registry slow down as it fills up? On a fresh pair of registries:
 * GET manifest latency (one connection, sequential requests for random tags)
 * with a few repositories, then again after populating many repositories and
 * tags through the HTTP API (one manifest, many tags by PUT manifest with the
 * same body; cross-repository mounts for the blobs; not timed as a target but
 * reported), and listing one repository's many tags page by page following
 * `Link` headers.
 */
import { join } from 'node:path';
import { memoryImage, randomBuffer, OCI_MANIFEST } from '../lib/image.js';
import type { MemoryImage } from '../lib/image.js';
import { RegistryClient } from '../lib/oci-client.js';
import { startRegistry } from '../lib/registries.js';
import type { Registry, RegistryKind } from '../lib/registries.js';
import { percentile } from '../lib/results.js';
import type { Context, Scenario } from './context.js';
import { errorText, order } from './context.js';

const SEED = 'growth/seed';
const LIST_REPO = 'growth/list';
const SMALL_REPOS = 10;
const SMALL_TAGS_PER_REPO = 10;

function repoName(i: number): string {
  return `growth/r${String(i).padStart(5, '0')}`;
}

/** Runs `work` over `items` with `workers` in parallel; stops taking new items after `deadline`. */
async function pool<T>(items: readonly T[], workers: number, deadline: number, work: (item: T) => Promise<void>): Promise<{ done: number; errors: string[] }> {
  let next = 0;
  let done = 0;
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < items.length && Date.now() < deadline && errors.length < 20) {
        const item = items[next++]!;
        try {
          await work(item);
          done++;
        } catch (err) {
          errors.push(errorText(err));
        }
      }
    }),
  );
  return { done, errors };
}

interface State {
  /** Every (repo, tag) that exists, to sample from. */
  readonly refs: [string, string][];
}

/** Creates repositories `from..to-1` (mounting the seed's blobs) with `tagsEach` tags each. */
async function populate(
  client: RegistryClient,
  image: MemoryImage,
  repos: readonly string[],
  tagsFor: (repo: string, index: number) => number,
  state: State,
  deadline: number,
): Promise<{ requests: number; seconds: number; errors: string[] }> {
  const t0 = performance.now();
  let requests = 0;
  const blobs = [...image.layers, image.config];
  const first = await pool(repos, 16, deadline, async (repo) => {
    for (const b of blobs) {
      await client.mountBlob(repo, b.desc.digest, SEED, b.data);
      requests++;
    }
  });
  const tags: [string, string][] = [];
  repos.forEach((repo, i) => {
    const n = tagsFor(repo, i);
    for (let t = 0; t < n; t++) tags.push([repo, `t${t}`]);
  });
  const second = await pool(tags, 16, deadline, async ([repo, tag]) => {
    await client.putManifest(repo, tag, image.manifest, OCI_MANIFEST);
    requests++;
    state.refs.push([repo, tag]);
  });
  return { requests, seconds: (performance.now() - t0) / 1000, errors: [...first.errors, ...second.errors] };
}

/** Sequential GET manifest latencies (ms) for random existing tags. */
async function latencies(client: RegistryClient, state: State, samples: number, deadline: number): Promise<number[]> {
  const out: number[] = [];
  // Warm up first (connection, JIT, caches): otherwise the first state measured looks slow.
  for (let i = 0; i < Math.min(500, samples) && Date.now() < deadline; i++) {
    const [repo, tag] = state.refs[i % state.refs.length]!;
    await client.getManifest(repo, tag);
  }
  for (let i = 0; i < samples && Date.now() < deadline; i++) {
    const [repo, tag] = state.refs[Math.floor(Math.random() * state.refs.length)]!;
    const s = performance.now();
    await client.getManifest(repo, tag);
    out.push(performance.now() - s);
  }
  return out;
}

export const growth: Scenario = {
  name: 'growth',
  summary: 'GET manifest latency and tag listing as the registry fills up',
  async run(ctx: Context): Promise<void> {
    const { sizes, results } = ctx;
    const R = ctx.options.rounds;
    const bigLabel = `${sizes.growthRepos.toLocaleString('en-US')} repos / ${sizes.growthTags.toLocaleString('en-US')} tags`;
    results.metric('growth.small.p50', `GET manifest p50 latency, 1 conn, ${SMALL_REPOS} repos`, 'ms');
    results.metric('growth.large.p50', `GET manifest p50 latency, 1 conn, ${bigLabel}`, 'ms');
    results.metric('growth.factor', `GET manifest latency growth (${bigLabel} vs ${SMALL_REPOS} repos)`, 'x', { on: 'pier', op: '<=', bound: 1.2, text: '≤ 1.2x' });
    results.metric('growth.populate', `populate ${bigLabel}: PUT manifest + mount rate (not a target)`, 'req/s');
    results.metric('list.wall', `list ${sizes.listTags.toLocaleString('en-US')} tags, n=${sizes.listPageSize}, following Link`, 's', { on: 'ratio', op: '<=', bound: 0.5, text: '≤ 0.5x' });

    const image = memoryImage([randomBuffer(1024)], 'growth');
    const regs: Partial<Record<RegistryKind, Registry>> = {};
    const clients: Partial<Record<RegistryKind, RegistryClient>> = {};
    const states: Record<RegistryKind, State> = { pier: { refs: [] }, distribution: { refs: [] } };
    const small: Record<RegistryKind, number[]> = { pier: [], distribution: [] };
    try {
      for (const kind of ['pier', 'distribution'] as const) {
        ctx.log(`growth: starting a fresh ${kind}`);
        const reg = await startRegistry(kind, join(ctx.tmp, `growth-${kind}`));
        regs[kind] = reg;
        const client = new RegistryClient(reg.url, 32);
        clients[kind] = client;
        for (const b of [...image.layers, image.config]) await client.pushBlob(SEED, b.desc.digest, b.data);
        await client.putManifest(SEED, 'latest', image.manifest, OCI_MANIFEST);
        const smallRepos = Array.from({ length: SMALL_REPOS }, (_, i) => repoName(i));
        const p = await populate(client, image, smallRepos, () => SMALL_TAGS_PER_REPO, states[kind], Date.now() + 120_000);
        for (const e of p.errors.slice(0, 3)) results.problem('growth.small.p50', kind, `populate: ${e}`);
      }

      const deadlineFor = (): number => Date.now() + 120_000;
      for (let round = 0; round < R; round++) {
        for (const kind of order(round)) {
          ctx.log(`growth small round ${round + 1}/${R} ${kind}`);
          try {
            const l = await latencies(clients[kind]!, states[kind], sizes.latencySamples, deadlineFor());
            const p50 = percentile(l, 50);
            small[kind].push(p50);
            results.add('growth.small.p50', kind, p50);
          } catch (err) {
            results.problem('growth.small.p50', kind, errorText(err));
          }
        }
      }

      const listTags = sizes.listTags;
      const otherRepos = sizes.growthRepos - SMALL_REPOS - 1;
      const otherTags = sizes.growthTags - SMALL_REPOS * SMALL_TAGS_PER_REPO - listTags;
      for (const kind of ['pier', 'distribution'] as const) {
        const repos = [LIST_REPO, ...Array.from({ length: otherRepos }, (_, i) => repoName(SMALL_REPOS + i))];
        const per = Math.floor(otherTags / otherRepos);
        const extra = otherTags - per * otherRepos;
        const tagsFor = (repo: string, i: number): number => (repo === LIST_REPO ? listTags : per + (i <= extra ? 1 : 0));
        ctx.log(`growth: populating ${kind} to ${bigLabel} (untimed for the target)`);
        const p = await populate(clients[kind]!, image, repos, tagsFor, states[kind], Date.now() + sizes.populateMaxSeconds * 1000);
        results.add('growth.populate', kind, p.requests / p.seconds);
        const tagsNow = states[kind].refs.length;
        ctx.log(`growth: ${kind} has ${tagsNow} tags after ${p.seconds.toFixed(1)} s (${(p.requests / p.seconds).toFixed(0)} req/s)`);
        if (tagsNow < sizes.growthTags) {
          results.problem('growth.large.p50', kind, `populated only ${tagsNow} of ${sizes.growthTags} tags in ${sizes.populateMaxSeconds} s`);
        }
        for (const e of p.errors.slice(0, 3)) results.problem('growth.populate', kind, e);
      }

      for (let round = 0; round < R; round++) {
        for (const kind of order(round)) {
          ctx.log(`growth large round ${round + 1}/${R} ${kind}`);
          try {
            const l = await latencies(clients[kind]!, states[kind], sizes.latencySamples, deadlineFor());
            const p50 = percentile(l, 50);
            results.add('growth.large.p50', kind, p50);
            const base = small[kind][round];
            if (base !== undefined) results.add('growth.factor', kind, p50 / base);
          } catch (err) {
            results.problem('growth.large.p50', kind, errorText(err));
          }
        }
      }

      const maxPages = Math.ceil(listTags / sizes.listPageSize) + 20;
      for (let round = 0; round < R; round++) {
        for (const kind of order(round)) {
          ctx.log(`list round ${round + 1}/${R} ${kind}`);
          try {
            const t0 = performance.now();
            const { tags, pages } = await clients[kind]!.listTags(LIST_REPO, sizes.listPageSize, maxPages);
            results.add('list.wall', kind, (performance.now() - t0) / 1000);
            const unique = new Set(tags).size;
            if (unique !== listTags || tags.length !== listTags) {
              results.problem('list.wall', kind, `listed ${tags.length} tags (${unique} distinct), want ${listTags}`);
            }
            if (round === 0) results.note(`${kind}: listing ${listTags} tags with n=${sizes.listPageSize} took ${pages} page(s)`);
            if (pages === 1 && listTags > sizes.listPageSize) {
              // distribution 2.8 does not paginate tags (it came in 3.0): a fact, not a failure.
              const text = `ignores n=${sizes.listPageSize}: returned all ${tags.length} tags in one page`;
              if (kind === 'pier' && process.env.PIER_BENCH_STANDIN !== '1') results.problem('list.wall', kind, text);
              else if (round === 0) results.note(`${kind}: ${text}`);
            }
          } catch (err) {
            results.problem('list.wall', kind, errorText(err));
          }
        }
      }
    } finally {
      for (const kind of ['pier', 'distribution'] as const) {
        await clients[kind]?.close();
        await regs[kind]?.stop();
      }
    }
  },
};
