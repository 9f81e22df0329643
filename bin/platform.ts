import { mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { usesDevPki, type Config } from '../core/config/index.js';
import { migrate, openDb, type Db } from '../core/db/index.js';
import { createHttpServer, dbHealth } from '../core/http.js';
import { HealthProber } from '../core/health.js';
import { startHealthListener, type HealthListener } from '../core/health-thread.js';
import { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { journalEvents, journalUnsealed, setOpenPgpKeySource } from '../core/metrics.js';
import { tsaRoutes } from '../certs/http.js';
import { ensureDevPki } from '../certs/pki.js';
import { EXPIRY_WARNING_DAYS, loadTlsMaterial, nodeTlsPolicy } from '../certs/tls.js';
import { recordExpiries } from '../certs/expiry.js';
import { journalTimestamping, sealingOptions } from './sealing.js';
import { Supervisor } from '../core/supervisor.js';
import type { Mailstore } from '../mailstore/dovecot.js';
import { startMailstoreRole, withRoles } from '../mailstore/cluster.js';
import { followKeyring } from '../mailstore/keyring.js';
import { startBackupControl } from '../core/backup/control.js';
import { platformKeyring, spoolCipher } from '../core/crypt/index.js';
import { resumeImports } from '../annuaire/import/importer.js';
import { startDirectory, type Directory } from '../annuaire/ldap/index.js';
import { balFactSource } from '../annuaire/bal/index.js';
import { openPgpKeyCounts, openPgpKeysFor } from '../annuaire/bal/openpgp.js';
import { startAdmin, type AdminService } from '../annuaire/admin/server.js';
import { startFhir } from '../annuaire/fhir/server.js';
import type { DashboardSources } from '../annuaire/admin/dashboard.js';
import { trafficFigures } from '../smtp/figures.js';
import { dmpFailures } from '../dmp/figures.js';
import { operatorDomains } from '../annuaire/admin/wiring.js';
import { startPublicationSender } from '../annuaire/publication/index.js';
import { whitelistFactSource } from '../annuaire/whitelist/index.js';
import { LoginThrottle, Policy } from '../core/policy/index.js';
import { accountLogin, checkCredentials, CredentialCache, principalForCertificate } from '../annuaire/bal/index.js';
import { feederConnection } from '../annuaire/ldap/client.js';
import { ldapPaths } from '../annuaire/ldap/files.js';
import { runningSlapd } from '../annuaire/ldap/slapd.js';
import { LdapRecipientResolver, startSmtp, type SmtpService } from '../smtp/index.js';
import { autoconfigRoutes, startImapProxy, type ImapProxy } from '../imap-proxy/index.js';
import { balsFor, closeSession, openSession, sessionPerson } from '../annuaire/bal/index.js';
import { type PersonAuth } from '../core/policy/index.js';
import { webmailDmpDeps } from './webmail-dmp.js';
import { documentsOfMessage, dmpRules, handoffMessage, startDmpWatcher, startStandinDmp, xdmLimits, type DmpWatcher, type HandoffDeps, type StandinDmp } from '../dmp/index.js';
import { startWebmail, type WebmailService } from '../webmail-api/index.js';
import { callbackUris, startPsc, type PlatformPsc } from './psc.js';
import { PSC_CALLBACK_PATH } from '../identity/psc/index.js';

/**
 * The composition root: the only place that knows every module. It starts them in
 * dependency order and stops them in reverse; each module stays ignorant of the others.
 */
export interface Platform {
  config: Config;
  db: Db;
  journal: Journal;
  http: FastifyInstance;
  /** Runs the external daemons (Dovecot, slapd). */
  supervisor: Supervisor;
  mailstore: Mailstore;
  /** The LDAP directory (slapd fed from the annuaire); absent when ldap.enabled is false. */
  directory?: Directory;
  /** The one access policy (core/policy) every front asks: open / send as a BAL, admin scope, trust space. */
  policy: Policy;
  /** The one failed-login throttle (core/policy) every front that checks a password goes through; its counters are in the database. */
  throttle: LoginThrottle;
  /** The MX, submission and delivery to Dovecot; absent without the LDAP directory it resolves recipients with. */
  smtp?: SmtpService;
  /** The IMAP proxy (993 / 143) in front of Dovecot; absent when imap.enabled is false. */
  imap?: ImapProxy;
  /** The admin API and the operator console on its listener; absent when admin.enabled is false. */
  admin?: AdminService;
  /** The webmail API (HTTPS/JSON as the person, over the IMAP proxy and submission); absent when disabled or without them. */
  webmail?: WebmailService;
  /** The DMP hand-off (dmp/): where ITI-41 submissions go, the local stand-in DMP when it runs, and the per-box rule watcher. */
  dmp?: { endpoint: string; standin?: StandinDmp; handoff: HandoffDeps; watcher: DmpWatcher };
  /** Pro Santé Connect (identity/psc): the configured provider or the local stand-in; absent when neither is configured. */
  psc?: PlatformPsc;
  /** What listens where, for people: printed by `mss start`. */
  endpoints: Array<{ name: string; url: string }>;
  stop(): Promise<void>;
}

export async function startPlatform(configured: Config, log: Logger, opts: { now?: () => Date } = {}): Promise<Platform> {
  // node.roles: a node without the fronts runs its mail store back end only (mailstore/cluster.ts).
  const config = withRoles(configured);
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((e) => log.error({ err: e }, 'error while stopping'));
  };
  try {
    mkdirSync(config.dataDir, { recursive: true });
    if (config.pki.autoInit && usesDevPki(config)) await ensureDevPki(config, log);
    // Read now so a missing or broken certificate stops the start with one clear line.
    const tls = loadTlsMaterial(config);
    for (const w of tls.warnings) log.warn(w);

    const db = await openDb(config, { log: log.child({ mod: 'db' }) });
    stops.push(() => db.close());
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'database migrated');

    const { timestamper, verifier, tsa } = await journalTimestamping(config);
    const journal = new Journal(db, { ...sealingOptions(config, log.child({ mod: 'journal' })), timestamper, verifier, now: opts.now });
    recordExpiries(tls, tsa ? [{ certificate: 'tsa', pem: tsa.certPem }] : []);
    setOpenPgpKeySource(() => openPgpKeyCounts(db, EXPIRY_WARNING_DAYS));
    stops.push(async () => setOpenPgpKeySource(undefined));
    journal.startSealing();
    stops.push(() => journal.stop());
    // `mss backup` asks for an image of the embedded database over a socket of the data directory (core/backup/control.ts).
    if (db.dumpDataDir) stops.push((await startBackupControl({ dataDir: config.dataDir, db, journal, log: log.child({ mod: 'backup' }) })).stop);

    // A sync of the national file applied in steps on the embedded database, interrupted by
    // a crash, is finished before the directory is fed (annuaire/import/runs.ts).
    if (db.kind === 'pglite') {
      for (const r of await resumeImports(db.background(), journal)) log.warn({ file: r.file, journalSeq: r.journalSeq }, 'finished the annuaire import that was interrupted');
    }

    const supervisor = new Supervisor(log.child({ mod: 'supervisor' }));
    stops.push(() => supervisor.stopAll());
    // Encryption at rest (issue 16 §3): the keyring from the database, copied to <dataDir>/keys for Dovecot's mail_crypt, and the spool's.
    const keyring = await platformKeyring(config, db);
    // The daemons and worker processes started from here inherit this environment: none needs the master key.
    delete process.env.MSS_CRYPT_MASTER_KEY;
    const mailstore = await startMailstoreRole(config, log.child({ mod: 'mailstore' }), supervisor, db, keyring);
    // A generation made on another node (mss crypt rotate) reaches this node's Dovecot.
    if (keyring) {
      const unfollow = followKeyring(keyring, db, config.crypt.keyringPoll, mailstore, log.child({ mod: 'crypt' }));
      stops.push(async () => unfollow());
    }

    // LDAP directory (annuaire/ldap): slapd under the supervisor, built from and fed by the
    // annuaire tables; writers queue their changes with queueLdapChanges().
    const directory = config.ldap.enabled ? await startDirectory(config, log, db, journal, { supervisor }) : undefined;
    if (directory) stops.push(() => directory.stop());

    // --- Access policy, admin API, publication (core/policy, annuaire/admin, annuaire/publication).
    // One Policy for every front, fed by the annuaire's facts (local BALs, liste blanche).
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: operatorDomains(config), log: log.child({ mod: 'policy' }) });
    // One login throttle for every password check (IMAP, submission, webmail, admin API),
    // one count per person however they name themselves (login or personal box address).
    const throttle = new LoginThrottle(config.auth, {
      db,
      journal,
      log: log.child({ mod: 'auth-throttle' }),
      accountOf: (realm, user) => (realm === 'person' ? accountLogin(db, user) : Promise.resolve(null)),
    });
    // One password cache for every front too: a password verified on IMAP is known to submission.
    const credentialCache = new CredentialCache({ ttlMs: config.auth.cacheTtl, maxEntries: config.auth.cacheSize });
    const checkPassword = (user: string, secret: string) => checkCredentials(db, user, secret, { cache: credentialCache });
    // --- Pro Santé Connect (identity/psc): psc.issuer, or the stand-in provider started here.
    const psc = await startPsc(config, tls, db, log);
    if (psc) stops.push(() => psc.stop());
    // --- end of the PSC block.

    // The console's dashboard reads the spool, the queue and the DMP hand-offs through their modules' own readers.
    const dashboardSources: DashboardSources = {
      traffic: (f) => trafficFigures(db, f),
      dmpFailures: (f) => dmpFailures(db, f),
      // The certificate the listeners serve (read once at start: a renewed file takes a restart).
      serverCertificate: () => ({ subject: tls.leaf.subject.replace(/\n/g, ', '), notAfter: new Date(tls.leaf.validTo) }),
    };
    const admin = config.admin.enabled ? await startAdmin(config, log, db, journal, policy, throttle, dashboardSources, psc ? { startLogin: psc.startLogin, finishLogin: (q, p) => psc.client.finishLogin(q, p) } : undefined) : undefined;
    if (admin) stops.push(() => admin.stop());
    const publisher = config.publication.url
      ? startPublicationSender(db, journal, { url: config.publication.url, token: config.publication.token, maxAttempts: config.publication.maxAttempts, retryBaseMs: config.publication.retryBase, timeoutMs: config.publication.timeout, intervalMs: config.publication.interval, log: log.child({ mod: 'publication' }) })
      : undefined;
    if (publisher) stops.push(() => publisher.stop());
    // The annuaire as FHIR R4 (annuaire/fhir), read-only, for the trust space's software (mutual TLS).
    const fhir = config.fhir.enabled ? await startFhir(config, log, { db, policy }) : undefined;
    if (fhir) stops.push(() => fhir.stop());
    const adminEndpoints = [
      ...(admin ? [{ name: 'admin API', url: `${admin.url}/api/v1 (docs ${admin.url}/docs)` }] : []),
      ...(fhir ? [{ name: 'FHIR annuaire', url: `${fhir.url}/metadata (client certificate required)` }] : []),
      ...(admin ? [{ name: 'operator console', url: admin.console }] : []),
      ...(admin?.bootstrap ? [{ name: 'admin account', url: `${admin.bootstrap.login} / ${admin.bootstrap.password} — shown once, also in ${admin.bootstrap.file} (mode 0600); change it${config.admin.requireTotp ? '; its first login enrols a second factor (TOTP, admin.requireTotp)' : ''}` }] : []),
    ];
    // --- end of the policy / admin / publication block.

    // --- SMTP (smtp/): recipients resolved in the directory's private routing branch, bound
    // as the platform's own account; delivery to Dovecot over LMTP.
    let smtp: SmtpService | undefined;
    const slapd = directory ? runningSlapd(ldapPaths(config)) : undefined;
    if (slapd) {
      const conn = feederConnection(ldapPaths(config), slapd.ldaps, config.ldap.baseDn);
      const resolver = new LdapRecipientResolver({
        url: conn.url,
        bindDn: conn.bindDn,
        bindPassword: conn.secret,
        base: `ou=routage,${config.ldap.baseDn}`,
        tlsOptions: { ca: [conn.ca], checkServerIdentity: () => undefined, ...nodeTlsPolicy() },
        log: log.child({ mod: 'smtp-resolver' }),
      });
      smtp = await startSmtp(config, {
        db,
        journal,
        policy,
        resolver,
        tls,
        log,
        lmtp: mailstore.lmtp,
        openpgpKeys: (rcpts) => openPgpKeysFor(db, rcpts),
        ...(mailstore.lmtpRoute ? { lmtpRoute: mailstore.lmtpRoute } : {}),
        cipher: spoolCipher(keyring, config.crypt.spool),
        authenticate: async (user, secret) => {
          const r = await checkPassword(user, secret);
          return r.ok ? r.principal : null;
        },
        // Submission's logins name no box: an application certificate must be registered for one.
        certificatePrincipal: (pem) => principalForCertificate(db, pem, { registered: true }),
        throttle,
        ...(psc ? { psc: { checkToken: psc.checkToken, challenge: psc.challenge } } : {}),
      });
      stops.push(() => smtp!.stop());
    } else log.warn('SMTP not started: it needs the LDAP directory (ldap.enabled) to resolve recipients');
    // --- end of the SMTP block.

    // --- IMAP proxy (imap-proxy/): IMAPS 993 and STARTTLS 143 before Dovecot; passwords and
    // certificates checked by the annuaire, the BAL opened only if the policy says so, traces
    // in the journal, Dovecot reached as the BAL with the master user.
    const imap = config.imap.enabled
      ? await startImapProxy(config, {
          tls,
          policy,
          journal,
          log,
          backend: { host: mailstore.imap.host, port: mailstore.imap.port, master: mailstore.master, ...(mailstore.backendCa ? { tls: { ca: mailstore.backendCa } } : {}) },
          ...(mailstore.imapRoute ? { route: mailstore.imapRoute } : {}),
          checkPassword,
          certificatePrincipal: (pem) => principalForCertificate(db, pem),
          throttle,
          ...(psc ? { psc: { checkToken: psc.checkToken, challenge: psc.challenge } } : {}),
        })
      : undefined;
    if (imap) stops.push(() => imap.stop());
    // Thunderbird autoconfig, on the platform's HTTP listener (registered below, before it listens).
    const autoconfig = {
      hostname: config.operator.hostname,
      domains: operatorDomains(config),
      displayName: config.operator.name,
      imap: { port: imap?.ports.imaps ?? config.imap.port, starttlsPort: imap?.ports.imap ?? config.imap.starttlsPort },
      smtp: { submissionsPort: smtp?.ports.submissions ?? config.smtp.submissionsPort, submissionPort: smtp?.ports.submission ?? config.smtp.submissionPort },
    };
    // --- end of the IMAP proxy block.

    // --- DMP hand-off (dmp/): ITI-41 to dmp.url, or to the local stand-in DMP (the real one
    // is out of reach here); per-BAL rules watched in Dovecot.
    let dmp: Platform['dmp'];
    const standin = !config.dmp.url && config.dmp.standin ? await startStandinDmp({ host: config.dmp.standinHost, port: config.dmp.standinPort, log }) : undefined;
    if (standin) stops.push(() => standin.stop());
    const dmpEndpoint = config.dmp.url ?? standin?.url;
    if (dmpEndpoint) {
      const limits = xdmLimits(config);
      const handoff: HandoffDeps = { db, journal, documentsOf: (raw) => documentsOfMessage(raw, limits), endpoint: dmpEndpoint, timeoutMs: config.dmp.timeout, tls: { ca: [readFileSync(config.tls.caFile, 'utf8')] }, log };
      const watcher = startDmpWatcher({ db, rules: () => dmpRules(db), imap: { host: mailstore.imap.host, port: mailstore.imap.port, master: mailstore.master, ...(mailstore.imapRoute ? { route: mailstore.imapRoute, ca: mailstore.backendCa } : {}) }, handoff: (req) => handoffMessage(handoff, req), intervalMs: config.dmp.ruleInterval, log: log.child({ mod: 'dmp-watcher' }) });
      stops.push(() => watcher.stop());
      dmp = { endpoint: dmpEndpoint, standin, handoff, watcher };
    }
    // --- end of the DMP block.

    // --- Webmail API (webmail-api/): as the person, through the IMAP proxy and submission
    // above, the webmail session token being the secret; the annuaire issues the tokens.
    let webmail: WebmailService | undefined;
    if (config.webmail.enabled && imap && smtp) {
      const ca = [readFileSync(config.tls.caFile, 'utf8')];
      const life = { ttlMs: config.webmail.tokenTtl, maxAgeMs: config.webmail.maxTokenAge };
      // The fronts are reached on loopback but checked against the name their certificate carries.
      const servername = config.operator.hostname;
      const ldapTarget = slapd ? { url: slapd.ldap, baseDn: config.ldap.baseDn, ca, servername } : undefined;
      const local = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h);
      webmail = await startWebmail(config, {
        log,
        journal,
        tls,
        checkPassword,
        throttle,
        openSession: (p) => openSession(db, p, life),
        ...(psc ? { psc: { startLogin: psc.startLogin, finishLogin: psc.finishLogin } } : {}),
        async verifySession(token) {
          const s = await sessionPerson(db, token, life);
          return s ? { kind: 'person', id: String(s.row.id), login: s.row.login, idnps: s.row.idnps, auth: s.auth as PersonAuth, ...(s.acr ? { acr: s.acr } : {}), ...(s.amr ? { amr: s.amr } : {}) } : null;
        },
        closeSession: (token) => closeSession(db, token),
        balsFor: async (p) => (await balsFor(db, p)).map((b) => ({ address: b.address, type: b.type, description: b.description })),
        imap: { host: local(config.imap.host), port: imap.ports.imaps, ca, servername },
        submission: { host: local(config.smtp.host), port: smtp.ports.submissions, ca, servername },
        ...(ldapTarget ? { ldap: ldapTarget } : {}),
        ...(dmp ? webmailDmpDeps({ db, journal, policy, handoff: dmp.handoff, documentsOf: (raw) => documentsOfMessage(raw, xdmLimits(config)) }) : {}),
      });
      stops.push(() => webmail!.stop());
    }
    // --- end of the webmail block.

    // /health from a background prober (core/health.ts), served with the platform's HTTP port
    // by a thread of its own (core/health-thread.ts): a busy event loop here (PGlite runs on
    // it) cannot delay it; a stalled one shows as stale results. The fastify listener below
    // (metrics, TSA, autoconfig) listens on loopback for that thread only.
    let healthListener: HealthListener | undefined;
    const prober = new HealthProber(
      [
        dbHealth(db),
        mailstore.health,
        ...(smtp ? [smtp.health] : []),
        ...(imap ? [imap.health] : []),
        ...(directory ? [directory.health] : []),
        {
          name: 'journal',
          async check() {
            const { rows } = await db.query<{ seq: number; sealed: number | null }>('SELECT (SELECT seq FROM journal_head) AS seq, (SELECT max(last_seq) FROM journal_seals) AS sealed');
            const unsealed = rows[0].seq - (rows[0].sealed ?? 0);
            journalUnsealed.set(unsealed);
            return { events: rows[0].seq, unsealed };
          },
        },
      ],
      { intervalMs: config.http.healthInterval, timeoutMs: config.http.healthTimeout, staleMs: config.http.healthStale },
      (states) => healthListener?.update(states),
    );
    const http = createHttpServer(log, prober);
    if (tsa) await http.register(tsaRoutes, { tsa });
    await http.register(autoconfigRoutes, autoconfig);
    await http.listen({ host: '127.0.0.1', port: 0 });
    stops.push(() => http.close());
    await prober.start();
    stops.push(() => prober.stop());
    healthListener = await startHealthListener({
      host: config.http.host,
      port: config.http.port,
      upstream: { host: '127.0.0.1', port: (http.server.address() as AddressInfo).port },
      staleMs: config.http.healthStale,
      priority: config.http.healthPriority,
      states: prober.snapshot(),
      log: log.child({ mod: 'http' }),
    });
    stops.push(() => healthListener!.stop());
    const port = healthListener.port;
    const base = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;

    // The stand-in PSC lets in the fronts' callbacks, now that they listen.
    psc?.register([webmail?.url, admin?.url].filter((u): u is string => !!u).flatMap((u) => callbackUris(u, PSC_CALLBACK_PATH, config.operator.hostname)));

    await journal.append({ type: 'platform.start', actor: 'system', details: { database: db.kind, http: base } });
    journalEvents.inc();
    const endpoints = [
      { name: 'health', url: `${base}/health` },
      { name: 'metrics', url: `${base}/metrics` },
      ...(tsa ? [{ name: 'timestamping', url: `${base}/tsa` }] : []),
      ...(directory?.endpoints ?? []),
      ...adminEndpoints,
      ...(smtp?.endpoints ?? []),
      ...(imap?.endpoints ?? []),
      ...(webmail?.endpoints ?? []),
      ...(dmp ? [{ name: standin ? 'stand-in DMP' : 'DMP (ITI-41)', url: dmp.endpoint }] : []),
      ...(psc ? [{ name: psc.standin ? 'stand-in Pro Santé Connect' : 'Pro Santé Connect', url: psc.issuer }] : []),
      { name: 'mail store', url: `Dovecot, IMAP ${mailstore.imap.host}:${mailstore.imap.port} and LMTP ${mailstore.lmtp.host}:${mailstore.lmtp.port} (internal)` },
    ];
    return {
      config,
      db,
      journal,
      http,
      supervisor,
      mailstore,
      directory,
      policy,
      throttle,
      smtp,
      imap,
      admin,
      webmail,
      dmp,
      psc,
      endpoints,
      async stop() {
        // Written before the journal's final seal, so the stop itself is sealed too.
        await journal.append({ type: 'platform.stop', actor: 'system' }).catch(() => {});
        await stopAll();
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
