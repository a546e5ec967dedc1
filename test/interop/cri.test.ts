/**
 * Kubernetes' pull path against a private Pier: containerd 1.6's CRI image
 * service (`runtime.v1.ImageService/PullImage`) called over gRPC with the
 * `AuthConfig` a kubelet builds from an `imagePullSecrets` dockerconfigjson
 * secret. The image is pushed with the built `pier` as a child process.
 * Wrong-password pulls come last (they are login failures).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isolatedEnv, runPier } from '../client/harness.js';
import { generateLayers, writeOciLayout } from '../client/image-files.js';
import { CriError, dockerConfigJson, kubeletAuthConfig, startCriContainerd, type CriContainerd } from '../helpers/cri.js';
import { startPrivatePier, type PrivatePier } from '../helpers/private-pier.js';

const T = { timeout: 180_000 };

let cri: CriContainerd | undefined;
let pier: PrivatePier | undefined;
let work: Awaited<ReturnType<typeof isolatedEnv>> | undefined;
let dir: string;
let configDigest: string;
let manifestDigest: string;
let image: string;
let outside: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pier-cri-test-'));
  work = await isolatedEnv();
  // Both are waited for and kept, so `after` stops the one that started when the other fails.
  const started = await Promise.allSettled([startCriContainerd().then((x) => (cri = x)), startPrivatePier().then((x) => (pier = x))]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const layers = await generateLayers(join(dir, 'layers'), [{ size: 1 << 20 }, { size: 200_000, kind: 'text' }]);
  const layout = join(dir, 'layout');
  configDigest = (await writeOciLayout(layout, layers, { tag: 'v1', gzip: true })).configDigest;
  const login = await runPier(['login', p().host, '-u', p().admin.user, '--password-stdin'], { env: work.env, stdin: `${p().admin.password}\n`, timeoutMs: 30_000 });
  assert.equal(login.code, 0, login.stderr);
  image = `${p().host}/app/k8s:1.0`;
  outside = `${p().host}/secret/k8s:1.0`;
  for (const ref of [image, outside]) {
    const r = await runPier(['push', '--format', 'json', `oci:${layout}:v1`, ref], { env: work.env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    manifestDigest = String(r.events.find((e) => e.type === 'manifest')?.digest);
  }
});

after(async () => {
  await cri?.stop();
  await pier?.stop();
  await work?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

function c(): CriContainerd {
  assert.ok(cri);
  return cri;
}
function p(): PrivatePier {
  assert.ok(pier);
  return pier;
}

async function refused(promise: Promise<unknown>): Promise<CriError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof CriError, String(err));
    return err;
  }
  assert.fail('the pull succeeded');
}

describe('containerd CRI (kubelet pull path) against a private Pier', T, () => {
  test('the runtime speaks CRI v1', async () => {
    const v = await c().version();
    assert.equal(v.runtime_api_version, 'v1');
    assert.equal(v.runtime_name, 'containerd');
  });

  test('no credentials: refused with insufficient_scope', async () => {
    const err = await refused(c().pullImage(image));
    assert.equal(err.code, 2);
    assert.match(err.details, /pull access denied/);
    assert.match(err.details, /insufficient_scope/);
  });

  test('an imagePullSecrets secret of the pull-only user pulls and unpacks the image', async () => {
    const secret = dockerConfigJson(p().host, p().puller.user, p().puller.password);
    const auth = kubeletAuthConfig(secret, image);
    assert.deepEqual(auth, { username: p().puller.user, password: p().puller.password });
    const pulled = await c().pullImage(image, auth);
    assert.equal(pulled.image_ref, configDigest);
    const status = await c().imageStatus(image);
    assert.ok(status.image);
    assert.equal(status.image.id, configDigest);
    assert.deepEqual(status.image.repo_tags, [image]);
    assert.deepEqual(status.image.repo_digests, [`${p().host}/app/k8s@${manifestDigest}`]);

    // By digest too, as a kubelet does for an image pinned in the pod spec.
    await c().removeImage(image);
    assert.equal((await c().imageStatus(image)).image, null);
    const byDigest = await c().pullImage(`${p().host}/app/k8s@${manifestDigest}`, auth);
    assert.equal(byDigest.image_ref, configDigest);
  });

  test('the auth form with server_address (a credential provider sends it)', async () => {
    await c().removeImage(`${p().host}/app/k8s@${manifestDigest}`);
    assert.equal((await c().imageStatus(image)).image, null, 'the pull below must fetch');
    const auth = { auth: Buffer.from(`${p().puller.user}:${p().puller.password}`).toString('base64'), server_address: `http://${p().host}` };
    const pulled = await c().pullImage(image, auth);
    assert.equal(pulled.image_ref, configDigest);
  });

  test('a missing tag is NOT_FOUND; a repository outside the policy is refused', async () => {
    const auth = { username: p().puller.user, password: p().puller.password };
    const missing = await refused(c().pullImage(`${p().host}/app/k8s:nope`, auth));
    assert.equal(missing.code, 5);
    assert.match(missing.details, /not found/);
    const denied = await refused(c().pullImage(outside, auth));
    assert.equal(denied.code, 2);
    assert.match(denied.details, /insufficient_scope|denied/);
  });

  test('a wrong password: 401 from the token endpoint', async () => {
    const err = await refused(c().pullImage(image, { username: p().puller.user, password: 'wrong' }));
    assert.equal(err.code, 2);
    assert.match(err.details, /failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized/);
  });
});
