// Back ends and fronts of a shared mail store (mailstore.cluster) started in this process
// by their node's mail store role (tests/mailstore/cluster, move, move-crypt): each node's
// config, and what the fronts do with a box — deliver it where the map says, read it with
// the master user.
import { chmodSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { loadConfig, type Config, type DeepPartial } from '../../core/config/index.js';
import { Keyring } from '../../core/crypt/index.js';
import type { Db } from '../../core/db/index.js';
import pino from 'pino';
import { silentLogger, type Logger } from '../../core/logger.js';
import { freePort } from '../../core/net.js';
import { Supervisor } from '../../core/supervisor.js';
import { startMailstoreRole } from '../../mailstore/cluster.js';
import type { Mailstore } from '../../mailstore/dovecot.js';
import type { LmtpTarget } from '../../mailstore/lmtp.js';
import { LmtpPool } from '../../smtp/lmtp-sessions.js';
import type { TestPki } from './pki.js';

export const storeMessage = (subject: string, to = 'dr.martin@mssante.localhost') =>
  Buffer.from(`From: labo@peer.mssante.fr\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@peer>\r\n\r\nRésultat.\r\n`);

export function storeNodeConfig(pki: TestPki, secretFile: string, o: DeepPartial<Config>): Config {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-node-'));
  chmodSync(dataDir, 0o711);
  const leaf = pki.paths.leaves.server;
  return loadConfig({
    env: {},
    overrides: {
      dataDir,
      pki: { autoInit: false },
      tls: { certFile: leaf.cert, keyFile: leaf.key, chainFile: pki.paths.intermediate, caFile: pki.paths.chain, crlFile: pki.file('crl.pem') },
      ...o,
      mailstore: { cluster: true, secretFile, fullTextSearch: false, ...o.mailstore },
    },
  });
}

/** The secret every node of the store shares (mailstore.secretFile), in a file of its own. */
export function sharedSecretFile(secret: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mss-secret-')), 'secret');
  writeFileSync(file, secret + '\n', { mode: 0o644 });
  return file;
}

/** A box's message files (Maildir new/ and cur/) on one back end's disk. */
export function messageFiles(store: Mailstore, bal: string): string[] {
  const maildir = join(store.mailDir, 'mssante.localhost', bal.split('@')[0], 'Maildir');
  return ['new', 'cur'].flatMap((d) => (existsSync(join(maildir, d)) ? readdirSync(join(maildir, d)).map((f) => join(maildir, d, f)) : []));
}

export type StoreName = 'a' | 'b' | 'c' | 'd';

/**
 * A node's logger that keeps its last warnings and errors — Dovecot's own among them (its
 * replicator's failed syncs), which come through as lines saying "Error:" — for a test to show
 * when it gives up waiting; the suite's loggers are otherwise silent. Logins and deliveries
 * are not kept: a test polling a back end would push out what matters.
 */
export function keptLog(name: string, keep = 100): Logger & { tail: () => string[] } {
  const lines: string[] = [];
  const worth = (l: string) => /"level":[4-6]\d/.test(l) || /(Error|Warning|Fatal|Panic): /.test(l);
  const log = pino({ level: 'info', base: { node: name } }, { write: (l: string) => void (worth(l) && lines.push(l.trimEnd()) > keep && lines.shift()) });
  return Object.assign(log, { tail: () => [...lines] });
}

/**
 * Two pairs of back ends, store-a/store-b and store-c/store-d (each its node's mail store
 * role, replicating into its pair), and a front-only node, front-1, that reaches them
 * through the map. Each supervisor goes into `sups` as soon as it exists, for the caller to
 * stop even when a later start fails. `masterKey`: encryption at rest on every back end
 * (crypt.mailStore), each node opening the database's keyring with that key — nothing is
 * copied between their data directories.
 */
export async function startTwoPairs(
  pki: TestPki,
  secretFile: string,
  db: Db,
  sups: Supervisor[],
  o: { masterKey?: string } = {},
): Promise<{ stores: Record<StoreName, Mailstore>; front: Mailstore; config: Config; logs: Record<StoreName, ReturnType<typeof keptLog>> }> {
  // Each pair's doveadm ports are known before either starts: each replicates into the other.
  const port = {} as Record<StoreName, number>;
  for (const n of ['a', 'b', 'c', 'd'] as const) port[n] = await freePort('127.0.0.1');
  const partnerOf: Record<StoreName, StoreName> = { a: 'b', b: 'a', c: 'd', d: 'c' };
  const stores = {} as Record<StoreName, Mailstore>;
  const logs = {} as Record<StoreName, ReturnType<typeof keptLog>>;
  // One at a time: placement goes to the least-filled back end, the tests place their boxes themselves.
  for (const n of ['a', 'b', 'c', 'd'] as const) {
    logs[n] = keptLog(`store-${n}`);
    const s = new Supervisor(logs[n]);
    sups.push(s);
    const p = partnerOf[n];
    const config = storeNodeConfig(pki, secretFile, {
      node: { name: `store-${n}`, roles: ['mailstore'] },
      mailstore: { doveadmPort: port[n], partner: `store-${p}=127.0.0.1:${port[p]}` },
      ...(o.masterKey ? { crypt: { mailStore: true, masterKey: o.masterKey } } : {}),
    });
    const keyring = o.masterKey ? await Keyring.open(db, config.dataDir, o.masterKey) : undefined;
    stores[n] = await startMailstoreRole(config, logs[n], s, db, keyring);
  }
  const sf = new Supervisor(silentLogger);
  sups.push(sf);
  const config = storeNodeConfig(pki, secretFile, { node: { name: 'front-1', roles: ['fronts'] } });
  return { stores, front: await startMailstoreRole(config, silentLogger, sf, db), config, logs };
}

/** An IMAP session as the box, with the master user, on one back end (what the IMAP proxy opens). */
export async function asBox<T>(front: Mailstore, bal: string, at: { host: string; port: number }, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
  const c = new ImapFlow({ host: at.host, port: at.port, secure: true, tls: { ca: [front.backendCa!] }, auth: { user: `${bal}*${front.master.user}`, pass: front.master.password }, logger: false });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.logout();
  }
}

/** The INBOX's messages, byte for byte, sorted. */
export const inboxSources = (front: Mailstore, bal: string, at: { host: string; port: number }) =>
  asBox(front, bal, at, async (c) => {
    await c.mailboxOpen('INBOX', { readOnly: true });
    const out: Buffer[] = [];
    if ((c.mailbox as { exists: number }).exists) for await (const m of c.fetch('1:*', { source: true })) out.push(m.source!);
    return out.map((x) => x.toString('latin1')).sort();
  });

/**
 * What the SMTP front's delivery does (smtp/delivery.ts): the box's back ends in order, the
 * next when one cannot be reached. Resolves with the LMTP port that took it; null when the
 * map gave no back end (a box frozen by a move: the spool would retry).
 */
export async function deliverThroughMap(front: Mailstore, bal: string, subject: string, message = storeMessage(subject, bal)): Promise<number | null> {
  const [g] = await front.lmtpRoute!([bal]);
  if (!g.targets.length) return null;
  for (const t of g.targets as LmtpTarget[]) {
    const pool = new LmtpPool(t, { name: 'front-1', size: 1 });
    try {
      const r = await pool.deliver({ from: 'labo@peer.mssante.fr', to: [bal] }, message);
      if (r.accepted.length !== 1) throw new Error(`LMTP did not accept ${bal}: ${JSON.stringify(r.failed)}`);
      return t.port;
    } catch (e) {
      if (t === g.targets[g.targets.length - 1]) throw e;
    } finally {
      pool.close();
    }
  }
  throw new Error('no target');
}
