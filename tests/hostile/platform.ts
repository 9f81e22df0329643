// The one operator the network fronts' corpora run against: a whole platform (PGlite,
// slapd, Dovecot, MX, submission, IMAP proxy, admin and webmail APIs) started with
// tests/helpers/operator.ts, with the people, boxes, certificates and admin accounts the
// cases need, and a ledger of what it acknowledged (checked in Dovecot at the end).
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { expect } from 'vitest';
import { closeBal } from '../../annuaire/bal/index.js';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { devIssuer, DEV_RPPS, DEV_STRUCTURE_ID, issueCertificate } from '../../certs/pki.js';
import type { Config, DeepPartial } from '../../core/config/index.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';

export const DOMAIN = 'mssante.localhost';
/** The peer operator of the test PKI's `peer-operator` certificate, on the liste blanche. */
export const PEER = 'peer.mssante.localhost';
/** A second peer operator on the liste blanche, with a certificate minted here: cases that make a peer hit a limit use it (and another source address), so the first peer keeps being served. */
export const PEER2 = 'peer2.mssante.localhost';

export interface Account {
  login: string;
  address: string;
  password: string;
}

export type Leaf = 'peer-operator' | 'expired' | 'revoked' | 'foreign' | 'application' | 'personal' | 'server';
export interface KeyPair {
  cert: string;
  key: string;
}

export interface HostileOperator {
  op: TestOperator;
  pki: TestPki;
  config: Config;
  ca: string;
  /** jeanne (holder of the dev personal certificate), paul, secretaire (member of org), intrus. */
  who: Record<'jeanne' | 'paul' | 'secretaire' | 'intrus', Account>;
  /** Accounts for cases that lock an account out: one per case, never used to check serving. */
  victim(n: number): Account;
  org: string;
  app: string;
  /** `lists` organisational boxes liste0@… (startHostileOperator's option), for per-transaction recipient limits. */
  lists: string[];
  closedOrg: string;
  closedPer: string;
  listeRouge: string;
  /** A test PKI certificate with the chain a real peer sends (its intermediate; a foreign one alone). */
  leaf(name: Leaf, withChain?: boolean): KeyPair;
  /** Certificates minted for the cases: a server certificate for a domain not on the liste blanche, the second peer's, an application certificate registered nowhere. */
  rogue: KeyPair;
  peer2: KeyPair;
  strayApp: KeyPair;
  /** TLS client options trusting the test root, for the operator's name. */
  tls(as?: KeyPair, extra?: ConnectionOptions): ConnectionOptions;
  admin: { url: string; national: { login: string; password: string }; regional: { login: string; password: string } };
  webmailUrl: string;
  ports: { mx: number; submission: number; submissions: number; imaps: number; imap: number };
  /** Records a message the platform acknowledged for `box`; nothingLost() looks for it in Dovecot. */
  acked(box: string, messageId: string): void;
  ackedCount(): number;
  /** Every acknowledged message is in its box (delivery is asynchronous: waits for it, bounded by the test's timeout). */
  nothingLost(): Promise<void>;
  stop(): Promise<void>;
}

/** Each failed login still waits, briefly (auth.failureDelay, growing up to auth.maxFailureDelay): the corpus has dozens of them. */
const QUICK_FAILURES: DeepPartial<Config> = { auth: { failureDelay: 20, maxFailureDelay: 80 } };

export async function startHostileOperator(overrides: DeepPartial<Config> = {}, o: { lists?: number } = {}): Promise<HostileOperator> {
  const pki = await testPki();
  const op = await startOperator({
    pki,
    domain: DOMAIN,
    cert: 'server',
    ports: await freePorts(),
    peers: [PEER, PEER2],
    overrides: {
      ...overrides,
      ...QUICK_FAILURES,
      admin: { enabled: true, port: 0, ...overrides.admin },
      imap: { port: 0, starttlsPort: 0, ...overrides.imap },
      smtp: { maxSize: 200_000, ...overrides.smtp },
    },
  });
  const ctx = op.ctx;
  const person = async (local: string, idnps: string) => op.person(local, idnps, `mot de passe de ${local} 2026`);
  const who = {
    jeanne: await person('jeanne.martin', `8${DEV_RPPS}`),
    paul: await person('paul.durand', '899999999902'),
    secretaire: await person('secretaire', '899999999903'),
    intrus: await person('intrus', '899999999904'),
  };
  const victims: Account[] = [];
  for (let i = 0; i < 6; i++) victims.push(await person(`cible${i}`, `89999999991${i}`));
  const org = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie' });
  await op.member(org, 'secretaire');
  const app = await op.bal({ local: 'labo-resultats', type: 'APP', owner: DEV_STRUCTURE_ID });
  await op.appCert(app, readFileSync(pki.paths.leaves.application.cert, 'utf8'));
  const closedOrg = await op.bal({ local: 'ancien.cabinet', type: 'ORG', owner: '1750000002' });
  await closeBal(ctx, closedOrg, 'test');
  const closedPer = await op.bal({ local: 'paul.ancien', type: 'PER', owner: '899999999902' });
  await closeBal(ctx, closedPer, 'test');
  const listeRouge = await op.bal({ local: 'discret', type: 'PER', owner: '899999999904', listeRouge: true });
  const lists: string[] = [];
  for (let i = 0; i < (o.lists ?? 0); i++) lists.push(await op.bal({ local: `liste${i}`, type: 'ORG', owner: '1750000001', service: `Liste ${i}` }));

  const issuer = devIssuer(pki.dir);
  const inter = pki.read('intermediate.pem');
  const peer2Issued = await issueCertificate(issuer, { type: 'server', domain: PEER2, organisation: 'Second opérateur pair (test)', dnsNames: ['localhost'] }, { keyBits: 2048, validityDays: 30 });
  const rogueIssued = await issueCertificate(issuer, { type: 'server', domain: 'rogue.example', organisation: 'Rogue' }, { keyBits: 2048, validityDays: 30 });
  const strayIssued = await issueCertificate(issuer, { type: 'application', name: 'autre-logiciel', organisation: 'Autre structure', organisationId: DEV_STRUCTURE_ID }, { keyBits: 2048, validityDays: 30 });

  const { db, journal } = op.platform;
  const national = { login: 'national.hostile', password: 'national hostile 2026 !' };
  const regional = { login: 'regional.hostile', password: 'regional hostile 2026 !' };
  await createAdmin(db, journal, { ...national, role: 'national' }, 'test');
  await createAdmin(db, journal, { ...regional, role: 'regional', structures: ['1750000001'] }, 'test');
  await op.synced();

  const endpoint = (name: string) => {
    const e = op.platform.endpoints.find((x) => x.name === name);
    if (!e) throw new Error(`the platform did not start its ${name}`);
    return e.url.replace(/\/api\/v1.*$/, '');
  };
  const ca = pki.read('ca.pem');
  const ledger = new Map<string, Set<string>>();
  const leaf = (name: Leaf, withChain = name !== 'foreign'): KeyPair => ({
    cert: readFileSync(pki.file(`${name}.pem`), 'utf8') + (withChain ? inter : ''),
    key: readFileSync(pki.file(`${name}.key`), 'utf8'),
  });

  return {
    op,
    pki,
    config: op.config,
    ca,
    who,
    victim: (n) => victims[n],
    org,
    app,
    closedOrg,
    closedPer,
    listeRouge,
    lists,
    leaf,
    rogue: { cert: rogueIssued.certPem + inter, key: rogueIssued.keyPem },
    peer2: { cert: peer2Issued.certPem + inter, key: peer2Issued.keyPem },
    strayApp: { cert: strayIssued.certPem + inter, key: strayIssued.keyPem },
    tls: (as, extra = {}) => ({ ca, servername: 'localhost', minVersion: 'TLSv1.2', ...(as ? { cert: as.cert, key: as.key } : {}), ...extra }),
    admin: { url: endpoint('admin API'), national, regional },
    webmailUrl: endpoint('webmail API'),
    ports: { ...op.ports, imaps: op.platform.imap!.ports.imaps, imap: op.platform.imap!.ports.imap },
    acked(box, messageId) {
      const set = ledger.get(box) ?? new Set<string>();
      set.add(messageId.replace(/^<|>$/g, ''));
      ledger.set(box, set);
    },
    ackedCount: () => [...ledger.values()].reduce((n, s) => n + s.size, 0),
    async nothingLost() {
      expect(ledger.size, 'the corpus acknowledged messages to check').toBeGreaterThan(0);
      // Delivery to Dovecot follows the 250: wait for it, with a safety net (not a bound
      // on speed) after which what is still missing is named.
      const deadline = Date.now() + 240_000;
      for (const [box, ids] of ledger) {
        let missing: string[];
        for (;;) {
          const have = await messageIds(op, box);
          missing = [...ids].filter((id) => !have.has(id));
          if (!missing.length || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        expect(missing, `acknowledged for ${box} but not in Dovecot`).toEqual([]);
      }
    },
    stop: () => op.stop(),
  };
}

/** The Message-IDs in a box's INBOX, read through Dovecot's master user. */
export async function messageIds(op: TestOperator, box: string): Promise<Set<string>> {
  const c = await op.imap(box);
  try {
    const out = new Set<string>();
    const st = await c.status('INBOX', { messages: true });
    if (!st || !st.messages) return out;
    await c.mailboxOpen('INBOX', { readOnly: true });
    for await (const m of c.fetch('1:*', { envelope: true })) if (m.envelope?.messageId) out.add(m.envelope.messageId.replace(/^<|>$/g, ''));
    return out;
  } finally {
    await c.logout();
  }
}

let serial = 0;
/** A Message-ID nobody else uses in this run. */
export const newMessageId = (tag: string) => `${tag}.${process.pid}.${Date.now()}.${++serial}@hostile.test`;

/** A well-formed message from `from` to `to` (CRLF, ASCII headers, a From in the trust space). */
export function goodMessage(from: string, to: string, messageId: string, subject = 'Normal message'): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${messageId}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour.\r\n`;
}
