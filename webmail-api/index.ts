// webmail-api — mail over HTTPS/JSON for web pages and hospital software (DPI), on its own
// HTTPS listener (it carries credentials). It holds no mail and decides nothing: it speaks
// IMAP and SMTP to the platform's own fronts as the person, so core/policy applies unchanged.
// It runs in webmail.workers worker processes (workers.ts), or in the platform's own with 0.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { serverTlsOptions } from '../certs/tls.js';
import type { Config } from '../core/config/index.js';
import { createFastify, openApiDocs } from '../core/http.js';
import { serveUi, UI_PREFIX } from '../core/web-ui.js';
import { webmailApi, PREFIX, WEBMAIL_ACCESS_KINDS, type RenderedRead } from './api.js';
import type { ApiDeps, WebmailDeps } from './deps.js';
import { ImapPool } from './imap-pool.js';
import { passwordLogin, pscWebLogin, type LoginFn, type PscWebLogin } from './login.js';
import { SessionCache } from './session-cache.js';
import { RenderCache } from './render-cache.js';
import { startWebmailWorkers } from './workers.js';

export type { WebmailDeps } from './deps.js';

export type WebmailConfig = Pick<Config, 'webmail' | 'operator'>;

export interface WebmailService {
  url: string;
  port: number;
  endpoints: Array<{ name: string; url: string }>;
  /** The fastify instance, when the API runs in this process (webmail.workers = 0). */
  app?: FastifyInstance;
  /** The processes serving the API: this one, or the workers. */
  pids(): number[];
  stop(): Promise<void>;
}

/** The fastify instance (not listening yet), its IMAP pool and token cache: OpenAPI at /openapi.json, docs at /docs. */
export async function createWebmailServer(config: WebmailConfig, deps: ApiDeps, login: LoginFn, psc?: PscWebLogin): Promise<{ app: FastifyInstance; pool: ImapPool; sessions: SessionCache }> {
  const log = deps.log.child({ mod: 'webmail-api' });
  const app = createFastify({ log: deps.log, mod: 'webmail-api', https: serverTlsOptions(deps.tls), bodyLimit: 1024 * 1024, access: WEBMAIL_ACCESS_KINDS });

  const sessions = new SessionCache({ ttlMs: config.webmail.sessionCacheTtl, maxEntries: 100_000, verify: (token) => deps.verifySession(token) });
  const pool = new ImapPool({ target: deps.imap, idleMs: config.webmail.imapIdle, log, onTokenRefused: (token) => sessions.drop(token) });

  await openApiDocs(app, {
    title: 'MSSanté operator — webmail API',
    description:
      'Read and send MSSanté mail over HTTPS as a person: the boxes they may open, folders, messages (parsed, HTML sanitised), attachments, flags, moves, deletions, sending with attachments, read receipts, recipient search in the annuaire, and the DMP hand-off of clinical documents. ' +
      'Log in with POST /api/v1/login (the same credential as IMAP), then send "Authorization: Bearer <token>". ' +
      'Everything runs through the platform\'s own IMAP and submission servers as that person, so the same rules apply and are journalled there. Errors are application/problem+json (RFC 9457).',
  });
  // The browser webmail (webui/webmail/), on the API it calls: same origin, so its session cookie and CSP 'self' cover both.
  await serveUi(app, { trees: ['common', 'webmail'], home: 'webmail/' });
  await app.register(webmailApi, { deps, pool, sessions, login, ...(psc ? { psc } : {}), hostname: config.operator.hostname, maxUpload: config.webmail.maxUpload, readWhole: config.webmail.readWhole, rendered: config.webmail.renderCache > 0 ? new RenderCache<RenderedRead>(config.webmail.renderCache) : null });
  app.addHook('onClose', async () => pool.stop());
  return { app, pool, sessions };
}

/** Listens on webmail.host:webmail.port over TLS with the platform's server certificate. */
export async function startWebmail(config: WebmailConfig, deps: WebmailDeps): Promise<WebmailService> {
  const host = config.webmail.host.includes(':') ? `[${config.webmail.host}]` : config.webmail.host;
  const service = (port: number, note: string) => {
    const url = `https://${host}:${port}`;
    return { url, port, endpoints: [{ name: 'webmail API', url: `${url}${PREFIX} (docs ${url}/docs)${note}` }, { name: 'webmail UI', url: `${url}${UI_PREFIX}webmail/` }] };
  };
  if (config.webmail.workers > 0) {
    const w = await startWebmailWorkers(config, deps);
    return { ...service(w.port, `, ${config.webmail.workers} worker process${config.webmail.workers > 1 ? 'es' : ''}`), pids: w.pids, stop: w.stop };
  }
  const { app } = await createWebmailServer(config, deps, (login, secret, remote) => passwordLogin(deps, login, secret, remote), deps.psc ? pscWebLogin({ ...deps, psc: deps.psc }) : undefined);
  await app.listen({ host: config.webmail.host, port: config.webmail.port });
  return { ...service((app.server.address() as AddressInfo).port, ''), app, pids: () => [process.pid], stop: () => app.close() };
}
