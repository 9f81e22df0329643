// Back ends and fronts of a shared mail store (mailstore.cluster) started in this process
// by their node's mail store role (tests/mailstore/cluster, move): each node's config, and
// what the fronts do with a box — deliver it where the map says, read it with the master user.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { loadConfig, type Config, type DeepPartial } from '../../core/config/index.js';
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
export async function deliverThroughMap(front: Mailstore, bal: string, subject: string): Promise<number | null> {
  const [g] = await front.lmtpRoute!([bal]);
  if (!g.targets.length) return null;
  for (const t of g.targets as LmtpTarget[]) {
    const pool = new LmtpPool(t, { name: 'front-1', size: 1 });
    try {
      const r = await pool.deliver({ from: 'labo@peer.mssante.fr', to: [bal] }, storeMessage(subject, bal));
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
