import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { addMember, closeBal, createBal, createPerson } from '../../annuaire/bal/index.js';
import { indicatorsCsv, loginMethod, monthRange, type IndicatorRow } from '../../annuaire/indicators/index.js';
import { DEV_RPPS } from '../../certs/pki.js';
import { buildCdaDocument } from '../../dmp/cda.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { runMssAsync } from '../helpers/mss.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { call, expectProblem } from '../webmail/stack.js';
import { expectAccessible, launch, logIn, newPage, poll, shot } from '../helpers/browser.js';

// Issue 15 §4: a month of known traffic on operator A — real mail through its fronts from
// and to a second operator B (which also serves the patients' domain), refusals, a DMP
// hand-off, logins by password and by certificate — then every figure, from the CLI (CSV
// and JSON, through the running platform's admin API: the platform holds its PGlite) and
// from the admin API in a national and a regional scope. The journal's clock places the
// traffic: the month under test is the one after the real one, so the boxes created now
// (by the real clock, in the table) are open in it; one message just before it and one just
// after it must not count.

const A = 'mssante.localhost';
const CLINIQUE = 'clinique.localhost';
const B = `peer.${A}`;
const PATIENTS = 'patient.mssante.localhost';
const INS = '185057512345673';

const real = new Date();
const MONTH = `${new Date(Date.UTC(real.getUTCFullYear(), real.getUTCMonth() + 1, 1)).toISOString().slice(0, 7)}`;
const { from: START, to: END } = monthRange(MONTH);
let clock: Date | null = null;

let pki: TestPki;
let a: TestOperator;
let b: TestOperator;
let ca: string;
const pw = (login: string) => `mot-de-passe-${login}-2026`;
const martin = { login: 'dr.martin', address: `dr.martin@${A}` };
const secretaire = { login: 'secretaire' };
const petit = { login: 'dr.petit', address: `dr.petit@${CLINIQUE}` };
const SECRETARIAT = `secretariat@${A}`;
const durand = { login: 'dr.durand', address: `dr.durand@${B}` };
const patient = { login: 'patient', address: `${INS}@${PATIENTS}` };

const tls = (leaf?: 'personal') => ({
  ca: pki.read('ca.pem'),
  servername: 'localhost',
  minVersion: 'TLSv1.2' as const,
  ...(leaf ? { cert: readFileSync(pki.file(`${leaf}.pem`), 'utf8') + pki.read('intermediate.pem'), key: readFileSync(pki.file(`${leaf}.key`), 'utf8') } : {}),
});
/** dr.martin's submission with his personal (CPS-like) certificate, no password. */
const byCertificate = () => nodemailer.createTransport({ host: '127.0.0.1', port: a.ports.submission, secure: false, requireTLS: true, tls: tls('personal') });
const byPassword = (op: TestOperator, login: string) => nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: tls(), auth: { user: login, pass: pw(login) } });
const mxReceived = async () => (await a.platform.journal.list({ type: 'smtp.received', limit: 1000 })).filter((e) => e.details.front === 'mx').length;

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  const pa = await freePorts();
  const pb = await freePorts();
  const subjectB = new X509Certificate(readFileSync(pki.file('peer-operator.pem'))).subject;
  [a, b] = await Promise.all([
    startOperator({
      pki,
      domain: A,
      cert: 'server',
      ports: pa,
      peers: [B, { nom: PATIENTS, dn: subjectB }],
      routes: [`${B}=127.0.0.1:${pb.mx}`, `${PATIENTS}=127.0.0.1:${pb.mx}`],
      overrides: { operator: { domain: A, hostname: A, domains: [CLINIQUE] }, admin: { enabled: true, port: 0 }, smtp: { patientDomain: PATIENTS } },
      now: () => clock ?? new Date(),
    }),
    startOperator({ pki, domain: B, cert: 'peer-operator', ports: pb, peers: [A, CLINIQUE], routes: [`${A}=127.0.0.1:${pa.mx}`, `${CLINIQUE}=127.0.0.1:${pa.mx}`], overrides: { operator: { domain: B, hostname: B, domains: [PATIENTS] }, smtp: { patientDomain: PATIENTS } } }),
  ]);
  // A's boxes (by the real clock): in mssante.localhost PER, CAB, ORG (+ one closed before the month), APP; in clinique.localhost PER.
  const person = (op: TestOperator, login: string, idnps: string) => createPerson(op.ctx, { login, idnps, nom: login.toUpperCase(), prenom: 'Test', password: pw(login) }, 'test');
  await person(a, martin.login, `8${DEV_RPPS}`);
  await person(a, secretaire.login, '899999999902');
  await person(a, petit.login, '899999999905');
  await createBal(a.ctx, { address: martin.address, type: 'PER', owner: `8${DEV_RPPS}` }, 'test');
  await createBal(a.ctx, { address: `cabinet.martin@${A}`, type: 'CAB', owner: `8${DEV_RPPS}` }, 'test');
  await createBal(a.ctx, { address: SECRETARIAT, type: 'ORG', owner: '1750000001', service: 'Cardiologie' }, 'test');
  await addMember(a.ctx, SECRETARIAT, { login: secretaire.login }, 'test');
  await createBal(a.ctx, { address: `labo@${A}`, type: 'APP', owner: '399999999900001' }, 'test');
  await createBal(a.ctx, { address: `ancien@${A}`, type: 'ORG', owner: '1750000002' }, 'test');
  await closeBal(a.ctx, `ancien@${A}`, 'test');
  await createBal(a.ctx, { address: petit.address, type: 'PER', owner: '899999999905' }, 'test');
  await person(b, durand.login, '899999999904');
  await createBal(b.ctx, { address: durand.address, type: 'PER', owner: '899999999904' }, 'test');
  await person(b, patient.login, '899999999990');
  await createBal(b.ctx, { address: patient.address, type: 'PER', owner: '899999999990' }, 'test');
  await Promise.all([a.synced(), b.synced()]);

  // Just before the month: one message, not counted.
  clock = new Date(START.getTime() - 1);
  await byCertificate().sendMail({ from: martin.address, to: SECRETARIAT, subject: 'avant', text: 'x' });

  // The month.
  clock = new Date(START.getTime() + 10 * 86_400_000);
  const cda = buildCdaDocument({
    patient: { ins: INS, family: 'DUPONT', given: 'Marie', birthDate: '19850501', gender: 'F' },
    author: { rpps: '99999999904', family: 'DURAND', given: 'Paul' },
    code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
    title: 'Résultats biologiques',
    text: 'Hémoglobine 13 g/dL',
  });
  await byCertificate().sendMail({ from: martin.address, to: SECRETARIAT, subject: '1 interne', text: 'x' });
  await byCertificate().sendMail({ from: martin.address, to: petit.address, subject: '2 vers la clinique', text: 'x' });
  await byCertificate().sendMail({ from: martin.address, to: durand.address, subject: '3 vers un autre opérateur', text: 'x' });
  const web = a.platform.webmail!;
  const webLogin = async (login: string) => (await call(web.url, ca, 'POST', '/api/v1/login', { json: { login, password: pw(login) } })).json().token as string;
  const sent = await call(web.url, ca, 'POST', `/api/v1/bals/${encodeURIComponent(SECRETARIAT)}/send`, { token: await webLogin(secretaire.login), json: { to: [patient.address], subject: '4 au patient', text: 'x', noPatientReply: true } });
  expect(sent.status).toBe(200);
  await byPassword(b, durand.login).sendMail({ from: durand.address, to: martin.address, subject: '5 résultats', text: 'x', attachments: [{ filename: 'cr.xml', contentType: 'text/xml', content: cda }] });
  await byPassword(b, patient.login).sendMail({ from: patient.address, to: martin.address, subject: '6 réponse du patient', text: 'x' });
  await byPassword(b, durand.login).sendMail({ from: durand.address, to: petit.address, subject: '7 vers la clinique', text: 'x' });
  await byPassword(a, petit.login).sendMail({ from: petit.address, to: durand.address, subject: '8 de la clinique', text: 'x' });
  await until(async () => (await mxReceived()) === 3);
  // dr.petit reads his box over IMAP (a password login at the proxy).
  const imap = new ImapFlow({ host: '127.0.0.1', port: a.platform.imap!.ports.imaps, secure: true, tls: tls(), auth: { user: petit.address, pass: pw(petit.login) }, logger: false });
  await imap.connect();
  await imap.logout();
  // Refusals at submission.
  const t = await SmtpTalk.open(a.ports.submission);
  await t.cmd('EHLO client.test');
  await t.starttls(tls());
  await t.cmd('EHLO client.test');
  expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${petit.login}\0pas-le-bon`).toString('base64'))).toMatch(/^535 /);
  expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${petit.login}\0${pw(petit.login)}`).toString('base64'))).toMatch(/^235 /);
  expect(await t.cmd(`MAIL FROM:<${petit.address}>`)).toBe('250 2.1.0 Accepted');
  expect(await t.cmd(`RCPT TO:<personne@${A}>`)).toMatch(/^550 5\.1\.1 /);
  expect(await t.cmd(`RCPT TO:<personne@${CLINIQUE}>`)).toMatch(/^550 5\.1\.1 /);
  expect(await t.cmd(`RCPT TO:<185057512345674@${PATIENTS}>`)).toMatch(/^550 5\.1\.3 /);
  expect(await t.cmd('RCPT TO:<quelqu.un@gmail.com>')).toMatch(/^550 5\.7\.1 /);
  t.close();
  // The DMP hand-off of the document dr.durand sent, by dr.martin from the webmail.
  const token = await webLogin(martin.login);
  let uid = 0;
  await until(async () => {
    const l = (await call(web.url, ca, 'GET', `/api/v1/bals/${encodeURIComponent(martin.address)}/folders/INBOX/messages`, { token })).json();
    uid = l.messages?.find((m: { subject: string }) => m.subject === '5 résultats')?.uid ?? 0;
    return uid > 0;
  });
  const h = await call(web.url, ca, 'POST', `/api/v1/bals/${encodeURIComponent(martin.address)}/messages/INBOX/${uid}/dmp`, { token, json: {} });
  expect(h.json().outcome).toBe('success');

  // Just after the month: one more message, not counted either.
  clock = END;
  await byCertificate().sendMail({ from: martin.address, to: SECRETARIAT, subject: 'après', text: 'x' });
  clock = null;
}, 600_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

const zero = { PER: 0, ORG: 0, APP: 0, CAB: 0 };
const EXPECTED: Record<string, IndicatorRow> = {
  '*': {
    domain: '*',
    boxes: { PER: 2, ORG: 1, APP: 1, CAB: 1 },
    messages: { sentInside: 2, receivedInside: 2, toOperators: 2, fromOperators: 2, toPatients: 1, fromPatients: 1 },
    refused: { AUTH_FAILED: 1, BAL_UNKNOWN: 2, PATIENT_INS_INVALID: 1, DOMAIN_NOT_WHITELISTED: 1 },
    dmp: { success: 1, failure: 0 },
    logins: { password: 3, certificate: 1, psc: 0, any: 3 },
  },
  [CLINIQUE]: {
    domain: CLINIQUE,
    boxes: { ...zero, PER: 1 },
    messages: { sentInside: 0, receivedInside: 1, toOperators: 1, fromOperators: 1, toPatients: 0, fromPatients: 0 },
    refused: { BAL_UNKNOWN: 1 },
    dmp: { success: 0, failure: 0 },
    logins: { password: 1, certificate: 0, psc: 0, any: 1 },
  },
  [A]: {
    domain: A,
    boxes: { PER: 1, ORG: 1, APP: 1, CAB: 1 },
    messages: { sentInside: 2, receivedInside: 1, toOperators: 1, fromOperators: 1, toPatients: 1, fromPatients: 1 },
    refused: { BAL_UNKNOWN: 1 },
    dmp: { success: 1, failure: 0 },
    logins: { password: 2, certificate: 1, psc: 0, any: 2 },
  },
};
const EXPECTED_CSV =
  [
    'month,domain,indicator,key,value',
    ...['*', CLINIQUE, A].flatMap((d) => {
      const r = EXPECTED[d];
      return (['boxes', 'messages', 'refused', 'dmp', 'logins'] as const).flatMap((k) =>
        Object.entries(r[k] as Record<string, number>)
          .sort(([x], [y]) => (x < y ? -1 : 1))
          .map(([key, v]) => `${MONTH},${d},${k},${key},${v}`),
      );
    }),
  ].join('\r\n') + '\r\n';

const cliEnv = () => ({ MSS_DATA_DIR: a.config.dataDir, MSS_TLS_CA_FILE: pki.paths.chain, MSS_OPERATOR_DOMAIN: A, MSS_ADMIN_PASSWORD: a.platform.admin!.bootstrap!.password });
const indicators = async (month: string, format: 'csv' | 'json') => {
  const r = await runMssAsync(['indicators', '--month', month, '--format', format, '--api', a.platform.admin!.url], cliEnv());
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return format === 'json' ? JSON.parse(r.stdout) : r.stdout;
};

describe('monthly indicators', () => {
  it('the login method of each kind of login event', () => {
    expect(loginMethod({ method: 'PLAIN', auth: 'password' })).toBe('password');
    expect(loginMethod({ method: 'LOGIN', auth: 'password+totp' })).toBe('password');
    expect(loginMethod({ auth: 'password' })).toBe('password');
    expect(loginMethod({ method: 'EXTERNAL' })).toBe('certificate');
    expect(loginMethod({ method: 'certificate', auth: 'certificate' })).toBe('certificate');
    expect(loginMethod({ method: 'XOAUTH2' })).toBe('psc');
    expect(loginMethod({ method: 'OAUTHBEARER' })).toBe('psc');
    expect(loginMethod({ method: 'PLAIN', auth: 'token' })).toBeNull();
    expect(loginMethod({ method: 'WebAuthn' })).toBe('webauthn');
    expect(() => monthRange('2026-13')).toThrow(/YYYY-MM/);
    expect(monthRange('2026-12')).toEqual({ from: new Date('2026-12-01T00:00:00Z'), to: new Date('2027-01-01T00:00:00Z') });
  });

  it('mss indicators --format json, through the running platform (it holds the PGlite database): every figure', async () => {
    const x = await indicators(MONTH, 'json');
    expect(x).toMatchObject({ month: MONTH, from: START.toISOString(), to: END.toISOString(), scope: 'national', patientDomain: PATIENTS });
    expect(Object.fromEntries(x.rows.map((row: IndicatorRow) => [row.domain, row]))).toEqual(EXPECTED);
  });

  it('mss indicators --format csv: the same figures, one per line', async () => {
    expect(await indicators(MONTH, 'csv')).toBe(EXPECTED_CSV);
  });

  it('the months around it hold only what was placed there', async () => {
    const before = await indicators(new Date(START.getTime() - 1).toISOString().slice(0, 7), 'json');
    const total = before.rows.find((r: IndicatorRow) => r.domain === '*');
    // The real month: the message placed 1 ms before MONTH, and the certificate login that sent it.
    expect(total.messages).toEqual({ sentInside: 1, receivedInside: 1, toOperators: 0, fromOperators: 0, toPatients: 0, fromPatients: 0 });
    expect(total.logins).toEqual({ password: 0, certificate: 1, psc: 0, any: 1 });
    const after = await indicators(END.toISOString().slice(0, 7), 'json');
    expect(after.rows.find((r: IndicatorRow) => r.domain === '*').messages.sentInside).toBe(1);
  });

  it('the admin API: national sees every domain; a regional admin only its own, and asking for another is refused and journalled', async () => {
    const admin = a.platform.admin!;
    const login = async (l: string, p: string) => (await call(admin.url, ca, 'POST', '/api/v1/login', { json: { login: l, password: p } })).json().token as string;
    const national = await login('admin', a.platform.admin!.bootstrap!.password);
    const n = await call(admin.url, ca, 'GET', `/api/v1/indicators?month=${MONTH}`, { token: national });
    expect(n.status).toBe(200);
    expect(Object.fromEntries(n.json().rows.map((row: IndicatorRow) => [row.domain, row]))).toEqual(EXPECTED);
    expect(indicatorsCsv(n.json())).toBe(EXPECTED_CSV);

    const { password } = await createAdmin(a.platform.db, a.platform.journal, { login: 'ars.clinique', role: 'regional', domains: [CLINIQUE] }, 'test');
    const regional = await login('ars.clinique', password);
    const r = await call(admin.url, ca, 'GET', `/api/v1/indicators?month=${MONTH}`, { token: regional });
    expect(r.json()).toMatchObject({ scope: 'regional', rows: [EXPECTED[CLINIQUE]] });
    expect(r.json().rows).toHaveLength(1);
    const own = await call(admin.url, ca, 'GET', `/api/v1/indicators?month=${MONTH}&domain=${CLINIQUE}`, { token: regional });
    expect(own.json().rows).toEqual([EXPECTED[CLINIQUE]]);
    expect(expectProblem(await call(admin.url, ca, 'GET', `/api/v1/indicators?month=${MONTH}&domain=${A}`, { token: regional }), 403, 'ADMIN_OUT_OF_SCOPE').detail).toContain(`domain ${A}`);
    const refusals = await a.platform.journal.list({ type: 'policy.refused', actor: 'admin:ars.clinique' });
    expect(refusals[0]).toMatchObject({ subject: A, details: { action: 'administer', code: 'ADMIN_OUT_OF_SCOPE' } });
    expectProblem(await call(admin.url, ca, 'GET', '/api/v1/indicators?month=2026-13', { token: national }), 400, 'BAD_REQUEST');
    const doc = (await call(admin.url, ca, 'GET', '/openapi.json')).json();
    expect(doc.paths['/api/v1/indicators'].get.parameters.map((x: { name: string }) => x.name).sort()).toEqual(['domain', 'month']);
  });

  it('the console’s dashboard draws them (tables with SVG bars), axe-clean', async () => {
    const browser = await launch(pki.read('server.pem'));
    try {
      const { page } = await newPage(browser);
      await logIn(page, a.platform.admin!.console, { login: 'admin', password: a.platform.admin!.bootstrap!.password });
      await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
      await page.getByLabel('Mois (UTC)').fill(MONTH);
      await page.getByRole('button', { name: 'Afficher' }).click();
      const whole = page.getByRole('region', { name: `Tout l’opérateur — ${MONTH}` });
      const row = (table: string, name: string) => whole.getByRole('table', { name: table }).getByRole('row', { name: new RegExp(`^${name}`) });
      await poll(() => row('Messages', 'Vers des patients').textContent());
      expect(await row('Messages', 'Vers des patients').textContent()).toBe('Vers des patients1');
      expect(await row('Messages', 'Envoyés dans l’opérateur').textContent()).toBe('Envoyés dans l’opérateur2');
      expect(await row('Boîtes ouvertes dans le mois', 'Personnelles').textContent()).toBe('Personnelles2');
      expect(await row('Personnes connectées', 'Certificat').textContent()).toBe('Certificat1');
      expect(await row('Personnes connectées', 'Pro Santé Connect').textContent()).toBe('Pro Santé Connect0');
      expect(await row('Refus SMTP par motif', 'BAL_UNKNOWN').textContent()).toBe('BAL_UNKNOWN2');
      expect(await row('Envois au DMP', 'Réussis').textContent()).toBe('Réussis1');
      // The longest bar of a chart spans it; the others in proportion.
      const widths = await whole.getByRole('table', { name: 'Refus SMTP par motif' }).locator('svg rect').evaluateAll((rs) => rs.map((r) => r.getAttribute('width')));
      expect(widths).toEqual(['50', '100', '50', '50']);
      await expect.poll(() => page.getByRole('region', { name: `${CLINIQUE} — ${MONTH}` }).count()).toBe(1);
      await expectAccessible(page, 'dashboard with the monthly indicators');
      await shot(page, 'console-indicateurs');
    } finally {
      await browser.close();
    }
  });
});
