// Issue 7's acceptance, end to end against one running operator (startPlatform: PGlite,
// slapd, Dovecot, SMTP, IMAP proxy, webmail API, stand-in DMP):
//   a lab's technical box submits a CDA result inside IHE_XDM with its application
//   certificate → the doctor's personal box receives it → the webmail API lists it and shows
//   the document metadata → the hand-off reaches the stand-in DMP with the right metadata →
//   the journal shows each step, sealed by a timestamp that openssl verifies;
//   a secretary (ORG member) reads and answers through the API; a non-member gets 403 and
//   the refusal is journalled; a box with a DMP rule hands its results off by itself.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPerson } from '../../annuaire/bal/index.js';
import { DEV_RPPS, DEV_STRUCTURE_ID } from '../../certs/pki.js';
import { checkProof } from '../../core/journal/index.js';
import { DEMO_PATIENT, demoResultMessage } from '../../dmp/demo.js';
import { handoffMessage, setDmpRule, startDmpWatcher } from '../../dmp/index.js';
import { silentLogger } from '../../core/logger.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call } from '../webmail/stack.js';

const D = 'mssante.localhost';
let pki: TestPki;
let op: TestOperator;
let ca: string;
const doctor = { login: '', address: '', password: '' };
const paul = { login: '', address: '', password: '' };
const marie = { login: 'marie.durand', password: 'secrétaire de cardiologie' };
const lab = `labo-resultats@${D}`;
let orgBox = '';
const enc = encodeURIComponent;

const api = (method: string, path: string, o: Parameters<typeof call>[4] = {}) => call(op.platform.webmail!.url, ca, method, path, o);
const login = async (u: { login: string; password: string }) => {
  const r = await api('POST', '/api/v1/login', { json: u });
  expect(r.status, r.body.toString()).toBe(200);
  return r.json().token as string;
};
const inboxOf = async (address: string) => {
  const c = await op.imap(address);
  try {
    const s = await c.status('INBOX', { messages: true });
    return s ? (s.messages ?? 0) : 0;
  } finally {
    await c.logout();
  }
};
/** The lab's software: its application certificate and chain, no password. */
const labTransport = () =>
  nodemailer.createTransport({
    host: '127.0.0.1',
    port: op.ports.submission,
    secure: false,
    requireTLS: true,
    tls: { ca, servername: 'localhost', minVersion: 'TLSv1.2', cert: pki.read('application.pem') + pki.read('intermediate.pem'), key: pki.read('application.key') },
  });

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  Object.assign(doctor, await op.person('jeanne.martin', `8${DEV_RPPS}`));
  Object.assign(paul, await op.person('paul.bernard', '810101010101'));
  await createPerson(op.ctx, { login: marie.login, nom: 'DURAND', prenom: 'Marie', password: marie.password }, 'test');
  orgBox = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: DEV_STRUCTURE_ID, service: 'Cardiologie' });
  await op.member(orgBox, marie.login);
  await op.member(orgBox, doctor.login);
  await op.bal({ local: 'labo-resultats', type: 'APP', owner: DEV_STRUCTURE_ID });
  await op.appCert(lab, pki.read('application.pem'));
  await op.synced();
});
afterAll(async () => op?.stop());

describe('a lab result, from the lab to the DMP', () => {
  let uid = 0;
  let token = '';

  it('the lab sends a CDA result in IHE_XDM with its application certificate; the doctor receives it', async () => {
    const info = await labTransport().sendMail(await demoResultMessage({ from: lab, to: [doctor.address], rpps: DEV_RPPS }));
    expect(info.response).toMatch(/^250 /);
    await until(async () => (await inboxOf(doctor.address)) === 1);
  });

  it('the webmail API lists it and shows the document metadata', async () => {
    token = await login({ login: doctor.login, password: doctor.password });
    const list = await api('GET', `/api/v1/bals/${enc(doctor.address)}/folders/INBOX/messages`, { token });
    expect(list.status, list.body.toString()).toBe(200);
    const items = list.json().messages as Array<{ uid: number; from: unknown; subject: string }>;
    expect(items).toHaveLength(1);
    uid = items[0].uid;
    expect(items[0].subject).toMatch(/^XDM\/1\.0\/DDM\+/);
    const m = await api('GET', `/api/v1/bals/${enc(doctor.address)}/messages/INBOX/${uid}`, { token });
    expect(m.status, m.body.toString()).toBe(200);
    const msg = m.json();
    expect(msg.attachments.map((a: { filename: string }) => a.filename)).toContain('IHE_XDM.zip');
    const xdm = msg.documents.find((d: { kind: string }) => d.kind === 'xdm');
    expect(xdm.error).toBeUndefined();
    const entry = xdm.submission.documents[0];
    expect(entry.patientId).toEqual({ id: DEMO_PATIENT.ins, oid: DEMO_PATIENT.oid });
    expect(entry.typeCode).toMatchObject({ code: '11502-2', scheme: '2.16.840.1.113883.6.1' });
    expect(entry.authors[0].person).toMatch(new RegExp(`^8${DEV_RPPS}\\^MARTIN\\^Jeanne`));
    expect(entry.hash).toMatch(/^[0-9a-f]{40}$/);
  });

  it('the hand-off reaches the stand-in DMP with the metadata and the masking chosen', async () => {
    const r = await api('POST', `/api/v1/bals/${enc(doctor.address)}/messages/INBOX/${uid}/dmp`, { token, json: { masking: 'masque-ps' } });
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.json()).toMatchObject({ outcome: 'success', submissions: [{ status: 'success' }] });
    const got = op.platform.dmp!.standin!.submissions();
    expect(got).toHaveLength(1);
    const doc = got[0].documents[0];
    expect(doc.patientId).toEqual({ id: DEMO_PATIENT.ins, oid: DEMO_PATIENT.oid });
    expect(got[0].set.patientId.id).toBe(DEMO_PATIENT.ins);
    expect(doc.confidentialityCodes.map((c) => c.code)).toEqual(expect.arrayContaining(['N', 'MASQUE_PS']));
    // The bytes the DMP holds are the lab's document, by hash and size.
    const bytes = got[0].contents.get(doc.entryUuid)!;
    expect(createHash('sha1').update(bytes).digest('hex')).toBe(doc.hash);
    expect(bytes.length).toBe(doc.size);
    expect(bytes.toString('utf8')).toContain('ClinicalDocument');
  });

  it('the journal shows each step, and the hand-off is sealed by a timestamp openssl verifies', async () => {
    const { journal } = op.platform;
    const types = (await journal.list({ limit: 500 })).map((e) => `${e.type} ${e.subject ?? ''}`);
    const step = (re: RegExp) => expect(types.some((t) => re.test(t)), `${re} in ${types.join(' | ')}`).toBe(true);
    step(/^smtp\.received /);
    step(new RegExp(`^smtp\\.delivered `));
    step(/^webmail\.login /);
    step(/^dmp\.submitted /);
    const ev = (await journal.list({ type: 'dmp.submitted' }))[0];
    expect(ev.details).toMatchObject({ status: 'success' });
    await journal.sealNow();
    const proof = await journal.proof(ev.seq);
    expect(checkProof(proof)).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'mss-proof-'));
    writeFileSync(join(dir, 'stamped'), proof.stamped);
    writeFileSync(join(dir, 'token.tsr'), proof.token);
    const out = execFileSync('openssl', ['ts', '-verify', '-data', join(dir, 'stamped'), '-in', join(dir, 'token.tsr'), '-CAfile', pki.paths.ca, '-untrusted', pki.paths.intermediate], { encoding: 'utf8' });
    expect(out).toMatch(/Verification: OK/);
    expect((await journal.verify()).problems).toEqual([]);
  });
});

describe('an organisational box through the API', () => {
  it('the secretary reads a message to the box and answers it as the box', async () => {
    const paulMail = nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: { ca, servername: 'localhost' }, auth: { user: paul.login, pass: paul.password } });
    await paulMail.sendMail({ from: paul.address, to: orgBox, subject: 'Demande de rendez-vous', text: 'Un créneau la semaine prochaine ?' });
    await until(async () => (await inboxOf(orgBox)) === 1);
    const token = await login(marie);
    const list = await api('GET', `/api/v1/bals/${enc(orgBox)}/folders/INBOX/messages`, { token });
    expect(list.status, list.body.toString()).toBe(200);
    const { uid } = list.json().messages[0];
    const m = await api('GET', `/api/v1/bals/${enc(orgBox)}/messages/INBOX/${uid}`, { token });
    expect(m.json().text).toContain('Un créneau');
    const sent = await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { token, json: { to: [paul.address], subject: 'Re: Demande de rendez-vous', text: 'Mardi 10 h.', inReplyTo: m.json().messageId } });
    expect(sent.status, sent.body.toString()).toBe(200);
    await until(async () => (await inboxOf(paul.address)) === 1);
    const c = await op.imap(paul.address);
    try {
      await c.mailboxOpen('INBOX');
      const got = await c.fetchOne('1', { envelope: true });
      expect(got && got.envelope?.from?.[0].address).toBe(orgBox);
    } finally {
      await c.logout();
    }
  });

  it('a non-member gets 403 and the refusal is journalled', async () => {
    const token = await login({ login: paul.login, password: paul.password });
    const r = await api('GET', `/api/v1/bals/${enc(orgBox)}/folders/INBOX/messages`, { token });
    expect(r.status).toBe(403);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    const refusals = await op.platform.journal.list({ type: 'policy.refused', subject: orgBox });
    expect(refusals.some((e) => e.actor.includes(paul.login))).toBe(true);
  });
});

describe('a DMP rule on a box', () => {
  it('hands every result arriving in the box to the DMP by itself, once', async () => {
    await setDmpRule({ db: op.platform.db, journal: op.platform.journal }, { bal: orgBox, masking: 'invisible-patient', actor: 'test' });
    const before = op.platform.dmp!.standin!.submissions().length;
    await labTransport().sendMail(await demoResultMessage({ from: lab, to: [orgBox], rpps: DEV_RPPS }));
    await until(async () => op.platform.dmp!.standin!.submissions().length === before + 1);
    const doc = op.platform.dmp!.standin!.submissions().at(-1)!.documents[0];
    expect(doc.confidentialityCodes.map((c) => c.code)).toContain('INVISIBLE_PATIENT');
    // The outcome row is written once the DMP has answered.
    const rows = async () => (await op.platform.db.query<{ status: string; actor: string }>('SELECT status, actor FROM dmp_submissions WHERE bal = $1', [orgBox])).rows;
    await until(async () => (await rows()).length > 0);
    expect(await rows()).toEqual([{ status: 'success', actor: `dmp-rule:${orgBox}` }]);
    // Another pass finds nothing new: the high-water mark moved past the message. The
    // first tick() joins the pass that may still be recording it; the second is a new one.
    await op.platform.dmp!.watcher.tick();
    expect(await op.platform.dmp!.watcher.tick()).toBe(0);
    expect(op.platform.dmp!.standin!.submissions().length).toBe(before + 1);
  });
});

describe('the DMP out of reach', () => {
  it('a ruled box keeps its result until the DMP answers: the failed attempt is recorded, the next pass sends it', async () => {
    const { db, mailstore, dmp } = op.platform;
    let endpoint = 'http://127.0.0.1:1/dmp/iti41';
    const watcher = startDmpWatcher({
      db,
      rules: async () => [{ bal: paul.address, masking: 'normal' }],
      imap: { host: mailstore.imap.host, port: mailstore.imap.port, master: mailstore.master },
      handoff: (req) => handoffMessage({ ...dmp!.handoff, endpoint }, req),
      intervalMs: 3_600_000,
      log: silentLogger,
    });
    try {
      const before = dmp!.standin!.submissions().length;
      const inbox = await inboxOf(paul.address);
      await labTransport().sendMail(await demoResultMessage({ from: lab, to: [paul.address], rpps: DEV_RPPS }));
      await until(async () => (await inboxOf(paul.address)) === inbox + 1);
      expect(await watcher.tick()).toBe(0);
      const rows = async () => (await db.query<{ status: string; errors: Array<{ code: string }> }>('SELECT status, errors FROM dmp_submissions WHERE bal = $1 ORDER BY id', [paul.address])).rows;
      expect((await rows()).map((r) => [r.status, r.errors[0]?.code])).toEqual([['failure', 'DMP_UNREACHABLE']]);
      endpoint = dmp!.endpoint;
      expect(await watcher.tick()).toBe(1);
      expect(dmp!.standin!.submissions().length).toBe(before + 1);
      expect((await rows()).map((r) => r.status)).toEqual(['failure', 'success']);
      expect(await watcher.tick()).toBe(0);
    } finally {
      await watcher.stop();
    }
  });
});
