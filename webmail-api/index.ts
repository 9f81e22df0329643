// webmail-api — mail over HTTPS/JSON for web pages and hospital software (DPI), on its own
// HTTPS listener (it carries credentials). It holds no mail and decides nothing: it speaks
// IMAP and SMTP to the platform's own fronts as the person, so core/policy applies unchanged.
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serverTlsOptions } from '../certs/tls.js';
import type { Config } from '../core/config/index.js';
import { httpsHeaders, openApiDocs, problemHandlers, quietRequests, requestLog } from '../core/http.js';
import { webmailApi, PREFIX } from './api.js';
import type { WebmailDeps } from './deps.js';
import { ImapPool } from './imap-pool.js';
import { LoginThrottle } from './throttle.js';

export type { WebmailDeps } from './deps.js';

type WebmailConfig = Pick<Config, 'webmail' | 'operator'> & { imap: Pick<Config['imap'], 'failureDelay' | 'failureWindow' | 'maxFailuresPerSource' | 'maxFailuresPerAccount'> };

export interface WebmailService {
  url: string;
  port: number;
  endpoints: Array<{ name: string; url: string }>;
  app: FastifyInstance;
  stop(): Promise<void>;
}

/** The fastify instance (not listening yet) and its IMAP pool: OpenAPI at /openapi.json, docs at /docs. */
export async function createWebmailServer(config: WebmailConfig, deps: WebmailDeps): Promise<{ app: FastifyInstance; pool: ImapPool }> {
  const log = deps.log.child({ mod: 'webmail-api' });
  const app = Fastify({
    https: serverTlsOptions(deps.tls),
    loggerInstance: log as FastifyBaseLogger,
    logController: quietRequests(),
    bodyLimit: 1024 * 1024,
    // Unknown properties are refused (400), not silently dropped: a typo must not pass for success.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  });
  requestLog(app);
  problemHandlers(app);
  httpsHeaders(app);

  const pool = new ImapPool({ target: deps.imap, idleMs: config.webmail.imapIdle, log });
  const throttle = new LoginThrottle({ windowMs: config.imap.failureWindow, maxPerSource: config.imap.maxFailuresPerSource, maxPerAccount: config.imap.maxFailuresPerAccount });

  await openApiDocs(app, {
    title: 'MSSanté operator — webmail API',
    description:
      'Read and send MSSanté mail over HTTPS as a person: the boxes they may open, folders, messages (parsed, HTML sanitised), attachments, flags, moves, deletions, sending with attachments, read receipts, recipient search in the annuaire, and the DMP hand-off of clinical documents. ' +
      'Log in with POST /api/v1/login (the same credential as IMAP), then send "Authorization: Bearer <token>". ' +
      'Everything runs through the platform\'s own IMAP and submission servers as that person, so the same rules apply and are journalled there. Errors are application/problem+json (RFC 9457).',
  });
  await app.register(webmailApi, { deps, pool, throttle, hostname: config.operator.hostname, maxUpload: config.webmail.maxUpload, failureDelayMs: config.imap.failureDelay });
  app.addHook('onClose', async () => pool.stop());
  return { app, pool };
}

/** Listens on webmail.host:webmail.port over TLS with the platform's server certificate. */
export async function startWebmail(config: WebmailConfig, deps: WebmailDeps): Promise<WebmailService> {
  const { app } = await createWebmailServer(config, deps);
  await app.listen({ host: config.webmail.host, port: config.webmail.port });
  const port = (app.server.address() as AddressInfo).port;
  const host = config.webmail.host.includes(':') ? `[${config.webmail.host}]` : config.webmail.host;
  const url = `https://${host}:${port}`;
  return {
    url,
    port,
    app,
    endpoints: [{ name: 'webmail API', url: `${url}${PREFIX} (docs ${url}/docs)` }],
    stop: () => app.close(),
  };
}
