// The browser pages (webui/): static files served by an HTTPS API listener under /ui/, with
// the headers that keep them safe. HTML and CSS come from webui/ as written, the scripts from
// dist/webui/ (tsc compiles webui/**/*.ts to browser ES modules: no bundler, nothing fetched
// from another origin, the platform works offline). Files are read once when the listener
// starts and looked up by exact path, so no request path ever reaches the file system.
//
// Each listener serves its own pages and the shared ones: the webmail API `webmail/` and
// `common/`, the admin API (next) `console/` and `common/`.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { MssError } from './errors.js';
import { PUBLIC } from './http.js';
import { fromRoot } from './paths.js';

export const UI_PREFIX = '/ui/';

/**
 * The pages' policy: only this origin's scripts, styles, images and API; no inline script or
 * style (an injected `<script>`, `onerror=` or `style=` does nothing), no plugin, no `<base>`,
 * no framing of these pages by anyone. A message's HTML is shown in a sandboxed frame
 * (`srcdoc`, which inherits this policy): no script runs there whatever the sanitiser kept.
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const UI_HEADERS: Record<string, string> = {
  'content-security-policy': UI_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
  // Revalidated each time (ETag): a new version of the platform is seen at once.
  'cache-control': 'no-cache',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

interface UiFile {
  body: Buffer;
  type: string;
  etag: string;
}

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** The files of the given subtrees of webui/: written files from the sources, scripts from dist/webui/; by URL path below UI_PREFIX. */
export function loadUiFiles(trees: readonly string[], root = fromRoot()): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  for (const tree of trees) {
    for (const [base, keep] of [
      [join(root, 'webui', tree), (e: string) => e !== '.js' && e !== '.ts' && e !== '.json'],
      [join(root, 'dist', 'webui', tree), (e: string) => e === '.js'],
    ] as const) {
      for (const p of walk(base)) {
        const ext = extname(p);
        if (!keep(ext) || !TYPES[ext]) continue;
        const body = readFileSync(p);
        const url = [tree, ...relative(base, p).split(sep)].join('/');
        files.set(url, { body, type: TYPES[ext], etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
      }
    }
  }
  return files;
}

/**
 * GET /ui/<tree>/… for the given trees, and / redirecting to the first page (`home`, e.g.
 * 'webmail/'). A tree whose scripts are not built is still served, and the listener says so
 * in its log: `npm start` / `npm test` build them (scripts/setup.mjs).
 */
export async function serveUi(app: FastifyInstance, o: { trees: readonly string[]; home: string; root?: string }): Promise<{ files: number }> {
  const files = loadUiFiles(o.trees, o.root);
  if (![...files.keys()].some((k) => k.endsWith('.js'))) app.log.warn({ trees: o.trees }, 'the web pages\' scripts are not built (dist/webui): run npx tsc -p webui/tsconfig.json');
  await app.register(async (ui) => {
    ui.addHook('onSend', async (_req, reply, payload) => {
      reply.headers(UI_HEADERS);
      return payload;
    });
    ui.get('/', { config: { access: PUBLIC }, schema: { hide: true } }, async (_req, reply) => reply.redirect(`${UI_PREFIX}${o.home}`, 303));
    ui.get(
      `${UI_PREFIX}*`,
      { config: { access: PUBLIC }, schema: { hide: true, params: { type: 'object', additionalProperties: false, properties: { '*': { type: 'string', maxLength: 300 } } } } },
      async (req, reply) => {
        const path = (req.params as { '*': string })['*'];
        const f = files.get(path.endsWith('/') || path === '' ? `${path}index.html` : path);
        if (!f) throw new MssError('NOT_FOUND', { what: `GET ${req.url.split('?')[0]}` });
        void reply.header('content-type', f.type).header('etag', f.etag);
        if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
        return reply.send(f.body);
      },
    );
  });
  return { files: files.size };
}
