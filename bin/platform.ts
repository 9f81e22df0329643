import { mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { usesDevPki, type Config } from '../core/config/index.js';
import { migrate, openDb, type Db } from '../core/db/index.js';
import { createHttpServer, dbHealth } from '../core/http.js';
import { Journal, type Timestamper, type TokenVerifier } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { journalEvents, journalUnsealed } from '../core/metrics.js';
import { tsaRoutes } from '../certs/http.js';
import { ensureDevPki } from '../certs/pki.js';
import { loadTlsMaterial } from '../certs/tls.js';
import { createHttpTimestamper, loadTsa, verifyTimestampResponse } from '../certs/tsa.js';
import { MssError } from '../core/errors.js';
import { Supervisor } from '../core/supervisor.js';
import { startMailstore, type Mailstore } from '../mailstore/dovecot.js';
import { startDirectory, type Directory } from '../annuaire/ldap/index.js';

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
  /** What listens where, for people: printed by `mss start`. */
  endpoints: Array<{ name: string; url: string }>;
  stop(): Promise<void>;
}

export async function startPlatform(config: Config, log: Logger): Promise<Platform> {
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((e) => log.error({ err: e }, 'error while stopping'));
  };
  try {
    mkdirSync(config.dataDir, { recursive: true });
    if (config.pki.autoInit && usesDevPki(config)) await ensureDevPki(config, log);
    // Read now so a missing or broken certificate stops the start with one clear line.
    loadTlsMaterial(config);

    const db = await openDb(config);
    stops.push(() => db.close());
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'database migrated');

    const { timestamper, verifier, tsa } = await journalTimestamping(config);
    const journal = new Journal(db, { log: log.child({ mod: 'journal' }), timestamper, verifier, sealBatch: config.journal.sealBatch, sealIntervalMs: config.journal.sealInterval });
    journal.startSealing();
    stops.push(() => journal.stop());

    const supervisor = new Supervisor(log.child({ mod: 'supervisor' }));
    stops.push(() => supervisor.stopAll());
    const mailstore = await startMailstore(config, log.child({ mod: 'mailstore' }), supervisor);

    // LDAP directory (annuaire/ldap): slapd under the supervisor, built from and fed by the
    // annuaire tables; writers queue their changes with queueLdapChanges().
    const directory = config.ldap.enabled ? await startDirectory(config, log, db, journal, { supervisor }) : undefined;
    if (directory) stops.push(() => directory.stop());

    const http = createHttpServer(log, [
      dbHealth(db),
      mailstore.health,
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
    ]);
    if (tsa) await http.register(tsaRoutes, { tsa });
    await http.listen({ host: config.http.host, port: config.http.port });
    stops.push(() => http.close());
    const port = (http.server.address() as AddressInfo).port;
    const base = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;

    await journal.append({ type: 'platform.start', actor: 'system', details: { database: db.kind, http: base } });
    journalEvents.inc();
    const endpoints = [
      { name: 'health', url: `${base}/health` },
      { name: 'metrics', url: `${base}/metrics` },
      ...(tsa ? [{ name: 'timestamping', url: `${base}/tsa` }] : []),
      ...(directory?.endpoints ?? []),
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

/** The built-in TSA from the configured files, or an external one (tsa.url). */
export async function journalTimestamping(config: Config): Promise<{ timestamper: Timestamper; verifier: TokenVerifier; tsa?: Awaited<ReturnType<typeof loadTsa>> }> {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new MssError('FILE_UNREADABLE', { what, file, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message });
    }
  };
  const verifier: TokenVerifier = {
    verify: (tsr, data) =>
      verifyTimestampResponse(tsr, data, { caPems: [read(config.tsa.caFile, 'TSA trust anchors (tsa.caFile)')], untrustedPems: [read(config.tsa.chainFile, 'TSA chain (tsa.chainFile)')] }),
  };
  if (config.tsa.url) return { timestamper: createHttpTimestamper(config.tsa.url), verifier };
  const tsa = await loadTsa(config);
  return { timestamper: tsa, verifier, tsa };
}
