import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insProblem } from '../../smtp/patients.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { call, expectProblem } from '../webmail/stack.js';

// Mon Espace Santé (issue 15 §2). Operator A (professionals) and a second whole operator
// playing Mon Espace Santé: its domain is the patients' domain, its liste blanche entry
// names its certificate's DN (as the real one's entry does for patient.mssante.fr).

const A = 'mssante.localhost';
const PATIENTS = 'patient.mssante.localhost';
const LIMIT = 60_000;
// NIR 1 85 05 75 123 456, key 97 − (1850575123456 mod 97) = 73; a Corsican one (2A counts as 19, 2B as 18).
const INS = '185057512345673';
const INS_2A = '290022A00401218';
const INS_2B = '290022B00401245';

let pki: TestPki;
let a: TestOperator;
let mes: TestOperator;
let martin: { login: string; address: string; password: string };
let patient: { login: string; address: string; password: string };

const inbox = async (op: TestOperator, address: string) => {
  const c = await op.imap(address);
  try {
    await c.mailboxOpen('INBOX');
    const out: Array<Awaited<ReturnType<typeof simpleParser>> & { raw: string }> = [];
    for await (const m of c.fetch('1:*', { source: true })) out.push(Object.assign(await simpleParser(m.source!), { raw: m.source!.toString() }));
    return out;
  } catch {
    return [];
  } finally {
    await c.logout();
  }
};
const tls = () => ({ ca: pki.read('ca.pem'), servername: 'localhost', minVersion: 'TLSv1.2' as const });
const submitter = (op: TestOperator, u: { login: string; password: string }) =>
  nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: tls(), auth: { user: u.login, pass: u.password } });

/** A's submission, logged in as dr.martin, MAIL FROM sent (with `mailArgs`, e.g. SIZE=n). */
async function submission(mailArgs = '') {
  const t = await SmtpTalk.open(a.ports.submission);
  await t.cmd('EHLO client.test');
  await t.starttls(tls());
  await t.cmd('EHLO client.test');
  expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${martin.login}\0${martin.password}`).toString('base64'))).toMatch(/^235 /);
  expect(await t.cmd(`MAIL FROM:<${martin.address}>${mailArgs}`)).toBe('250 2.1.0 Accepted');
  return t;
}

beforeAll(async () => {
  pki = await testPki();
  const pa = await freePorts();
  const pm = await freePorts();
  const mesDn = new X509Certificate(readFileSync(pki.file('peer-operator.pem'))).subject;
  const patientRules = { patientDomain: PATIENTS, patientMaxSize: LIMIT };
  [a, mes] = await Promise.all([
    startOperator({ pki, domain: A, cert: 'server', ports: pa, peers: [`peer.${A}`, { nom: PATIENTS, dn: mesDn }], routes: [`${PATIENTS}=127.0.0.1:${pm.mx}`], overrides: { smtp: patientRules } }),
    startOperator({ pki, domain: PATIENTS, cert: 'peer-operator', ports: pm, peers: [A], routes: [`${A}=127.0.0.1:${pa.mx}`], overrides: { smtp: patientRules } }),
  ]);
  martin = await a.person('dr.martin', '810000000001');
  // The stand-in's box of the patient (a PER box stands in for Mon Espace Santé's own).
  patient = await mes.person(INS, '899999999990');
  await Promise.all([a.synced(), mes.synced()]);
}, 300_000);

afterAll(async () => {
  await Promise.all([a?.stop(), mes?.stop()]);
});

describe('the INS of a patient address (smtp/patients.ts)', () => {
  it('accepts a NIR with its key, Corsica included; names what is wrong otherwise', () => {
    expect(insProblem(INS)).toBeNull();
    expect(insProblem(INS_2A)).toBeNull();
    expect(insProblem(INS_2A.toLowerCase())).toBeNull();
    expect(insProblem(INS_2B)).toBeNull();
    expect(insProblem('18505751234567')).toBe('an INS has 15 characters (the 13 of the NIR and its 2-digit key); this one has 14');
    expect(insProblem('1850575123456734')).toMatch(/this one has 16$/);
    expect(insProblem('18505751234x673')).toMatch(/^an INS is made of digits only/);
    expect(insProblem('290022C00401218')).toMatch(/^an INS is made of digits only/);
    expect(insProblem('585057512345673')).toBe('an INS starts with 1 or 2 (or 7 or 8 for a temporary number), not 5');
    expect(insProblem('185057512345674')).toBe('its key 74 does not match the NIR 1850575123456 (the key would be 73)');
    // 2B's key on a 2A number: the Corsican departments count differently.
    expect(insProblem('290022A00401245')).toBe('its key 45 does not match the NIR 290022A004012 (the key would be 18)');
    expect(insProblem('185057512345600')).toMatch(/^its key 00 /);
  });
});

describe('writing to a patient in Mon Espace Santé', () => {
  it('from the webmail with "no reply expected": the stand-in receives it with X-MSS-MES: FIN', async () => {
    const ca = pki.read('ca.pem');
    const web = a.platform.webmail!;
    const token = (await call(web.url, ca, 'POST', '/api/v1/login', { json: { login: martin.login, password: martin.password } })).json().token as string;
    const r = await call(web.url, ca, 'POST', `/api/v1/bals/${encodeURIComponent(martin.address)}/send`, {
      token,
      json: { to: [patient.address], subject: 'Résultats de votre bilan', text: 'Vos résultats sont normaux.', noPatientReply: true },
    });
    expect(r.status).toBe(200);
    expect(r.json().accepted).toEqual([patient.address]);
    await until(async () => (await inbox(mes, patient.address)).length === 1);
    const [m] = await inbox(mes, patient.address);
    expect(m.subject).toBe('Résultats de votre bilan');
    expect(m.raw).toMatch(/^X-MSS-MES: FIN\r$/m);
    expect(m.from?.value[0].address).toBe(martin.address);
    const sent = await a.platform.journal.list({ type: 'smtp.outbound.sent' });
    expect(sent[0].details).toMatchObject({ domain: PATIENTS, rcpts: [patient.address] });

    // The same check as at RCPT: the webmail's compose answers with the submission's sentence.
    const bad = await call(web.url, ca, 'POST', `/api/v1/bals/${encodeURIComponent(martin.address)}/send`, { token, json: { to: [`185057512345674@${PATIENTS}`], subject: 'x', text: 'x' } });
    expect(expectProblem(bad, 422, 'WEBMAIL_SEND_REFUSED').detail).toContain(`185057512345674@${PATIENTS} is not a Mon Espace Sante patient address: its key 74 does not match the NIR 1850575123456 (the key would be 73)`);
  });

  it('a message the patient may answer: the reply comes back into the professional’s box, threaded', async () => {
    const sent = await submitter(a, martin).sendMail({ from: martin.address, to: patient.address, subject: 'Préparation de votre hospitalisation', text: 'Merci de confirmer la date.' });
    await until(async () => (await inbox(mes, patient.address)).length === 2);
    const asked = (await inbox(mes, patient.address)).find((m) => m.messageId === sent.messageId)!;
    expect(asked.headers.has('x-mss-mes')).toBe(false);
    await submitter(mes, patient).sendMail({
      from: patient.address,
      to: martin.address,
      subject: 'Re: Préparation de votre hospitalisation',
      text: 'Je confirme.',
      inReplyTo: asked.messageId,
      references: [asked.messageId!],
    });
    await until(async () => (await inbox(a, martin.address)).length === 1);
    const [reply] = await inbox(a, martin.address);
    expect(reply.from?.value[0].address).toBe(patient.address);
    expect(reply.inReplyTo).toBe(sent.messageId);
    expect(reply.references).toBe(sent.messageId);
    const received = await a.platform.journal.list({ type: 'smtp.received' });
    expect(received[0].details).toMatchObject({ front: 'mx', from: patient.address, local: [martin.address] });
  });

  it('an invalid INS is refused at RCPT with the reason, journalled; valid ones (Corsica too) pass', async () => {
    const t = await submission();
    const sentence = (ins: string, why: string) => `550 5.1.3 ${ins}@${PATIENTS} is not a Mon Espace Sante patient address: ${why}`;
    expect(await t.cmd(`RCPT TO:<18505751234567@${PATIENTS}>`)).toBe(sentence('18505751234567', 'an INS has 15 characters (the 13 of the NIR and its 2-digit key); this one has 14'));
    expect(await t.cmd(`RCPT TO:<290022A00401245@${PATIENTS}>`)).toBe(sentence('290022a00401245', 'its key 45 does not match the NIR 290022A004012 (the key would be 18)'));
    expect(await t.cmd(`RCPT TO:<dr.house@${PATIENTS}>`)).toBe(sentence('dr.house', 'an INS has 15 characters (the 13 of the NIR and its 2-digit key); this one has 8'));
    expect(await t.cmd(`RCPT TO:<${INS_2A}@${PATIENTS}>`)).toBe('250 2.1.5 Accepted');
    expect(await t.cmd(`RCPT TO:<${INS_2B}@${PATIENTS}>`)).toBe('250 2.1.5 Accepted');
    t.close();
    const refused = await a.platform.journal.list({ type: 'smtp.refused', limit: 50 });
    expect(refused.filter((e) => e.details.code === 'PATIENT_INS_INVALID').map((e) => e.subject)).toEqual(
      expect.arrayContaining([`18505751234567@${PATIENTS}`, `290022a00401245@${PATIENTS}`, `dr.house@${PATIENTS}`]),
    );
  });

  it('Mon Espace Santé’s size limit: at RCPT from the declared SIZE, at the end of DATA otherwise', async () => {
    const body = `From: ${martin.address}\r\nTo: ${patient.address}\r\nDate: ${new Date().toUTCString()}\r\nSubject: gros\r\n\r\n${('x'.repeat(998) + '\r\n').repeat(70)}.\r\n`;
    const declared = await submission(` SIZE=${LIMIT + 10_000}`);
    expect(await declared.cmd(`RCPT TO:<${patient.address}>`)).toBe(`552 5.3.4 message too big for Mon Espace Sante: a message to a patient may be at most ${LIMIT} bytes, and this one declares ${LIMIT + 10_000} bytes`);
    // A professional's box is not bound by it.
    expect(await declared.cmd(`RCPT TO:<${martin.address}>`)).toBe('250 2.1.5 Accepted');
    declared.close();

    const undeclared = await submission();
    expect(await undeclared.cmd(`RCPT TO:<${patient.address}>`)).toBe('250 2.1.5 Accepted');
    expect(await undeclared.data(body)).toMatch(new RegExp(`^552 5\\.3\\.4 message too big for Mon Espace Sante: a message to a patient may be at most ${LIMIT} bytes, and this one is \\d+ bytes$`));
    undeclared.close();
    const refused = await a.platform.journal.list({ type: 'smtp.refused', limit: 50 });
    expect(refused.filter((e) => e.details.code === 'PATIENT_MESSAGE_TOO_BIG')).toHaveLength(2);
    // Nothing of it left for the patient.
    expect(await inbox(mes, patient.address)).toHaveLength(2);
  });
});
