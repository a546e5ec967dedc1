/**
 * The one loopback rule, for the registry's safe default (serve everyone
 * only on loopback) and the client's (plain HTTP only to loopback).
 */
import { isIP } from 'node:net';

/**
 * Whether `host` names this machine only: `localhost`, `*.localhost`
 * (RFC 6761), `127.0.0.0/8`, `::1` or `::ffff:127.x.y.z`. Accepts a bare
 * host, `host:port`, `[v6]` or `[v6]:port`.
 */
export function isLoopback(host: string): boolean {
  let h = host.trim();
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  // An IPv6 address has two colons at least: the cheap test first spares
  // Node's IPv6 pattern (compiled at its first use, a few ms of a re-push).
  else if (h.indexOf(':') === h.lastIndexOf(':') || isIP(h) !== 6) h = h.replace(/:\d+$/, '');
  h = h.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.includes(':') && isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}
