import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { addMember, createBal, createPerson, registerAppCertificate, type BalContext, type NewBal } from '../../annuaire/bal/index.js';
import { importWhitelist } from '../../annuaire/whitelist/index.js';
import { startPlatform, type Platform } from '../../bin/platform.js';
import { loadConfig, type Config, type DeepPartial } from '../../core/config/index.js';
import { createLogger, silentLogger } from '../../core/logger.js';
import type { TestPki } from './pki.js';
import { seedPglite } from './templates.js';
import { makeWhitelistXml } from './whitelist.js';

export interface TestOperator {
  platform: Platform;
  config: Config;
  domain: string;
  ctx: BalContext;
  ports: { mx: number; submission: number; submissions: number };
  /** A person with a password, holding a PER box `${local}@domain`. */
  person(local: string, idnps: string, password?: string): Promise<{ login: string; address: string; password: string }>;
  bal(b: Omit<NewBal, 'address'> & { local: string }): Promise<string>;
  member(address: string, login: string): Promise<void>;
  appCert(address: string, pem: string): Promise<void>;
  /** Waits until the directory shows every queued change (routing included). */
  synced(): Promise<void>;
  /** Dovecot as that mailbox, through the master user. */
  imap(address: string): Promise<ImapFlow>;
  stop(): Promise<void>;
}

/**
 * Ports chosen before the platform starts (two operators must know each other's MX port):
 * below Linux's ephemeral range (32768+), so no port-0 bind of a daemon can take them meanwhile.
 */
export async function freePorts() {
  const pick = async (): Promise<number> => {
    for (;;) {
      const p = 20000 + Math.floor(Math.random() * 12000);
      if (await isFree(p)) return p;
    }
  };
  return { mx: await pick(), submission: await pick(), submissions: await pick() };
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port }, () => srv.close(() => resolve(true)));
  });
}

/**
 * One whole operator (startPlatform) on loopback: its own data directory, the shared test
 * PKI's `cert` as its server certificate, the given peers on its liste blanche and static
 * routes to them.
 */
export async function startOperator(o: {
  pki: TestPki;
  domain: string;
  cert: 'server' | 'peer-operator';
  ports: { mx: number; submission: number; submissions: number };
  /** Liste blanche entries besides the generated ones: a domain, or a domain with its DNCertificatOperateur. */
  peers: Array<string | { nom: string; dn?: string }>;
  routes?: string[];
  overrides?: DeepPartial<Config>;
  /** The journal's clock (events' `at`), for tests that place traffic in a given month. */
  now?: () => Date;
}): Promise<TestOperator> {
  const dataDir = mkdtempSync(join(tmpdir(), `mss-op-${o.domain.split('.')[0]}-`));
  chmodSync(dataDir, 0o711);
  const config = operatorConfig(o, dataDir);
  if (!config.database.url) seedPglite(dataDir);
  const log = process.env.MSS_TEST_LOG ? createLogger({ log: { level: process.env.MSS_TEST_LOG as 'debug', format: 'json' } }) : silentLogger;
  const platform = await startPlatform(config, log, { now: o.now });
  const { db, journal } = platform;
  await importWhitelist(db, journal, Buffer.from(makeWhitelistXml({ count: 3, extra: o.peers.map((p) => (typeof p === 'string' ? { nom: p } : p)) })), 'test', 'test');
  return operatorOf(platform, config, o);
}

/** The configuration startOperator gives its platform, on the given data directory (tests/backup restores into another). */
export function operatorConfig(o: Pick<Parameters<typeof startOperator>[0], 'pki' | 'domain' | 'cert' | 'ports' | 'routes' | 'overrides'>, dataDir: string): Config {
  const leaf = o.pki.paths.leaves[o.cert];
  return loadConfig({
    env: {},
    overrides: {
      dataDir,
      operator: { domain: o.domain, hostname: o.domain },
      http: { port: 0 },
      ldap: { port: 0, ldapsPort: 0, syncInterval: 50 },
      webmail: { port: 0 },
      fhir: { port: 0 },
      imap: { port: 0, starttlsPort: 0 },
      pki: { autoInit: false },
      // The trust bundle as the platform's default has it: root + intermediate (leaf-only peers).
      tls: { certFile: leaf.cert, keyFile: leaf.key, chainFile: o.pki.paths.intermediate, caFile: o.pki.paths.chain, crlFile: o.pki.file('crl.pem') },
      tsa: { certFile: o.pki.file('tsa.pem'), keyFile: o.pki.file('tsa.key'), chainFile: o.pki.paths.intermediate, caFile: o.pki.paths.ca },
      ...o.overrides,
      // Suites not about the second factor log their national admins in with a password only;
      // tests/webui/console-admins turns admin.requireTotp (default true) back on.
      admin: { enabled: false, requireTotp: false, ...o.overrides?.admin },
      smtp: { mxPort: o.ports.mx, submissionPort: o.ports.submission, submissionsPort: o.ports.submissions, routes: o.routes ?? [], retryBase: 500, ...o.overrides?.smtp },
    },
  });
}

/** The TestOperator of a running platform. */
export function operatorOf(platform: Platform, config: Config, o: { domain: string; ports: TestOperator['ports'] }): TestOperator {
  const { db, journal } = platform;
  const ctx = operatorBalContext(config, db, journal);
  return {
    platform,
    config,
    domain: o.domain,
    ctx,
    ports: o.ports,
    async person(local, idnps, password = `mot-de-passe-${local}-2026`) {
      await createPerson(ctx, { login: local, idnps, nom: local.toUpperCase(), prenom: 'Test', password }, 'test');
      const address = `${local}@${o.domain}`;
      await createBal(ctx, { address, type: 'PER', owner: idnps }, 'test');
      return { login: local, address, password };
    },
    async bal(b) {
      const address = `${b.local}@${o.domain}`;
      const { local: _l, ...rest } = b;
      await createBal(ctx, { ...rest, address }, 'test');
      return address;
    },
    async member(address, login) {
      await addMember(ctx, address, { login }, 'test');
    },
    async appCert(address, pem) {
      await registerAppCertificate(ctx, address, pem, 'test');
    },
    async synced() {
      await platform.directory!.sync();
    },
    async imap(address) {
      const m = platform.mailstore;
      const c = new ImapFlow({ host: m.imap.host, port: m.imap.port, secure: false, auth: { user: `${address}*${m.master.user}`, pass: m.master.password }, logger: false });
      await c.connect();
      return c;
    },
    stop: () => platform.stop(),
  };
}

/** Polls until check() is true (bounded by the test's own timeout). */
export async function until(check: () => Promise<boolean>, everyMs = 100): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, everyMs));
}
