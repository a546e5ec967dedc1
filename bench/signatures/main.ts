/**
 * What the signature trust policy costs a pull: GET manifest by tag, 50
 * keep-alive connections, against one Pier with `signatures.trust`
 * enforcing on `enf/**`, alternating in each round
 *   - `off/app:v1` (no rule: the baseline),
 *   - `enf/tag:v1`, signed in the `.sig` tag form (simple signing, ECDSA P-256),
 *   - `enf/bundle:v1`, signed with a Sigstore bundle referrer (DSSE),
 * on loopback with `ab`. Every governed pull verifies from the store (no
 * cache: decision 0100). Prints medians and the ratios against the
 * baseline; writes bench/results/signatures-<time>.json.
 *
 *     bench/signatures/run [--quick] [--rounds N] [--seconds S]
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad, type LoadResult } from '../lib/ab.js';
import { imageConfig, imageManifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST, randomBuffer, sha256 } from '../lib/image.js';
import { stopAll, stopDaemon } from '../lib/proc.js';
import { repoRoot, startPier } from '../lib/registries.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, rounds: { type: 'string' }, seconds: { type: 'string' }, connections: { type: 'string' } } });
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
const seconds = Number(values.seconds ?? (values.quick ? 3 : 10));
const connections = Number(values.connections ?? 50);
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const IN_TOTO = 'application/vnd.in-toto+json';

async function put(url: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`blob push: ${res.status}`);
  return digest;
}

async function putManifest(url: string, repo: string, reference: string, manifest: Buffer): Promise<void> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`manifest push: ${res.status}`);
}

/** Pushes a one-layer image as `repo:v1` and returns its manifest's digest and size. */
async function pushImage(url: string, repo: string): Promise<{ digest: string; size: number }> {
  const layer = randomBuffer(4096);
  const layerDesc = { mediaType: OCI_LAYER_TAR, digest: await put(url, repo, layer), size: layer.length };
  const config = imageConfig([layerDesc], repo);
  const configDesc = { mediaType: OCI_CONFIG, digest: await put(url, repo, config), size: config.length };
  const manifest = imageManifest(configDesc, [layerDesc]);
  await putManifest(url, repo, 'v1', manifest);
  return { digest: sha256(manifest), size: manifest.length };
}

async function signTagForm(url: string, repo: string, digest: string, key: KeyObject): Promise<void> {
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': repo }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
  const layer = { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: payload.length, digest: await put(url, repo, payload), annotations: { 'dev.cosignproject.cosign/signature': sign('sha256', payload, key).toString('base64') } };
  const config = Buffer.from('{}');
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, size: 2, digest: await put(url, repo, config) }, layers: [layer] };
  await putManifest(url, repo, `${digest.replace(':', '-')}.sig`, Buffer.from(JSON.stringify(manifest)));
}

async function signBundleForm(url: string, repo: string, image: { digest: string; size: number }, key: KeyObject): Promise<void> {
  const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: image.digest.slice(7) } }], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {} }));
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${statement.length} `), statement]);
  const bundle = Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE,
      verificationMaterial: { publicKey: { hint: '' }, tlogEntries: [] },
      dsseEnvelope: { payload: statement.toString('base64'), payloadType: IN_TOTO, signatures: [{ sig: sign('sha256', pae, key).toString('base64'), keyid: '' }] },
    }),
  );
  const empty = Buffer.from('{}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: await put(url, repo, empty), size: 2 },
      layers: [{ mediaType: BUNDLE, digest: await put(url, repo, bundle), size: bundle.length }],
      subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.size },
    }),
  );
  await putManifest(url, repo, sha256(manifest), manifest);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'pier-bench-signatures-'));
  process.once('SIGINT', () => {
    void stopAll().finally(() => process.exit(130));
  });
  try {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    process.env.PIER_SIGNATURES_TRUST = JSON.stringify([{ repository: 'enf/**', mode: 'enforce', keys: [keys.publicKey.export({ type: 'spki', format: 'pem' }).toString()] }]);
    const pier = await startPier(join(work, 'pier'));
    await pushImage(pier.url, 'off/app');
    await signTagForm(pier.url, 'enf/tag', (await pushImage(pier.url, 'enf/tag')).digest, keys.privateKey);
    await signBundleForm(pier.url, 'enf/bundle', await pushImage(pier.url, 'enf/bundle'), keys.privateKey);

    const names = ['off', 'enforce, .sig tag', 'enforce, bundle referrer'] as const;
    const repos = { off: 'off/app', 'enforce, .sig tag': 'enf/tag', 'enforce, bundle referrer': 'enf/bundle' } as const;
    const samples: Record<(typeof names)[number], LoadResult[]> = { off: [], 'enforce, .sig tag': [], 'enforce, bundle referrer': [] };
    for (let round = 1; round <= rounds; round++) {
      for (const name of names) {
        const r = await runLoad({ url: `${pier.url}/v2/${repos[name]}/manifests/v1`, method: 'GET', connections, seconds, headers: { accept: OCI_MANIFEST } });
        if (r.non2xx > 0 || r.failed > 0) throw new Error(`${name}: ${r.non2xx} non-2xx and ${r.failed} failed responses`);
        samples[name].push(r);
        process.stderr.write(`round ${round} ${name}: ${r.requestsPerSecond.toFixed(0)} req/s (p99 ${r.p99Ms} ms)\n`);
      }
    }
    const rps = (name: (typeof names)[number]) => median(samples[name].map((s) => s.requestsPerSecond));
    const base = rps('off');
    const rows = names.map((name) => ({ name, rps: rps(name), p99: median(samples[name].map((s) => s.p99Ms)), ratio: rps(name) / base }));
    process.stdout.write(
      `${[
        `GET manifest by tag under a signature trust policy: ${connections} connections, ${seconds} s per run, ${rounds} round(s), medians (${cpus().length} CPUs, loopback, ab -k)`,
        ...rows.map((r) => `  ${r.name.padEnd(26)} ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${String(r.p99).padStart(4)} ms  ${r.ratio.toFixed(2)}x`),
      ].join('\n')}\n`,
    );
    const outDir = join(repoRoot(), 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `signatures-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ started: new Date().toISOString(), rounds, seconds, connections, cpus: cpus().length, samples, rows }, null, 1)}\n`);
    process.stderr.write(`results: ${file}\n`);
    await stopDaemon(pier.daemon);
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
