import type { AddressInfo } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import type { Config } from '../core/config/index.js';
import type { HealthCheck } from '../core/http.js';
import { DeliveryWorker, type OpenPgpKeyLookup } from './delivery.js';
import { createSmtpFront, rateLimiter, type FrontDeps } from './fronts.js';
import { SharedWindowCounter, sharedRateLimiter } from '../core/policy/window-counts.js';
import { WindowCounter } from './limits.js';
import { normaliseDomain } from '../core/policy/index.js';
import type { LmtpRoute, LmtpTarget } from '../mailstore/lmtp.js';
import { bouncer } from './bounce.js';
import { SpoolWriter, type Accepted, type EnqueueOutbound } from './spool-writer.js';
import type { Db } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';
import type { Policy } from '../core/policy/index.js';
import type { RecipientResolver } from './recipients.js';
import { enqueueOutbound, OutboundWorker } from './outbound.js';
import type { BodyCipher } from './body-cipher.js';

export { LdapRecipientResolver, type RecipientResolver, type Resolution } from './recipients.js';
export { listSpool } from './spool.js';
export { resealBodies } from './body-cipher.js';
export { listOutbound, retryOutbound, deleteOutbound } from './outbound.js';

export interface SmtpService {
  endpoints: Array<{ name: string; url: string }>;
  ports: { mx: number; submission: number; submissions: number };
  delivery: DeliveryWorker;
  outbound: OutboundWorker;
  health: HealthCheck;
  stop(): Promise<void>;
}

/** What the composition root hands over. */
export interface SmtpDeps extends Pick<FrontDeps, 'tls' | 'log' | 'authenticate' | 'certificatePrincipal' | 'throttle' | 'psc'> {
  db: Db;
  journal: Journal;
  policy: Policy;
  resolver: RecipientResolver;
  lmtp: LmtpTarget;
  /** The OpenPGP keys of local boxes (annuaire/bal/openpgp.ts): their mail is stored encrypted. */
  openpgpKeys?: OpenPgpKeyLookup;
  /** A shared store (mailstore.cluster): the back end of each recipient's box. */
  lmtpRoute?: LmtpRoute;
  /** Bodies kept in the database sealed with the platform's key (crypt.spool; smtp/body-cipher.ts). */
  cipher?: BodyCipher;
}

function listen(server: SMTPServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(((server as unknown as { server: { address(): AddressInfo } }).server.address() as AddressInfo).port);
    });
  });
}

/** The MX, the two submission listeners and the local delivery worker. */
export async function startSmtp(config: Config, deps: SmtpDeps): Promise<SmtpService> {
  const log = deps.log.child({ mod: 'smtp' });
  const localDomains = [config.operator.domain, ...config.operator.domains];
  const kick = () => {
    delivery.kick();
    outbound.kick();
  };
  const bounce = bouncer({ db: deps.db, journal: deps.journal, hostname: config.operator.hostname, operatorDomain: config.operator.domain, localDomains, outboundMaxAgeMs: config.smtp.outboundMaxAge, kick, cipher: deps.cipher });
  const enqueue: EnqueueOutbound = (q, m) => enqueueOutbound(q, m, config.smtp.outboundMaxAge, deps.cipher).then(() => undefined);
  const writer = new SpoolWriter(deps.db, deps.journal, enqueue, deps.cipher);
  const delivery = new DeliveryWorker(deps.db, deps.journal, log, {
    writer,
    lmtp: deps.lmtp,
    ...(deps.lmtpRoute ? { route: deps.lmtpRoute } : {}),
    hostname: config.operator.hostname,
    concurrency: config.smtp.deliveryConcurrency,
    ...(deps.openpgpKeys ? { openpgpKeys: deps.openpgpKeys } : {}),
    cipher: deps.cipher,
    onPermanentFailure: (row, failed) => bounce({ envFrom: row.env_from, body: Buffer.from(row.body!), arrivedAt: new Date(row.received_at), messageId: row.message_id }, failed),
  });
  const outbound = new OutboundWorker(deps.db, deps.journal, log, {
    tls: deps.tls,
    policy: deps.policy,
    hostname: config.operator.hostname,
    routes: config.smtp.routes,
    concurrency: config.smtp.outboundConcurrency,
    retryBaseMs: config.smtp.retryBase,
    cipher: deps.cipher,
    bounce: (row, failed) => bounce({ envFrom: row.env_from, body: Buffer.from(row.body!), arrivedAt: new Date(row.created_at), messageId: row.message_id }, failed),
  });
  /** Stores what a front accepted; once committed, local recipients are delivered at once from memory and the outbound worker hears of the rest. */
  const accept = async (m: Accepted) => {
    const local = m.record.localRcpts.length > 0;
    if (local) m = { ...m, record: { ...m.record, leasedBy: await delivery.leaseHolder() } };
    const spoolId = await writer.accept(m);
    if (local) delivery.deliverNow(spoolId, m.record);
    if (m.remote.length) outbound.kick();
    return spoolId;
  };
  const common: FrontDeps = {
    journal: deps.journal,
    policy: deps.policy,
    resolver: deps.resolver,
    tls: deps.tls,
    authenticate: deps.authenticate,
    certificatePrincipal: deps.certificatePrincipal,
    throttle: deps.throttle,
    ...(deps.psc ? { psc: deps.psc } : {}),
    accept,
    log,
    hostname: config.operator.hostname,
    localDomains,
    maxSize: config.smtp.maxSize,
    patients: { domain: normaliseDomain(config.smtp.patientDomain), maxSize: config.smtp.patientMaxSize },
    ratePerHour: config.smtp.ratePerHour,
    // One count per person or application, whichever port they come through (and, on
    // PostgreSQL, whichever node: in the database, core/policy/window-counts.ts).
    allowRate: deps.db.kind === 'pg' ? sharedRateLimiter(deps.db) : rateLimiter(),
    maxRecipients: config.smtp.maxRecipients,
    maxErrors: config.smtp.maxErrors,
    // One count per peer and per client address, whichever front (or node) they come through.
    unknownRecipients:
      deps.db.kind === 'pg'
        ? new SharedWindowCounter(deps.db, 'smtp.unknown-recipients', config.smtp.unknownRecipientLimit, config.smtp.unknownRecipientWindow)
        : new WindowCounter(config.smtp.unknownRecipientLimit, config.smtp.unknownRecipientWindow),
  };
  const mx = createSmtpFront('mx', common);
  const submission = createSmtpFront('submission', common);
  const submissions = createSmtpFront('submission', common, { implicitTls: true });
  const servers = [mx, submission, submissions];
  const close = () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  try {
    const host = config.smtp.host;
    const ports = {
      mx: await listen(mx, host, config.smtp.mxPort),
      submission: await listen(submission, host, config.smtp.submissionPort),
      submissions: await listen(submissions, host, config.smtp.submissionsPort),
    };
    delivery.start();
    outbound.start();
    const h = host.includes(':') ? `[${host}]` : host;
    log.info({ ...ports, host }, 'smtp listening');
    return {
      ports,
      delivery,
      outbound,
      endpoints: [
        { name: 'SMTP MX', url: `smtp://${h}:${ports.mx} (STARTTLS + operator certificate)` },
        { name: 'SMTP submission', url: `smtp://${h}:${ports.submission} (STARTTLS), smtps://${h}:${ports.submissions}` },
      ],
      health: {
        name: 'smtp',
        async check() {
          const { rows } = await deps.db.query<{ l: number; o: number }>(
            "SELECT (SELECT count(*) FROM smtp_spool WHERE state = 'queued')::int8 AS l, (SELECT count(*) FROM smtp_outbound WHERE state IN ('queued', 'deferred', 'sending'))::int8 AS o",
          );
          return { ok: true, queuedLocal: rows[0].l, queuedOutbound: rows[0].o };
        },
      },
      async stop() {
        await close();
        await writer.drain();
        await delivery.stop();
        await outbound.stop();
        await deps.resolver.close();
      },
    };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
