/**
 * Serves the web UI built by scripts/build-ui.mjs into dist/web: `/` is
 * index.html (revalidated on every load: `no-cache` with an ETag), and
 * `/assets/*` are content-hashed files cached for a year as immutable.
 * Each file is served as the brotli or gzip copy made at build time when
 * the browser accepts one (`Vary: Accept-Encoding`).
 *
 * Every answer carries a Content-Security-Policy that allows scripts,
 * styles and requests to this origin only, and no inline script: the
 * pages load nothing from another host. The files are read once at start
 * (a few tens of KiB); a registry built without them answers `/` with 404.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { packageRoot } from '../../shared/package-root.js';

/** dist/web in Pier's package. */
export const WEB_DIR = path.join(packageRoot(), 'dist', 'web');

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

interface WebFile {
  type: string;
  etag: string;
  identity: Buffer;
  gzip: Buffer | undefined;
  br: Buffer | undefined;
}

function load(dir: string): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  if (!existsSync(path.join(dir, 'index.html'))) return files;
  const names = ['index.html', ...readdirSync(path.join(dir, 'assets')).map((n) => `assets/${n}`)];
  for (const name of names) {
    const type = TYPES[path.extname(name)];
    if (type === undefined) continue;
    const file = path.join(dir, name);
    const identity = readFileSync(file);
    const optional = (p: string) => (existsSync(p) ? readFileSync(p) : undefined);
    files.set(`/${name}`, { type, etag: `"${createHash('sha256').update(identity).digest('base64url').slice(0, 22)}"`, identity, gzip: optional(`${file}.gz`), br: optional(`${file}.br`) });
  }
  return files;
}

/** Which encoding to send: brotli, then gzip, when the Accept-Encoding header allows it. */
function encodingFor(accept: string | undefined, file: WebFile): 'br' | 'gzip' | undefined {
  const allowed = new Set(
    (accept ?? '')
      .split(',')
      .map((p) => p.trim().split(';'))
      .filter(([, q]) => q === undefined || !/^\s*q=0(\.0*)?\s*$/.test(q))
      .map(([e]) => e!.trim().toLowerCase()),
  );
  if (file.br && allowed.has('br')) return 'br';
  if (file.gzip && allowed.has('gzip')) return 'gzip';
  return undefined;
}

export function registerWebUi(app: FastifyInstance, dir = WEB_DIR): void {
  const files = load(dir);
  const serve = async (req: FastifyRequest, reply: FastifyReply, name: string) => {
    const file = files.get(name);
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
    if (!file) {
      const message = files.size === 0 ? 'the web UI is not built into this package (npm run build)' : `no such file ${name}`;
      const body = JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message }] });
      return reply.code(404).header('content-type', 'application/json').send(body);
    }
    const immutable = name.startsWith('/assets/');
    reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache').header('etag', file.etag).header('vary', 'accept-encoding').header('content-type', file.type);
    if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
    const encoding = encodingFor(req.headers['accept-encoding'], file);
    const body = encoding === 'br' ? file.br! : encoding === 'gzip' ? file.gzip! : file.identity;
    if (encoding) reply.header('content-encoding', encoding);
    reply.code(200).header('content-length', body.length);
    return reply.send(req.method === 'HEAD' ? undefined : body);
  };
  app.route({ method: ['GET', 'HEAD'], url: '/', handler: (req, reply) => serve(req, reply, '/index.html') });
  app.route({ method: ['GET', 'HEAD'], url: '/assets/*', handler: (req, reply) => serve(req, reply, (req.url.split('?')[0] ?? '').replace(/\/{2,}/g, '/')) });
}
