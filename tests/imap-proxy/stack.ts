// The real stack the IMAP proxy tests run against: a development PKI, PGlite with the
// migrations, the journal, the one Policy built as bin/platform.ts builds it, Dovecot under
// a Supervisor (startMailstore), BALs and persons made with annuaire/bal, and the proxy on
// free loopback ports. Plus a raw IMAP client for what libraries will not send.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { loadConfig, type Config, type DeepPartial } from '../../core/config/index.js';
import { migrate, openPglite, type Db } from '../../core/db/index.js';
import { Journal, type JournalEvent } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { Policy } from '../../core/policy/index.js';
import { Supervisor } from '../../core/supervisor.js';
import { loadTlsMaterial } from '../../certs/tls.js';
import { devIssuer, DEV_RPPS, DEV_STRUCTURE_ID, issueCertificate } from '../../certs/pki.js';
import { startMailstore, type Mailstore } from '../../mailstore/dovecot.js';
import { deliverLmtp } from '../../mailstore/lmtp.js';
import { addMember, balFactSource, checkCredentials, closeBal, createBal, createPerson, principalForCertificate, registerAppCertificate, type BalContext } from '../../annuaire/bal/index.js';
import { whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { startImapProxy, type ImapProxy } from '../../imap-proxy/index.js';
import { testPki, type TestPki } from '../helpers/pki.js';

export const DOMAIN = 'mssante.localhost';
export const PER = `jeanne.martin@${DOMAIN}`;
export const PER_PAUL = `paul.durand@${DOMAIN}`;
export const PER_CLOSED = `paul.ancien@${DOMAIN}`;
export const ORG = `secretariat.cardio@${DOMAIN}`;
export const ORG_CLOSED = `ancien.service@${DOMAIN}`;
export const APP = `labo-resultats@${DOMAIN}`;
export const APP_CLOSED = `labo-ferme@${DOMAIN}`;
export const PW = { jeanne: 'correct horse battery', marie: 'un mot de passe long', paul: 'paul paul paul paul' };
export const PAUL_RPPS = '99999999903';

export interface Stack {
  config: Config;
  pki: TestPki;
  db: Db;
  journal: Journal;
  store: Mailstore;
  proxy: ImapProxy;
  supervisor: Supervisor;
  /** TLS client options trusting the dev CA, for 127.0.0.1. */
  tls(extra?: ConnectionOptions): ConnectionOptions;
  /** An application certificate from the dev CA that is registered for no box. */
  otherApp: { cert: string; key: string };
  deliver(to: string, subject: string, body?: string): Promise<void>;
  events(typePrefix: string, subject?: string): Promise<JournalEvent[]>;
  stop(): Promise<void>;
}

export const message = (to: string, subject: string, body = 'Résultat : normal.') =>
  Buffer.from(`From: labo@peer.${DOMAIN}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@peer>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`);

export async function startStack(imap: DeepPartial<Config['imap']> = {}, mailstore: DeepPartial<Config['mailstore']> = {}): Promise<Stack> {
  const pki = await testPki();
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-imapp-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      operator: { domain: DOMAIN, hostname: 'localhost' },
      mailstore,
      // Failures are delayed for real, but briefly: the tests check the delay is there.
      imap: { port: 0, starttlsPort: 0, failureDelay: 30, ...imap },
      tls: { certFile: pki.paths.leaves.server.cert, keyFile: pki.paths.leaves.server.key, chainFile: pki.paths.intermediate, caFile: pki.paths.ca, crlFile: pki.paths.crl },
    },
  });
  const supervisor = new Supervisor(silentLogger);
  const store = await startMailstore(config, silentLogger, supervisor);
  const db = await openPglite();
  await migrate(db);
  const journal = new Journal(db);
  // As bin/platform.ts builds it: one Policy fed by the annuaire's facts.
  const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: [DOMAIN] });

  const ctx: BalContext = { db, journal, domains: [DOMAIN] };
  await createPerson(ctx, { login: 'jeanne', idnps: DEV_RPPS, nom: 'MARTIN', prenom: 'Jeanne', password: PW.jeanne }, 'test');
  await createPerson(ctx, { login: 'marie.secretaire', nom: 'DURAND', prenom: 'Marie', password: PW.marie }, 'test');
  await createPerson(ctx, { login: 'paul', idnps: PAUL_RPPS, nom: 'DURAND', prenom: 'Paul', password: PW.paul }, 'test');
  await createBal(ctx, { address: PER, type: 'PER', owner: DEV_RPPS }, 'test');
  await createBal(ctx, { address: PER_PAUL, type: 'PER', owner: PAUL_RPPS }, 'test');
  await createBal(ctx, { address: PER_CLOSED, type: 'PER', owner: PAUL_RPPS }, 'test');
  await createBal(ctx, { address: ORG, type: 'ORG', owner: '750000001', service: 'Cardiologie' }, 'test');
  await createBal(ctx, { address: ORG_CLOSED, type: 'ORG', owner: '750000001' }, 'test');
  await createBal(ctx, { address: APP, type: 'APP', owner: DEV_STRUCTURE_ID }, 'test');
  await createBal(ctx, { address: APP_CLOSED, type: 'APP', owner: DEV_STRUCTURE_ID }, 'test');
  await addMember(ctx, ORG, { login: 'marie.secretaire' }, 'test');
  await addMember(ctx, ORG_CLOSED, { login: 'marie.secretaire' }, 'test');
  const appPem = readFileSync(pki.paths.leaves.application.cert, 'utf8');
  await registerAppCertificate(ctx, APP, appPem, 'test');
  await registerAppCertificate(ctx, APP_CLOSED, appPem, 'test');
  await closeBal(ctx, PER_CLOSED, 'test');
  await closeBal(ctx, ORG_CLOSED, 'test');
  await closeBal(ctx, APP_CLOSED, 'test');
  const other = await issueCertificate(devIssuer(pki.dir), { type: 'application', name: 'autre-logiciel', organisation: 'Autre structure', organisationId: DEV_STRUCTURE_ID }, { keyBits: 2048, validityDays: 30 });

  const proxy = await startImapProxy(config, {
    tls: loadTlsMaterial(config),
    policy,
    journal,
    log: silentLogger,
    backend: { host: store.imap.host, port: store.imap.port, master: store.master },
    checkPassword: (user, secret) => checkCredentials(db, user, secret),
    certificatePrincipal: (pem) => principalForCertificate(db, pem),
  });
  const ca = pki.read('ca.pem');
  return {
    config,
    pki,
    db,
    journal,
    store,
    proxy,
    supervisor,
    otherApp: { cert: other.certPem, key: other.keyPem },
    tls: (extra = {}) => ({ ca, servername: 'localhost', ...extra }),
    async deliver(to, subject, body) {
      const r = await deliverLmtp(store.lmtp, { from: `labo@peer.${DOMAIN}`, to: [to] }, message(to, subject, body));
      if (r.failed.length) throw new Error(`LMTP refused: ${JSON.stringify(r.failed)}`);
    },
    async events(typePrefix, subject) {
      await journal.flush();
      return (await journal.list({ typePrefix, subject, limit: 1000 })).reverse();
    },
    async stop() {
      await proxy.stop();
      await journal.flush();
      await supervisor.stopAll();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A line-oriented IMAP client over TCP or TLS, for raw exchanges (EXTERNAL, garbage, slow clients). */
export class RawImap {
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  readonly done: Promise<void>;

  private constructor(public socket: Socket | TLSSocket) {
    this.attach(socket);
    this.done = new Promise((r) => socket.once('close', () => r()));
  }

  private attach(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => {});
  }

  static tls(port: number, opts: ConnectionOptions): Promise<RawImap> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ...opts }, () => resolve(new RawImap(s)));
      s.once('error', reject);
    });
  }

  static tcp(port: number): Promise<RawImap> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(new RawImap(s)));
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the received text matches; returns it all and clears the buffer up to the match's end. */
  async until(re: RegExp): Promise<string> {
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const upto = m.index + m[0].length;
        const text = this.buf.slice(0, upto);
        this.buf = this.buf.slice(upto);
        return text;
      }
      if (this.closed) throw new Error(`connection closed before ${re}; received: ${JSON.stringify(this.buf.slice(-500))}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Everything received until the server closed the connection. */
  async rest(): Promise<string> {
    await this.done;
    const t = this.buf;
    this.buf = '';
    return t;
  }

  /** STARTTLS on this connection (after the server's OK). */
  async upgrade(opts: ConnectionOptions): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ...opts }, () => resolve());
      s.once('error', reject);
      this.socket = s;
      this.buf = '';
      this.attach(s);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

export const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
