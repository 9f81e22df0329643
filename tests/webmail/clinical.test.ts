import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPerson } from '../../annuaire/bal/index.js';
import { buildCdaDocument } from '../../dmp/cda.js';
import { HOSTILE_PATIENT, hostileCda } from '../helpers/cda.js';
import { composeXdmMessage, submissionFromCda } from '../../dmp/documents.js';
import { cdaNarrative } from '../../dmp/narrative.js';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call, dmpDepsOf, startTestWebmail, folderMessages, mime, expectProblem } from './stack.js';

// Clinical documents through the webmail API against a real operator and its stand-in DMP:
// what a message's IHE_XDM / CDA shows (patient, type, author, narrative) with hostile
// narrative kept inert, the hand-off's outcome on the message, a CDA sent as IHE_XDM.zip
// with the X-MSS headers, the per-box DMP rule (policy-checked, journalled), attachment
// previews and the read receipt's choice — with their refusals.

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
const PATIENT = HOSTILE_PATIENT;

const box = (address: string, folder = 'INBOX') => folderMessages(op, address, folder);
const uidOf = async (address: string, subject: RegExp) => (await box(address)).find((m) => subject.test(m.mail.subject ?? ''))!.uid;

const zipNames = (zip: Buffer) =>
  new Promise<string[]>((resolve, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => {
      if (err || !z) return reject(err);
      const names: string[] = [];
      z.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        z.readEntry();
      });
      z.on('end', () => resolve(names));
      z.readEntry();
    }),
  );

/** Markup that could act: an active element, or an attribute that runs, styles or links (inside a tag: escaped text is inert). */
const ACTIVE = /<(script|img|iframe|svg|style|object|a)\b|<[^>]*\s(on\w+|style|href|src)\s*=|javascript:/i;

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  who.martin = await op.person('dr.martin', '810000000031');
  who.paul = await op.person('paul.bernard', '810000000032');
  who.intrus = await op.person('intrus', '810000000033');
  who.marie = { login: 'marie.secretaire', address: '', password: 'mot-de-passe-marie-2026' };
  await createPerson(op.ctx, { login: who.marie.login, nom: 'DURAND', prenom: 'Marie', password: who.marie.password }, 'test');
  orgBox = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie' });
  await op.member(orgBox, 'marie.secretaire');
  await op.member(orgBox, 'dr.martin');
  await op.synced();

  const submission = submissionFromCda(hostileCda(), { sourceId: '1.2.250.1.999.2.1', intendedRecipients: [who.martin.address] });
  const xdm = await composeXdmMessage({ from: `labo@${D}`, to: [who.martin.address], text: 'Résultats ci-joints.', submission, nil: 'labo-test' });
  const c = await op.imap(who.martin.address);
  try {
    await c.append('INBOX', await mime({ ...xdm, messageId: `<xdm1@${D}>` } as ConstructorParameters<typeof MailComposer>[0]));
    await c.append(
      'INBOX',
      await mime({
        from: who.paul.address,
        to: who.martin.address,
        subject: 'Pièces diverses',
        text: 'Voir.',
        headers: { 'Disposition-Notification-To': who.paul.address },
        attachments: [
          { filename: 'photo.png', content: PNG, contentType: 'image/png' },
          { filename: 'page.html', content: '<script>alert(1)</script>', contentType: 'text/html' },
          { filename: 'dessin.svg', content: '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', contentType: 'image/svg+xml' },
          { filename: 'cr.pdf', content: Buffer.from('%PDF-1.4\n%%EOF\n'), contentType: 'application/pdf' },
        ],
      }),
    );
  } finally {
    await c.logout();
  }
  web = await startTestWebmail(op, dmpDepsOf(op), { workers: 1 });
  for (const k of Object.keys(who)) tokens[k] = (await api('POST', '/api/v1/login', { json: { login: who[k].login, password: who[k].password } })).json().token;
}, 300_000);

afterAll(async () => {
  await web?.stop();
  await op?.stop();
});

describe('clinical documents in a message', () => {
  it('the narrative is built from escaped text and a few plain elements: nothing of the hostile markup survives', () => {
    const html = cdaNarrative(hostileCda())!;
    expect(html).toContain('<p>Hémoglobine : <span>14 g/dL</span></p>');
    expect(html).toContain('<ol><li>un</li><li>deux</li></ol>');
    expect(html).toContain('<td colspan="2">Na 140</td>');
    expect(html).not.toMatch(ACTIVE);
    // The script's and the CDATA's text is shown as text (escaped), never as markup.
    expect(html).toContain('&lt;img src=x onerror=');
  });

  it('the message shows patient, type, author, date, confidentiality and the sanitised narrative of its XDM', async () => {
    const uid = await uidOf(who.martin.address, /^XDM/);
    const r = await api('GET', `/api/v1/bals/${enc(who.martin.address)}/messages/INBOX/${uid}`, { token: tokens.martin });
    expect(r.status, r.body.toString()).toBe(200);
    const m = r.json();
    expect(m.documents[0].view).toMatchObject({
      filename: 'IHE_XDM.zip',
      kind: 'xdm',
      documents: [
        {
          title: 'Résultats biologiques',
          type: { code: '11502-2' },
          patient: { family: 'DUPONT', given: 'Jeanne', birthDate: '1979-03-12', ins: PATIENT.ins, insKind: 'INS-NIR de test' },
          authors: [{ name: 'Biologiste LABO', institution: 'Laboratoire Test' }],
          masking: ['normal'],
        },
      ],
    });
    const narrative = m.documents[0].view.documents[0].narrative as string;
    expect(narrative).toContain('Hémoglobine');
    expect(narrative).not.toMatch(ACTIVE);
    expect(m.dmp).toEqual([]);
  });

  it('hand-off with a masking choice: the stand-in DMP gets it, the outcome is on the message; a non-member is refused', async () => {
    const uid = await uidOf(who.martin.address, /^XDM/);
    const path = `/api/v1/bals/${enc(who.martin.address)}/messages/INBOX/${uid}`;
    expectProblem(await api('POST', `${path}/dmp`, { token: tokens.intrus, json: { masking: 'normal' } }), 403, 'WEBMAIL_BAL_REFUSED');
    const before = op.platform.dmp!.standin!.submissions().length;
    const h = await api('POST', `${path}/dmp`, { token: tokens.martin, json: { masking: 'invisible-patient' } });
    expect(h.status, h.body.toString()).toBe(200);
    expect(h.json().outcome).toBe('success');
    const got = op.platform.dmp!.standin!.submissions();
    expect(got.length).toBe(before + 1);
    expect(got.at(-1)!.documents[0]!.confidentialityCodes.map((c) => c.code)).toContain('INVISIBLE_PATIENT');
    const m = (await api('GET', `${path}?markSeen=false`, { token: tokens.martin })).json();
    expect(m.dmp).toMatchObject([{ status: 'success', masking: 'invisible-patient', actor: expect.stringContaining('dr.martin') }]);
  });
});

describe('a CDA sent as IHE_XDM.zip', () => {
  it('the server packs the .xml CDA into IHE_XDM.zip with X-MSS-INS and X-MSS-CODECDA and the XDM subject; the recipient sees a clinical document', async () => {
    const cda = buildCdaDocument({
      patient: PATIENT,
      author: { rpps: '10000000031', family: 'MARTIN', given: 'Paul' },
      code: { code: '11488-4', scheme: '2.16.840.1.113883.6.1', display: 'Note de consultation' },
      title: 'Consultation',
      text: 'Patient vu ce jour.',
    });
    const r = await api('POST', `/api/v1/bals/${enc(who.martin.address)}/send`, {
      token: tokens.martin,
      json: { to: [who.paul.address], subject: '', text: 'Ci-joint.', xdm: true, attachments: [{ filename: 'consultation.xml', contentType: 'text/xml', content: cda.toString('base64') }] },
    });
    expect(r.status, r.body.toString()).toBe(200);
    await until(async () => (await box(who.paul.address)).some((m) => /^XDM\/1\.0\/DDM\+/.test(m.mail.subject ?? '')));
    const got = (await box(who.paul.address)).find((m) => /^XDM/.test(m.mail.subject ?? ''))!;
    expect(got.mail.subject).toBe('XDM/1.0/DDM+Note de consultation DUPONT Jeanne 12/03/1979');
    expect(got.mail.headers.get('x-mss-ins')).toBe('O');
    expect(got.mail.headers.get('x-mss-codecda')).toBe('11488-4');
    expect(got.mail.attachments.map((a) => [a.filename, a.contentType])).toEqual([['IHE_XDM.zip', 'application/zip']]);
    expect(await zipNames(got.mail.attachments[0]!.content)).toEqual(expect.arrayContaining(['README.TXT', 'INDEX.HTM', 'IHE_XDM/SUBSET01/METADATA.XML', 'IHE_XDM/SUBSET01/DOC0001.XML']));
    const shown = (await api('GET', `/api/v1/bals/${enc(who.paul.address)}/messages/INBOX/${got.uid}`, { token: tokens.paul })).json();
    expect(shown.documents[0].view.documents[0]).toMatchObject({ title: 'Consultation', patient: { family: 'DUPONT', ins: PATIENT.ins } });
  });

  it('refusals: no .xml to pack, an .xml that is not a CDA — nothing is sent', async () => {
    const send = (attachments: unknown[]) => api('POST', `/api/v1/bals/${enc(who.martin.address)}/send`, { token: tokens.martin, json: { to: [who.paul.address], subject: 'refusé', xdm: true, attachments } });
    expectProblem(await send([{ filename: 'a.txt', contentType: 'text/plain', content: Buffer.from('x').toString('base64') }]), 400, 'BAD_REQUEST');
    expectProblem(await send([{ filename: 'a.xml', contentType: 'text/xml', content: Buffer.from('<note>pas un CDA</note>').toString('base64') }]), 422, 'CDA_INVALID');
    expectProblem(await send([{ filename: 'a.xml', contentType: 'text/xml', content: Buffer.from('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ClinicalDocument>&e;</ClinicalDocument>').toString('base64') }]), 422, 'CDA_INVALID');
    expect((await box(who.paul.address)).some((m) => m.mail.subject === 'refusé')).toBe(false);
  });
});

describe('the DMP rule of an organisational box', () => {
  const rulePath = () => `/api/v1/bals/${enc(orgBox)}/dmp-rule`;
  it('a health professional member sets it (journalled); a member without a national id reads it but may not set it; others are refused', async () => {
    expect((await api('GET', rulePath(), { token: tokens.martin })).json()).toMatchObject({ bal: orgBox, rule: null, maySet: true });
    const set = await api('PUT', rulePath(), { token: tokens.martin, json: { masking: 'masque-ps', enabled: true } });
    expect(set.status, set.body.toString()).toBe(200);
    expect(set.json()).toMatchObject({ rule: { masking: 'masque-ps', enabled: true, createdBy: expect.stringContaining('dr.martin') } });
    expect((await op.platform.journal.list({ type: 'dmp.rule.set', limit: 5 })).some((e) => e.subject === orgBox)).toBe(true);

    const marie = await api('GET', rulePath(), { token: tokens.marie });
    expect(marie.json()).toMatchObject({ rule: { masking: 'masque-ps' }, maySet: false, why: expect.stringContaining('health professional') });
    expectProblem(await api('PUT', rulePath(), { token: tokens.marie, json: { masking: 'normal' } }), 403, 'DMP_RULE_FORBIDDEN');
    expectProblem(await api('DELETE', rulePath(), { token: tokens.marie }), 403, 'DMP_RULE_FORBIDDEN');
    expectProblem(await api('GET', rulePath(), { token: tokens.intrus }), 403, 'BAL_NOT_MEMBER');
    expectProblem(await api('PUT', rulePath(), { token: tokens.intrus, json: { masking: 'normal' } }), 403, 'DMP_RULE_FORBIDDEN');
    // A personal box has no rule, even for its holder.
    expectProblem(await api('PUT', `/api/v1/bals/${enc(who.martin.address)}/dmp-rule`, { token: tokens.martin, json: { masking: 'normal' } }), 403, 'DMP_RULE_FORBIDDEN');
    expectProblem(await api('PUT', rulePath(), { token: tokens.martin, json: { masking: 'secret' } }), 400, 'BAD_REQUEST');
    const refused = await op.platform.journal.list({ type: 'policy.refused', limit: 50 });
    expect(refused.filter((e) => e.subject === orgBox && (e.details as { action?: string }).action === 'dmp-rule').length).toBeGreaterThanOrEqual(3);
    // The refusals changed nothing; the professional removes it.
    expect((await api('GET', rulePath(), { token: tokens.martin })).json().rule.masking).toBe('masque-ps');
    expect((await api('DELETE', rulePath(), { token: tokens.martin })).json()).toMatchObject({ rule: null });
  });
});

describe('attachment previews and the read receipt', () => {
  it('an image or a PDF inline with nosniff and a CSP sandbox; HTML and SVG never inline', async () => {
    const uid = await uidOf(who.martin.address, /^Pièces diverses$/);
    const at = (i: number, inline = true) => api('GET', `/api/v1/bals/${enc(who.martin.address)}/messages/INBOX/${uid}/attachments/${i}${inline ? '?inline=true' : ''}`, { token: tokens.martin });
    const png = await at(0);
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.headers['content-disposition']).toMatch(/^inline; filename="photo.png"/);
    expect(png.headers['x-content-type-options']).toBe('nosniff');
    expect(png.headers['content-security-policy']).toMatch(/^sandbox/);
    expect(png.body.equals(PNG)).toBe(true);
    expect((await at(3)).headers['content-disposition']).toMatch(/^inline; filename="cr.pdf"/);
    expectProblem(await at(1), 415, 'WEBMAIL_NO_PREVIEW');
    expectProblem(await at(2), 415, 'WEBMAIL_NO_PREVIEW');
    // Downloaded, they are attachments (and the connection still serves).
    expect((await at(1, false)).headers['content-disposition']).toMatch(/^attachment;/);
    expect((await at(0)).status).toBe(200);
  });

  it('the read receipt on the person’s choice: declining sends nothing and is remembered', async () => {
    const uid = await uidOf(who.martin.address, /^Pièces diverses$/);
    const path = `/api/v1/bals/${enc(who.martin.address)}/messages/INBOX/${uid}/mdn`;
    expectProblem(await api('POST', path, { token: tokens.intrus, json: { decline: true } }), 403, 'WEBMAIL_BAL_REFUSED');
    const r = await api('POST', path, { token: tokens.martin, json: { decline: true } });
    expect(r.json()).toMatchObject({ declined: true });
    expect((await box(who.martin.address)).find((m) => m.uid === uid)!.flags).toContain('$MDNSent');
    expectProblem(await api('POST', path, { token: tokens.martin }), 409, 'WEBMAIL_MDN_ALREADY_SENT');
    expect((await box(who.paul.address)).some((m) => /Accusé de lecture/.test(m.mail.subject ?? ''))).toBe(false);
  });
});
