import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call, startTestWebmail, type Reply, folderMessages, mime, expectProblem } from './stack.js';

// The webmail API's work on messages, over HTTPS against a real operator: reply and forward
// (thread headers made by the server from the original), drafts; and their refusals — a box
// the person may not open, a message that is not there.

const D = 'mssante.localhost';
let pki: TestPki;
let op: TestOperator;
let web: WebmailService;
let ca: string;
const who: Record<string, { login: string; address: string; password: string }> = {};
const tokens: Record<string, string> = {};
let orgBox = '';
const enc = encodeURIComponent;
const api = (method: string, path: string, o: Parameters<typeof call>[4] = {}) => call(web.url, ca, method, path, o);

const box = (address: string, folder = 'INBOX') => folderMessages(op, address, folder);
const bySubject = async (address: string, subject: string, folder = 'INBOX') => (await box(address, folder)).find((m) => m.mail.subject === subject);

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  who.martin = await op.person('dr.martin', '810000000021');
  who.secretaire = await op.person('secretaire', '810000000022');
  who.intrus = await op.person('intrus', '810000000023');
  orgBox = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie' });
  await op.member(orgBox, 'secretaire');
  await op.synced();
  const c = await op.imap(orgBox);
  try {
    await c.append(
      'INBOX',
      await mime({
        from: who.martin.address,
        to: orgBox,
        subject: 'Convocation',
        text: 'Voir la pièce jointe.',
        messageId: `<convocation@${D}>`,
        attachments: [{ filename: 'convocation.txt', content: 'Le 12 à 10 h.', contentType: 'text/plain' }],
      }),
    );
  } finally {
    await c.logout();
  }
  web = await startTestWebmail(op, {}, { workers: 0 });
  for (const k of Object.keys(who)) {
    const r = await api('POST', '/api/v1/login', { json: { login: who[k].login, password: who[k].password } });
    tokens[k] = r.json().token;
  }
}, 300_000);

afterAll(async () => {
  await web?.stop();
  await op?.stop();
});

describe('reply, forward and drafts through the API', () => {
  it('a reply names its original: the server writes In-Reply-To and References and marks it answered', async () => {
    const r = await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { token: tokens.secretaire, json: { to: [who.martin.address], subject: 'RE: Convocation', text: 'Bien reçu.', original: { folder: 'INBOX', uid: 1, action: 'reply' } } });
    expect(r.status, r.body.toString()).toBe(200);
    await until(async () => !!(await bySubject(who.martin.address, 'RE: Convocation')));
    const m = (await bySubject(who.martin.address, 'RE: Convocation'))!.mail;
    expect([m.inReplyTo, m.references]).toEqual([`<convocation@${D}>`, `<convocation@${D}>`]);
    expect((await bySubject(orgBox, 'Convocation'))!.flags).toContain('\\Answered');
  });

  it('a forward carries the original attachments, References only, and marks it $Forwarded', async () => {
    const r = await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { token: tokens.secretaire, json: { to: [who.martin.address], subject: 'TR: Convocation', text: 'Pour info.', original: { folder: 'INBOX', uid: 1, action: 'forward' } } });
    expect(r.status, r.body.toString()).toBe(200);
    await until(async () => !!(await bySubject(who.martin.address, 'TR: Convocation')));
    const m = (await bySubject(who.martin.address, 'TR: Convocation'))!.mail;
    expect(m.inReplyTo).toBeUndefined();
    expect(m.references).toBe(`<convocation@${D}>`);
    expect(m.attachments.map((a) => [a.filename, a.content.toString()])).toEqual([['convocation.txt', 'Le 12 à 10 h.']]);
    expect((await bySubject(orgBox, 'Convocation'))!.flags).toContain('$Forwarded');
  });

  it('a draft: kept with its Bcc and thread, replaced by its next version, read back, sent, then gone', async () => {
    const first = await api('POST', `/api/v1/bals/${enc(orgBox)}/drafts`, { token: tokens.secretaire, json: { subject: 'Brouillon 1', original: { folder: 'INBOX', uid: 1, action: 'forward' } } });
    expect(first.status, first.body.toString()).toBe(200);
    const { folder, uid } = first.json() as { folder: string; uid: number };
    expect(folder).toBe('Drafts');
    const second = await api('POST', `/api/v1/bals/${enc(orgBox)}/drafts`, { token: tokens.secretaire, json: { to: [who.martin.address], bcc: [who.secretaire.address], subject: 'Brouillon 2', text: 'Presque fini.', draft: uid } });
    expect(second.status, second.body.toString()).toBe(200);
    const next = second.json().uid as number;
    expect((await box(orgBox, 'Drafts')).map((m) => m.mail.subject)).toEqual(['Brouillon 2']);
    const read = await api('GET', `/api/v1/bals/${enc(orgBox)}/messages/Drafts/${next}?markSeen=false`, { token: tokens.secretaire });
    expect(read.json()).toMatchObject({ subject: 'Brouillon 2', to: [{ address: who.martin.address }], bcc: [{ address: who.secretaire.address }], attachments: [{ filename: 'convocation.txt' }], flags: { draft: true } });
    const sent = await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { token: tokens.secretaire, json: { to: [who.martin.address], bcc: [who.secretaire.address], subject: 'Envoyé du brouillon', text: 'Fini.', draft: next } });
    expect(sent.status, sent.body.toString()).toBe(200);
    await until(async () => !!(await bySubject(who.martin.address, 'Envoyé du brouillon')));
    const m = (await bySubject(who.martin.address, 'Envoyé du brouillon'))!.mail;
    expect(m.attachments.map((a) => a.filename)).toEqual(['convocation.txt']);
    expect(m.references).toBe(`<convocation@${D}>`);
    // Neither the draft's own header nor the Bcc leaves.
    expect(m.headers.has('x-webmail-original')).toBe(false);
    expect(m.headers.has('bcc')).toBe(false);
    await until(async () => !!(await bySubject(who.secretaire.address, 'Envoyé du brouillon')));
    expect(await box(orgBox, 'Drafts')).toEqual([]);
  });

  it('refusals: a box the person may not open (its messages, its drafts), a message or draft that is not there, a malformed original', async () => {
    const asIntrus = { token: tokens.intrus };
    for (const r of [
      await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { ...asIntrus, json: { to: [who.intrus.address], subject: 'x', original: { folder: 'INBOX', uid: 1, action: 'forward' } } }),
      await api('POST', `/api/v1/bals/${enc(orgBox)}/drafts`, { ...asIntrus, json: { subject: 'x' } }),
    ])
      expectProblem(r, 403, 'WEBMAIL_BAL_REFUSED');
    // The intruder's own box cannot name the secretariat's message: it is looked for in his.
    expectProblem(await api('POST', `/api/v1/bals/${enc(who.intrus.address)}/send`, { ...asIntrus, json: { to: [who.intrus.address], subject: 'x', original: { folder: 'INBOX', uid: 1, action: 'forward' } } }), 404, 'NOT_FOUND');
    expectProblem(await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { token: tokens.secretaire, json: { to: [who.martin.address], subject: 'x', draft: 999 } }), 404, 'NOT_FOUND');
    expectProblem(await api('POST', `/api/v1/bals/${enc(orgBox)}/send`, { token: tokens.secretaire, json: { to: [who.martin.address], subject: 'x', original: { folder: 'INBOX', uid: 1, action: 'delete' } } }), 400, 'BAD_REQUEST');
    expectProblem(await api('POST', `/api/v1/bals/${enc(orgBox)}/drafts`, { token: tokens.secretaire, json: { subject: 'a\r\nBcc: x@y' } }), 400, 'BAD_REQUEST');
    // Nothing was sent or kept by any of them.
    expect(await box(orgBox, 'Drafts')).toEqual([]);
    expect(await bySubject(who.intrus.address, 'x')).toBeUndefined();
  });
});
