import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devIssuer, issueCertificate, DEV_RPPS } from '../../certs/pki.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { withSlapdStopped } from '../helpers/slapd-control.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

// Two operators on loopback, each a whole platform (PGlite, slapd, Dovecot, SMTP), sharing
// the test PKI as their IGC-Santé and each other's domain on their liste blanche.

const A = 'mssante.localhost';
const B = 'peer.mssante.localhost';
let pki: TestPki;
let a: TestOperator;
let b: TestOperator;
const who: Record<string, { login: string; address: string; password: string }> = {};
let orgBox = '';
let appBox = '';
let closedBox = '';
let rogue: { cert: string; key: string };

const tlsAs = (leaf?: { cert: string; key: string }, ca = pki.read('ca.pem')): ConnectionOptions => ({
  ca,
  servername: 'localhost',
  ...(leaf ? { cert: leaf.cert, key: leaf.key } : {}),
  minVersion: 'TLSv1.2',
});
/** A test PKI certificate with the chain a real peer sends (its issuer, never the root). */
const leaf = (name: 'peer-operator' | 'expired' | 'revoked' | 'foreign' | 'application' | 'personal') => ({
  cert: readFileSync(pki.file(`${name}.pem`), 'utf8') + (name === 'foreign' ? '' : pki.read('intermediate.pem')),
  key: readFileSync(pki.file(`${name}.key`), 'utf8'),
});

const inboxCount = async (op: TestOperator, address: string) => {
  const c = await op.imap(address);
  try {
    const s = await c.status('INBOX', { messages: true });
    return s ? (s.messages ?? 0) : 0;
  } finally {
    await c.logout();
  }
};
const spoolCount = async (op: TestOperator) => (await op.platform.db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM smtp_spool')).rows[0].n;

/** Opens A's MX, EHLO, STARTTLS presenting `as`, EHLO again. */
async function mxSession(as?: { cert: string; key: string }) {
  const t = await SmtpTalk.open(a.ports.mx);
  await t.cmd('EHLO peer.test');
  await t.starttls(tlsAs(as));
  return t;
}

const submitter = (op: TestOperator, auth?: { user: string; pass: string }, cert?: { cert: string; key: string }) =>
  nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: tlsAs(cert), ...(auth ? { auth } : {}) });

beforeAll(async () => {
  pki = await testPki();
  const pa = await freePorts();
  const pb = await freePorts();
  [a, b] = await Promise.all([
    startOperator({ pki, domain: A, cert: 'server', ports: pa, peers: [B], routes: [`${B}=127.0.0.1:${pb.mx}`], overrides: { smtp: { maxSize: 200_000 } } }),
    startOperator({ pki, domain: B, cert: 'peer-operator', ports: pb, peers: [A], routes: [`${A}=127.0.0.1:${pa.mx}`] }),
  ]);
  who.martin = await a.person('dr.martin', `8${DEV_RPPS}`);
  who.secretaire = await a.person('secretaire', '899999999902');
  who.intrus = await a.person('intrus', '899999999903');
  who.durand = await b.person('dr.durand', '899999999904');
  orgBox = await a.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie' });
  await a.member(orgBox, 'secretaire');
  appBox = await a.bal({ local: 'labo-resultats', type: 'APP', owner: '399999999900001' });
  await a.appCert(appBox, leaf('application').cert);
  closedBox = await a.bal({ local: 'ancien.cabinet', type: 'ORG', owner: '1750000002' });
  const { closeBal } = await import('../../annuaire/bal/index.js');
  await closeBal(a.ctx, closedBox, 'test');
  const issued = await issueCertificate(devIssuer(pki.dir), { type: 'server', domain: 'rogue.example', organisation: 'Rogue' });
  rogue = { cert: issued.certPem + pki.read('intermediate.pem'), key: issued.keyPem };
  await Promise.all([a.synced(), b.synced()]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('two operators exchange mail over mutual TLS', () => {
  it('A → B: submission, outbound queue, B’s MX, B’s Dovecot, with the trace headers', async () => {
    const info = await submitter(a, { user: who.martin.login, pass: who.martin.password }).sendMail({
      from: who.martin.address,
      to: who.durand.address,
      subject: 'Compte rendu de consultation',
      text: 'Bonjour, voici le compte rendu. Cordialement.',
    });
    expect(info.response).toMatch(/^250 2\.0\.0 message accepted, queued as [0-9A-F]{16}$/);
    await until(async () => (await inboxCount(b, who.durand.address)) === 1);
    const c = await b.imap(who.durand.address);
    try {
      await c.mailboxOpen('INBOX');
      const m = await c.fetchOne('*', { source: true });
      const src = m && m.source!.toString();
      expect(src).toContain('Subject: Compte rendu de consultation');
      // B's MX trace names A's certificate; A's submission trace names the person.
      expect(src).toMatch(new RegExp(`Received: from ${A.replace(/\./g, '\\.')} \\(\\[127\\.0\\.0\\.1\\]\\) by ${B.replace(/\./g, '\\.')} with ESMTPS id [0-9A-F]{16}\\r\\n\\t\\(version=TLSv1\\.[23] cipher=[A-Z0-9_-]+\\)\\r\\n\\t\\(client certificate "[^"]*CN=${A.replace(/\./g, '\\.')}`));
      expect(src).toMatch(/with ESMTPSA id [0-9A-F]{16}\r\n\t\(version=TLSv1\.[23][^)]*\)\r\n\t\(authenticated as person dr\.martin\)/);
    } finally {
      await c.logout();
    }
    const events = await a.platform.journal.list({ typePrefix: 'smtp.outbound.sent' });
    expect(events[0].details).toMatchObject({ domain: B, rcpts: [who.durand.address] });
  });

  it('B → A: and back', async () => {
    await submitter(b, { user: who.durand.login, pass: who.durand.password }).sendMail({ from: who.durand.address, to: [who.martin.address, orgBox], subject: 'Réponse', text: 'Merci.' });
    await until(async () => (await inboxCount(a, who.martin.address)) === 1 && (await inboxCount(a, orgBox)) === 1);
    const received = await a.platform.journal.list({ type: 'smtp.received' });
    expect(received.some((e) => e.details.front === 'mx' && String(e.details.certificate).includes(`CN=${B}`))).toBe(true);
  });
});

describe('the MX refuses, each with its own code, and keeps serving', () => {
  let before = 0;
  beforeAll(async () => {
    before = await spoolCount(a);
  });

  const mailFrom = async (t: SmtpTalk, from = `labo@${B}`) => t.cmd(`MAIL FROM:<${from}>`);

  it('MAIL before STARTTLS', async () => {
    const t = await SmtpTalk.open(a.ports.mx);
    await t.cmd('EHLO peer.test');
    expect(await mailFrom(t)).toBe('530 5.7.0 Must issue a STARTTLS command first: the MSSante trust space accepts mail over TLS only');
    t.close();
  });

  it('no client certificate', async () => {
    const t = await mxSession();
    expect(await mailFrom(t)).toBe('550 5.7.1 a client certificate is required to deliver into the MSSante trust space: present your operator certificate');
    t.close();
  });

  it('an expired certificate', async () => {
    const t = await mxSession(leaf('expired'));
    expect(await mailFrom(t)).toMatch(/^550 5\.7\.5 your client certificate \(.*\) has expired$/);
    t.close();
  });

  it('a revoked certificate', async () => {
    const t = await mxSession(leaf('revoked'));
    expect(await mailFrom(t)).toMatch(/^550 5\.7\.5 your client certificate \(.*\) is revoked$/);
    t.close();
  });

  it('a certificate from a foreign CA', async () => {
    const t = await mxSession(leaf('foreign'));
    expect(await mailFrom(t)).toMatch(/^550 5\.7\.5 your client certificate \(.*\) is not issued by a certification authority of the MSSante trust space \(.+\)$/);
    t.close();
  });

  it('a certificate whose domain is not on the liste blanche', async () => {
    const t = await mxSession(rogue);
    expect(await mailFrom(t)).toBe('550 5.7.1 peer domain rogue.example is not in the MSSante trust space (it is not on the liste blanche)');
    t.close();
  });

  it('a MAIL FROM domain not on the liste blanche', async () => {
    const t = await mxSession(leaf('peer-operator'));
    expect(await mailFrom(t, 'someone@example.org')).toBe('550 5.7.1 sender domain example.org is not in the MSSante trust space (it is not on the liste blanche)');
    t.close();
  });

  it('unknown and closed recipients, and relaying', async () => {
    const t = await mxSession(leaf('peer-operator'));
    expect(await mailFrom(t)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd(`RCPT TO:<nobody@${A}>`)).toBe(`550 5.1.1 there is no mailbox nobody@${A} at this operator`);
    expect(await t.cmd(`RCPT TO:<${closedBox}>`)).toBe(`550 5.1.1 the mailbox ${closedBox} is closed`);
    expect(await t.cmd('RCPT TO:<someone@elsewhere.fr>')).toBe('550 5.7.1 this server does not relay: someone@elsewhere.fr is not a mailbox of this operator');
    t.close();
  });

  it('a bare LF in DATA (SMTP smuggling)', async () => {
    const t = await mxSession(leaf('peer-operator'));
    await mailFrom(t);
    expect(await t.cmd(`RCPT TO:<${who.martin.address}>`)).toBe('250 2.1.5 Accepted');
    const r = await t.data(`Subject: smuggle\r\n\r\nline one\n.\nMAIL FROM:<x@${B}>\r\n.\r\n`);
    expect(r).toMatch(/^550 5\.6\.0 message refused: it contains a bare LF at byte \d+; every line must end with CRLF/);
    t.close();
  });

  it('a message over SIZE', async () => {
    const t = await mxSession(leaf('peer-operator'));
    expect(await t.cmd(`EHLO peer.test`)).toMatch(/^250[ -]SIZE 200000$/m);
    await mailFrom(t);
    await t.cmd(`RCPT TO:<${who.martin.address}>`);
    const r = await t.data(`Subject: big\r\n\r\n${'x'.repeat(998) + '\r\n'}`.repeat(250) + '.\r\n');
    expect(r).toBe('552 5.3.4 message too big: the limit is 200000 bytes');
    t.close();
  });

  it('delivered nothing for any of them, journalled each, and still serves', async () => {
    expect(await spoolCount(a)).toBe(before);
    const refused = await a.platform.journal.list({ type: 'smtp.refused', limit: 100 });
    for (const code of ['SMTP_TLS_REQUIRED', 'PEER_NO_CERTIFICATE', 'PEER_CERT_EXPIRED', 'PEER_CERT_REVOKED', 'PEER_CERT_UNTRUSTED', 'BAL_UNKNOWN', 'BAL_CLOSED', 'RELAY_DENIED', 'MESSAGE_BARE_LINE_ENDING', 'MESSAGE_TOO_BIG']) {
      expect(refused.map((e) => e.details.code)).toContain(code);
    }
    const policy = await a.platform.journal.list({ type: 'policy.refused', limit: 100 });
    expect(policy.map((e) => e.subject)).toEqual(expect.arrayContaining(['rogue.example', 'example.org']));
    const t = await mxSession(leaf('peer-operator'));
    await mailFrom(t);
    await t.cmd(`RCPT TO:<${who.martin.address}>`);
    expect(await t.data(`From: labo@${B}\r\nDate: ${new Date().toUTCString()}\r\nSubject: ok\r\n\r\nfine\r\n.\r\n`)).toMatch(/^250 2\.0\.0 message accepted/);
    t.close();
  });
});

describe('submission', () => {
  it('refuses AUTH before TLS, a wrong password, sending as another’s box, and non-MSSanté recipients', async () => {
    const before = await spoolCount(a);
    const t = await SmtpTalk.open(a.ports.submission);
    // smtp-server lists AUTH before STARTTLS but refuses to authenticate until TLS (538).
    expect(await t.cmd('EHLO client.test')).toMatch(/^250[ -]STARTTLS$/m);
    expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${who.martin.login}\0${who.martin.password}`).toString('base64'))).toBe('538 5.7.0 Error: Must issue a STARTTLS command first');
    await t.starttls(tlsAs());
    expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${who.martin.login}\0wrong-password`).toString('base64'))).toBe('535 5.7.8 authentication failed: unknown user name or wrong credential');
    expect(await t.cmd('MAIL FROM:<dr.martin@mssante.localhost>')).toBe('530 5.7.0 authentication required: log in with your MSSante account or your certificate');
    expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${who.intrus.login}\0${who.intrus.password}`).toString('base64'))).toMatch(/^235 /);
    expect(await t.cmd(`MAIL FROM:<${who.martin.address}>`)).toMatch(/^553 5\.7\.1 person intrus may not send as dr\.martin@mssante\.localhost: /);
    expect(await t.cmd(`MAIL FROM:<${who.intrus.address}>`)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd('RCPT TO:<patient@gmail.com>')).toBe('550 5.7.1 recipient domain gmail.com is not in the MSSante trust space (it is not on the liste blanche)');
    expect(await t.cmd(`RCPT TO:<${who.martin.address}>`)).toBe('250 2.1.5 Accepted');
    // A From header naming someone else's box is refused after DATA too.
    expect(await t.data(`From: ${who.martin.address}\r\nDate: ${new Date().toUTCString()}\r\nSubject: forged\r\n\r\nx\r\n.\r\n`)).toMatch(/^553 5\.7\.1 person intrus may not send as dr\.martin@/);
    t.close();
    expect(await spoolCount(a)).toBe(before);
  });

  it('a lab’s software with its application certificate sends a result to a doctor', async () => {
    const before = await inboxCount(a, who.martin.address);
    await submitter(a, undefined, { cert: leaf('application').cert, key: leaf('application').key }).sendMail({
      from: appBox,
      to: who.martin.address,
      subject: 'Résultat de biologie',
      text: 'Glycémie : 5,2 mmol/L',
    });
    await until(async () => (await inboxCount(a, who.martin.address)) === before + 1);
    const auth = await a.platform.journal.list({ type: 'smtp.auth', limit: 20 });
    expect(auth.some((e) => e.details.method === 'certificate' && e.actor.startsWith('application certificate'))).toBe(true);
  });

  it('a secretary who is a member of the ORG box sends as it; a non-member cannot', async () => {
    await submitter(a, { user: who.secretaire.login, pass: who.secretaire.password }).sendMail({ from: orgBox, to: who.martin.address, subject: 'RDV', text: 'Rendez-vous confirmé.' });
    await expect(submitter(a, { user: who.intrus.login, pass: who.intrus.password }).sendMail({ from: orgBox, to: who.martin.address, subject: 'RDV', text: 'x' })).rejects.toThrow(
      /553 5\.7\.1 person intrus may not send as secretariat\.cardio@mssante\.localhost/,
    );
    const refusals = await a.platform.journal.list({ type: 'policy.refused', subject: orgBox });
    expect(refusals[0].details).toMatchObject({ action: 'send-as', front: 'smtp-submission' });
  });
});

describe('directory unavailable', () => {
  it('answers 451 4.4.3 at RCPT, never a bounce; once slapd is back every lookup is answered again', async () => {
    // More fresh addresses than the resolver pools connections, each one a real lookup: before
    // the outage every pooled connection is bound; after it none may be left stale, or
    // reconnected without its bind.
    const lookups = async (prefix: string) => {
      const t = await mxSession(leaf('peer-operator'));
      await t.cmd(`MAIL FROM:<labo@${B}>`);
      for (let i = 0; i < 6; i++) expect(await t.cmd(`RCPT TO:<${prefix}.${i}@${A}>`)).toMatch(/^550 5\.1\.1 /);
      t.close();
    };
    await lookups('avant.la.panne');
    await withSlapdStopped(a, async () => {
      const t = await mxSession(leaf('peer-operator'));
      await t.cmd(`MAIL FROM:<labo@${B}>`);
      expect(await t.cmd(`RCPT TO:<someone.new@${A}>`)).toBe('451 4.4.3 the directory cannot answer right now; please try again later');
      t.close();
    });
    await lookups('apres.la.panne');
  });
});
