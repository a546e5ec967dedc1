/** Shared plumbing for the client tests: run the CLI, start targets, verify pulls. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDistribution, type Distribution, type DistributionOptions } from '../helpers/distribution.js';
import { startTestRegistry } from '../helpers/registry.js';

export const PIER = fileURLToPath(new URL('../../../bin/pier.js', import.meta.url));

export interface PierRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout lines parsed as JSON where they are JSON (--format json). */
  events: Record<string, unknown>[];
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  timeoutMs?: number;
  /** Called for every JSON event line as it arrives; return true to signal the process (once). */
  killWhen?: (event: Record<string, unknown>) => boolean;
  /** The signal `killWhen` sends (default SIGKILL). */
  killSignal?: NodeJS.Signals;
  /** Working directory (default: this process's). */
  cwd?: string;
}

/** Runs `node bin/pier.js ARGS` asynchronously (the token issuer may live in this process). */
export function runPier(args: string[], options: RunOptions = {}): Promise<PierRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PIER, ...args], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'], ...(options.cwd ? { cwd: options.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const events: Record<string, unknown>[] = [];
    let killed = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      pending += d.toString();
      let nl;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as Record<string, unknown>;
          events.push(e);
          if (!killed && options.killWhen?.(e)) {
            killed = true;
            child.kill(options.killSignal ?? 'SIGKILL');
          }
        } catch {
          // not JSON
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, events });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

export interface Target {
  name: string;
  host: string;
  user?: string;
  password?: string;
  distribution?: Distribution;
  stop(): Promise<void>;
}

export const USER = 'alice';
export const PASSWORD = 's3cret-pw';

export async function startTarget(kind: 'pier' | 'plain' | 'htpasswd' | 'token', extra: DistributionOptions = {}): Promise<Target> {
  if (kind === 'pier') {
    const reg = await startTestRegistry();
    return { name: 'pier', host: reg.host, stop: () => reg.close() };
  }
  const auth = kind === 'plain' ? 'none' : kind;
  const d = await startDistribution({ auth, users: { [USER]: PASSWORD, reader: 'reader-pw' }, readOnly: ['reader'], ...extra });
  const t: Target = { name: `distribution-${kind}`, host: d.host, distribution: d, stop: () => d.stop() };
  if (kind !== 'plain') {
    t.user = USER;
    t.password = PASSWORD;
  }
  return t;
}

/** A private HOME-like environment: docker config and cache in a temp dir. */
export async function isolatedEnv(): Promise<{ env: NodeJS.ProcessEnv; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pier-client-test-'));
  const env = { DOCKER_CONFIG: join(dir, 'docker'), XDG_CACHE_HOME: join(dir, 'cache'), REGISTRY_AUTH_FILE: join(dir, 'auth.json'), XDG_RUNTIME_DIR: join(dir, 'run'), HOME: dir };
  return { env, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path) as AsyncIterable<Buffer>) h.update(c);
  return h.digest('hex');
}

function execTool(cmd: string, args: string[], timeoutMs = 180_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`));
    });
  });
}

/**
 * Pulls `ref` with skopeo into an OCI layout, then checks that the manifest
 * has `expectedDigest` and that every blob's bytes hash to its name.
 * Returns the digests of the blobs pulled. With `certDir` (CA files named
 * `*.crt`) the registry's certificate is verified against it.
 */
export async function skopeoPullAndVerify(ref: string, expectedDigest: string, creds?: string, certDir?: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'pier-skopeo-pull-'));
  try {
    const args = ['copy', ...(certDir ? ['--src-cert-dir', certDir] : ['--src-tls-verify=false']), '--preserve-digests'];
    if (creds) args.push('--src-creds', creds);
    args.push(`docker://${ref}`, `oci:${dir}:pulled`);
    // skopeo keeps a blob-info cache under /var/lib/containers when root: give it a private,
    // empty one (a fresh folder bound over it in a private mount namespace) so tests neither
    // read nor pollute the machine's.
    const state = join(dir, '.containers');
    await mkdir(state);
    await execTool('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /var/lib/containers && exec "$@"', state, 'skopeo', ...args]);
    await rm(state, { recursive: true, force: true });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const got = index.manifests[0]?.digest;
    if (got !== expectedDigest) throw new Error(`skopeo pulled ${got}, expected ${expectedDigest}`);
    const names = await readdir(join(dir, 'blobs', 'sha256'));
    for (const name of names) {
      const actual = await sha256File(join(dir, 'blobs', 'sha256', name));
      if (actual !== name) throw new Error(`blob ${name} pulled by skopeo hashes to ${actual}`);
    }
    return names.map((n) => `sha256:${n}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Manifest digest as the registry serves it (HEAD), for comparisons. */
export async function registryDigest(host: string, repo: string, ref: string, auth?: string): Promise<string | null> {
  const headers: Record<string, string> = {
    accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json',
  };
  if (auth) headers.authorization = auth;
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers });
  return res.headers.get('docker-content-digest');
}
