/**
 * A private Pier for real-client tests: `pier serve` as a child process on
 * an ephemeral loopback port, with access control on: an admin (`alice`)
 * and a pull-only user (`kube`, pull on `app/*`), added with the CLI's
 * local mode (`pier user add --data DIR`) as an operator would. The login
 * throttle is off (`PIER_AUTH_THROTTLE_FAILURES=0`): the tests send wrong
 * passwords on purpose and every client shares 127.0.0.1.
 */
import { rm } from 'node:fs/promises';
import { runCommand } from './dockerd.js';
import { PIER_BIN, spawnTestRegistry, tempDir, type SpawnedRegistry } from './registry.js';

export interface Account {
  user: string;
  password: string;
}

export interface PrivatePier {
  /** `127.0.0.1:PORT` */
  host: string;
  registry: SpawnedRegistry;
  admin: Account;
  /** May pull `app/*`, nothing else. */
  puller: Account;
  /** `Basic …` for the admin, for raw HTTP checks. */
  adminBasic: string;
  stop(): Promise<void>;
}

async function pierAdmin(args: string[], input?: string): Promise<void> {
  const r = await runCommand(process.execPath, [PIER_BIN, ...args], { input, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`pier ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
}

export async function startPrivatePier(): Promise<PrivatePier> {
  const dataDir = await tempDir('pier-private-');
  let registry: SpawnedRegistry | undefined;
  try {
    registry = await spawnTestRegistry({ dataDir, env: { PIER_AUTH_THROTTLE_FAILURES: '0' } });
    const admin = { user: 'alice', password: 'alice-push-pw' };
    const puller = { user: 'kube', password: 'kube-pull-pw' };
    await pierAdmin(['user', 'add', admin.user, '--admin', '--data', dataDir], `${admin.password}\n`);
    await pierAdmin(['user', 'add', puller.user, '--data', dataDir], `${puller.password}\n`);
    await pierAdmin(['policy', 'add', '--subject', `user:${puller.user}`, '--repositories', 'app/*', '--actions', 'pull', '--data', dataDir]);
    const running = registry;
    return {
      host: running.host,
      registry: running,
      admin,
      puller,
      adminBasic: `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`,
      async stop() {
        await running.kill();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await registry?.kill();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
