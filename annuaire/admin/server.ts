// The admin API's own HTTPS listener: it carries credentials, so it never shares the plain
// HTTP listener (health, metrics). TLS 1.2+ with the platform's server certificate.
import type { TlsOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { createFastify, openApiDocs } from '../../core/http.js';
import { serveUi, UI_PREFIX } from '../../core/web-ui.js';
import type { Journal } from '../../core/journal/index.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { LoginThrottle, Policy } from '../../core/policy/index.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import { ensureBootstrapAdmin } from './accounts.js';
import { ADMIN_ACCESS_KINDS } from './access.js';
import { adminApi, type AdminApiDeps } from './api.js';
import type { DashboardSources } from './dashboard.js';
import { operatorBalContext } from './wiring.js';
import { mailstoreDoveadm } from '../../mailstore/relocate.js';

/** The fastify instance of the admin API (not listening yet): OpenAPI at /openapi.json, docs at /docs. Every route declares its access rule (access.ts). */
export async function createAdminServer(deps: AdminApiDeps, tls: TlsOptions, log: Logger = silentLogger): Promise<FastifyInstance> {
  const app = createFastify({ log, mod: 'admin-api', https: tls, bodyLimit: 1024 * 1024, access: ADMIN_ACCESS_KINDS });
  await openApiDocs(app, {
    title: 'MSSanté operator — admin API',
    description:
      'Administration of the operator\'s mailboxes (BAL), members, application certificates, local accounts, imports (liste blanche, national extractions) and the audit trail. ' +
      'Log in with POST /api/v1/login, then send "Authorization: Bearer <token>". Errors are application/problem+json (RFC 9457). ' +
      'Regional accounts act on the mailboxes of their domains and structures only.',
  });
  // The operator console (webui/console/), on the API it calls: same origin, so its session cookie and CSP 'self' cover both.
  await serveUi(app, { trees: ['common', 'console'], home: 'console/' });
  await app.register(adminApi, deps);
  return app;
}

export interface AdminService {
  url: string;
  /** The operator console's page. */
  console: string;
  app: FastifyInstance;
  /** Set on the very first start: the generated national account, to print once. */
  bootstrap: { login: string; password: string; file: string } | null;
  stop(): Promise<void>;
}

/** From the configuration: bootstrap account if none exists, then listen on admin.host:admin.port over TLS. */
export async function startAdmin(config: Config, log: Logger, db: Db, journal: Journal, policy: Policy, throttle: LoginThrottle, dashboardSources?: DashboardSources, psc?: AdminApiDeps['psc']): Promise<AdminService> {
  const bootstrap = await ensureBootstrapAdmin(db, journal, config.dataDir, config.admin.bootstrapLogin);
  const deps: AdminApiDeps = {
    db,
    journal,
    policy,
    bal: operatorBalContext(config, db, journal, log.child({ mod: 'admin-api' })),
    tokenTtlMs: config.admin.tokenTtl,
    throttle,
    uploadDir: join(config.dataDir, 'uploads'),
    reportDir: join(config.dataDir, config.annuaire.import.reportDir),
    uploadMaxBytes: config.annuaire.import.maxUploadSize,
    dashboardSources,
    certificateWarningMs: config.admin.certificateWarning,
    patientDomain: config.smtp.patientDomain,
    requireTotp: config.admin.requireTotp,
    proofMaterial: () => {
      try {
        return { tsaChainPem: readFileSync(config.tsa.certFile, 'utf8') + readFileSync(config.tsa.chainFile, 'utf8'), caPem: readFileSync(config.tsa.caFile, 'utf8') };
      } catch {
        return null; // an external TSA (tsa.url) whose certificates are not here: no proof to export
      }
    },
    ...(psc ? { psc } : {}),
    mailstoreDoveadm: mailstoreDoveadm(config),
    log,
  };
  const app = await createAdminServer(deps, serverTlsOptions(loadTlsMaterial(config)), log);
  await app.listen({ host: config.admin.host, port: config.admin.port });
  const port = (app.server.address() as AddressInfo).port;
  const host = config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host;
  const url = `https://${host}:${port}`;
  return { url, console: `${url}${UI_PREFIX}console/`, app, bootstrap, stop: () => app.close() };
}
