/**
 * A test host that is not loopback: a network namespace this test creates,
 * joined to the host by a veth pair on a random /30 of 10.0.0.0/8. The host
 * side has `.1`, the namespace `.2`; nothing is routed anywhere else, so
 * traffic to the namespace's address stays on this machine. `destroy()`
 * deletes the namespace (and with it both veth ends); call it in `after`,
 * which runs even when a test fails. Needs root (CAP_NET_ADMIN).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';

export interface TestNamespace {
  name: string;
  /** The namespace's own address (a non-loopback IPv4 address). */
  address: string;
  /** Prefix to run a command inside: `ip netns exec NAME`. */
  exec: string[];
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createNamespace(): TestNamespace {
  const id = randomBytes(3).toString('hex');
  const name = `pier-t-${id}`;
  const outside = `pv${id}a`;
  const inside = `pv${id}b`;
  const net = `10.${randomInt(200, 250)}.${randomInt(0, 256)}.${randomInt(0, 64) * 4}`;
  const [a, b, c, d] = net.split('.').map(Number) as [number, number, number, number];
  const hostAddr = `${a}.${b}.${c}.${d + 1}`;
  const nsAddr = `${a}.${b}.${c}.${d + 2}`;
  ip(['netns', 'add', name]);
  const destroy = () => {
    try {
      ip(['netns', 'del', name]);
    } catch {
      // already gone
    }
    try {
      ip(['link', 'del', outside]);
    } catch {
      // went with the namespace
    }
  };
  try {
    ip(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
    ip(['link', 'set', inside, 'netns', name]);
    ip(['addr', 'add', `${hostAddr}/30`, 'dev', outside]);
    ip(['link', 'set', outside, 'up']);
    ip(['-n', name, 'addr', 'add', `${nsAddr}/30`, 'dev', inside]);
    ip(['-n', name, 'link', 'set', inside, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    destroy();
    throw err;
  }
  return { name, address: nsAddr, exec: ['ip', 'netns', 'exec', name], destroy };
}
