/**
 * Kubernetes' image-pull path without a kubelet: containerd 1.6 with its
 * CRI plugin on (private root, state and socket under a temp folder; no
 * CNI, no pods, nothing listens on TCP) and a small gRPC client over the
 * CRI v1 proto (`cri-api.proto` beside this file: the subset of
 * kubernetes/cri-api `pkg/apis/runtime/v1/api.proto` used here).
 *
 *     const cri = await startCriContainerd();
 *     await cri.version();                          // runtime_api_version 'v1'
 *     const auth = kubeletAuthConfig(dockerConfigJson, '127.0.0.1:PORT/app/x:1');
 *     await cri.pullImage('127.0.0.1:PORT/app/x:1', auth); // { image_ref: 'sha256:<config digest>' }
 *     await cri.imageStatus(ref);                   // { image: { id, repo_tags, repo_digests, size } | null }
 *     await cri.stop();
 *
 * containerd 1.6.20's CRI reaches loopback registries over plain HTTP by
 * default. A failed call rejects with a {@link CriError} holding the gRPC
 * status code (2 UNKNOWN for a refused pull, 5 NOT_FOUND for a missing tag)
 * and containerd's message.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { runCommand } from './dockerd.js';
import { REPO_ROOT } from './registry.js';

export const CRI_PROTO = join(REPO_ROOT, 'test', 'helpers', 'cri-api.proto');

/** CRI `AuthConfig` (field names as in the proto). */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
}

export interface CriImage {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: string;
}

export class CriError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`CRI call failed: code=${code} ${details}`);
  }
}

export interface CriContainerd {
  dir: string;
  socket: string;
  version(): Promise<{ version: string; runtime_name: string; runtime_version: string; runtime_api_version: string }>;
  pullImage(image: string, auth?: AuthConfig): Promise<{ image_ref: string }>;
  imageStatus(image: string): Promise<{ image: CriImage | null }>;
  removeImage(image: string): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * The `AuthConfig` a kubelet sends for an image when a pod has an
 * `imagePullSecrets` secret of type kubernetes.io/dockerconfigjson:
 * the `auths` entry whose key (scheme and /v1/ or /v2/ stripped) is the
 * image's registry host, its `auth` decoded to username and password (as
 * the kubelet's credential keyring does); `server_address` stays empty.
 */
export function kubeletAuthConfig(dockerConfigJson: string, image: string): AuthConfig | undefined {
  const parsed = JSON.parse(dockerConfigJson) as { auths?: Record<string, { username?: string; password?: string; auth?: string }> };
  const host = image.split('/')[0];
  for (const [key, entry] of Object.entries(parsed.auths ?? {})) {
    const keyHost = key.replace(/^https?:\/\//, '').replace(/\/(v1|v2)\/?$/, '').replace(/\/$/, '');
    if (keyHost !== host) continue;
    let { username, password } = entry;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    return { username, password };
  }
  return undefined;
}

/** The `.dockerconfigjson` of `kubectl create secret docker-registry --docker-server=HOST ...`. */
export function dockerConfigJson(server: string, username: string, password: string): string {
  return JSON.stringify({ auths: { [server]: { username, password, auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
}

type Unary = (request: unknown, options: { deadline: Date }, callback: (err: grpc.ServiceError | null, response?: unknown) => void) => void;

export async function startCriContainerd(): Promise<CriContainerd> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-cri-'));
  const socket = join(dir, 'containerd.sock');
  for (const d of ['cni/bin', 'cni/net.d', 'certs.d', 'opt']) mkdirSync(join(dir, d), { recursive: true });
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${dir}/opt"`,
      '[plugins."io.containerd.grpc.v1.cri"]',
      '  disable_tcp_service = true',
      '  stream_server_address = "127.0.0.1"',
      '  stream_server_port = "0"',
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      `    bin_dir = "${dir}/cni/bin"`,
      `    conf_dir = "${dir}/cni/net.d"`,
      '  [plugins."io.containerd.grpc.v1.cri".containerd]',
      '    snapshotter = "overlayfs"',
      '  [plugins."io.containerd.grpc.v1.cri".registry]',
      `    config_path = "${dir}/certs.d"`,
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'containerd.log');
  const fd = openSync(logFile, 'a');
  const child = spawn('containerd', ['--config', config], { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.on('error', () => undefined);
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  const definition = protoLoader.loadSync(CRI_PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } };
  };
  const target = `unix://${socket}`;
  const runtimeClient = new pkg.runtime.v1.RuntimeService(target, grpc.credentials.createInsecure());
  const imageClient = new pkg.runtime.v1.ImageService(target, grpc.credentials.createInsecure());
  const call = <T>(client: grpc.Client, method: string, request: unknown, timeoutMs = 120_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
      fn(request, { deadline: new Date(Date.now() + timeoutMs) }, (err, response) => {
        if (err) reject(new CriError(err.code, err.details));
        else resolve(response as T);
      });
    });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    runtimeClient.close();
    imageClient.close();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    // Unpacked snapshots may leave overlay mounts behind.
    try {
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(dir));
      for (const m of mounts.reverse()) await runCommand('umount', ['-l', m], { timeoutMs: 10_000 });
    } catch {
      // no /proc
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const api: CriContainerd = {
    dir,
    socket,
    version: () => call(runtimeClient, 'Version', { version: 'v1' }, 5000),
    pullImage: (image, auth) => call(imageClient, 'PullImage', { image: { image }, ...(auth ? { auth } : {}) }),
    imageStatus: (image) => call(imageClient, 'ImageStatus', { image: { image } }),
    removeImage: async (image) => {
      await call(imageClient, 'RemoveImage', { image: { image } });
    },
    log,
    stop,
  };

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = log().slice(-2000);
      await stop();
      throw new Error(`containerd exited at start: ${text}`);
    }
    if (existsSync(socket)) {
      try {
        await api.version();
        return api;
      } catch {
        // the CRI plugin is not serving yet
      }
    }
    if (Date.now() > deadline) {
      const text = log().slice(-2000);
      await stop();
      throw new Error(`containerd's CRI did not answer within 20 s: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
