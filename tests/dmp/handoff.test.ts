// The hand-off end to end below the mailbox: a real MIME message carrying an IHE_XDM.zip,
// its documents read, masked and sent by ITI-41 to the stand-in DMP over HTTP, the outcome
// kept in dmp_submissions and the journal — on PGlite, and on PostgreSQL when one is given.
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { freePort } from '../../core/net.js';
import { buildCdaDocument } from '../../dmp/cda.js';
import { documentsOfMessage } from '../../dmp/documents.js';
import { dmpRules, dmpStatus, handoffMessage, listDmpRules, messageIdOf, removeDmpRule, setDmpRule, type HandoffDeps } from '../../dmp/handoff.js';
import { startStandinDmp, type StandinDmp } from '../../dmp/standin/index.js';
import type { Submission } from '../../dmp/types.js';
import { buildXdm } from '../../dmp/xdm/build.js';
import { xdmLimits } from '../../dmp/xdm/read.js';
import { dbTargets } from '../helpers/db.js';
import { rawZip } from '../fixtures/dmp/rawzip.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';

const limits = xdmLimits(loadConfig({ env: {}, cwd: '/tmp' }));
let counter = 0;

function fresh(count = 1): Submission {
  const s = sampleSubmission(count);
  const n = `${process.pid}.${++counter}`;
  s.set.uniqueId = `${s.set.uniqueId}.${n}`;
  for (const d of s.documents) d.uniqueId = `${d.uniqueId}.${n}`;
  // As a lab sends it: visible to all.
  for (const d of s.documents) d.confidentialityCodes = [{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }];
  return s;
}

async function message(messageId: string, attachments: Array<{ filename: string; content: Buffer; contentType: string }>): Promise<Buffer> {
  return new MailComposer({
    from: 'labo@labo.mssante.localhost',
    to: 'dr.martin@mssante.localhost',
    subject: 'Résultat',
    messageId,
    text: 'Résultat ci-joint.',
    attachments,
  })
    .compile()
    .build();
}

const documentsOf = (raw: Buffer) => documentsOfMessage(raw, limits);

describe.each(dbTargets())('DMP hand-off on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let dmp: StandinDmp;
  let deps: HandoffDeps;

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    dmp = await startStandinDmp({ log: silentLogger });
    deps = { db, journal, documentsOf, endpoint: dmp.url, timeoutMs: 10_000, log: silentLogger };
  });
  afterAll(async () => {
    await dmp?.stop();
    await dispose?.();
  });

  const req = (raw: Buffer, messageId: string, extra: { masking?: 'normal' | 'masque-ps' | 'invisible-patient' | 'invisible-representants-legaux'; uid?: number } = {}) => ({
    actor: 'dr.martin',
    bal: 'dr.martin@mssante.localhost',
    folder: 'INBOX',
    uid: extra.uid ?? 7,
    messageId,
    raw,
    ...(extra.masking ? { masking: extra.masking } : {}),
  });

  it('sends the documents of an IHE_XDM.zip with the masking asked for, and records the outcome', async () => {
    const sub = fresh(2);
    const raw = await message('<res-1@labo.mssante.localhost>', [{ filename: 'IHE_XDM.zip', content: await buildXdm(sub), contentType: 'application/zip' }]);
    const before = dmp.submissions().length;
    const r = await handoffMessage(deps, req(raw, '<res-1@labo.mssante.localhost>', { masking: 'invisible-patient' }));
    expect(r.outcome).toBe('success');
    expect(r.submissions).toHaveLength(1);
    const s = r.submissions[0]!;
    expect(s).toMatchObject({ status: 'success', attachment: 'IHE_XDM.zip', documentIds: sub.documents.map((d) => d.uniqueId), errors: [], httpStatus: 200 });

    // What reached the DMP: the documents, their bytes, and the masking as confidentiality codes.
    const got = dmp.submissions();
    expect(got).toHaveLength(before + 1);
    const at = got.at(-1)!;
    expect(at.requestId).toBe(s.requestId);
    expect(at.documents.map((d) => d.uniqueId)).toEqual(sub.documents.map((d) => d.uniqueId));
    for (const d of at.documents) {
      expect(d.confidentialityCodes.map((c) => `${c.code}@${c.scheme}`)).toEqual(['N@2.16.840.1.113883.5.25', 'INVISIBLE_PATIENT@1.2.250.1.213.1.1.4.13']);
      expect(at.contents.get(d.entryUuid)!.equals(sub.contents.get(sub.documents.find((x) => x.uniqueId === d.uniqueId)!.entryUuid)!)).toBe(true);
    }

    // The row and the journal event, written together.
    const { rows } = await db.query('SELECT * FROM dmp_submissions WHERE id = $1', [s.id]);
    expect(rows[0]).toMatchObject({
      bal: 'dr.martin@mssante.localhost',
      folder: 'INBOX',
      message_id: '<res-1@labo.mssante.localhost>',
      actor: 'dr.martin',
      attachment: 'IHE_XDM.zip',
      kind: 'xdm',
      document_ids: sub.documents.map((d) => d.uniqueId),
      masking: 'invisible-patient',
      status: 'success',
      errors: [],
      endpoint: dmp.url,
      request_id: s.requestId,
      http_status: 200,
      journal_seq: s.journalSeq,
    });
    expect(Number(rows[0]!.uid)).toBe(7);
    const ev = (await journal.get(s.journalSeq))!;
    expect(ev).toMatchObject({
      type: 'dmp.submitted',
      actor: 'dr.martin',
      subject: '<res-1@labo.mssante.localhost>',
      details: {
        bal: 'dr.martin@mssante.localhost',
        messageId: '<res-1@labo.mssante.localhost>',
        documents: sub.documents.map((d) => d.uniqueId),
        status: 'success',
        masking: 'invisible-patient',
        visibility: ['invisible-patient'],
        endpoint: dmp.url,
        requestId: s.requestId,
        httpStatus: 200,
        errors: [],
      },
    });

    const status = await dmpStatus(db, 'dr.martin@mssante.localhost', ['<res-1@labo.mssante.localhost>', '<other@x>']);
    expect([...status.keys()]).toEqual(['<res-1@labo.mssante.localhost>']);
    expect(status.get('<res-1@labo.mssante.localhost>')).toEqual([
      expect.objectContaining({ id: s.id, status: 'success', documentIds: s.documentIds, masking: 'invisible-patient', requestId: s.requestId, journalSeq: s.journalSeq, submittedAt: expect.any(Date) }),
    ]);
    // Another box never sees it.
    expect((await dmpStatus(db, 'other@mssante.localhost', ['<res-1@labo.mssante.localhost>'])).size).toBe(0);
  });

  it('keeps the documents\' own confidentiality when no masking is asked, and records the DMP\'s refusal with its error list', async () => {
    const sub = fresh(1);
    sub.documents[0]!.confidentialityCodes.push({ code: 'MASQUE_PS', scheme: '1.2.250.1.213.1.1.4.13', display: 'Masqué aux professionnels de santé' });
    const raw = await message('<res-2@labo.mssante.localhost>', [{ filename: 'IHE_XDM.zip', content: await buildXdm(sub), contentType: 'application/zip' }]);
    const first = await handoffMessage(deps, req(raw, '<res-2@labo.mssante.localhost>'));
    expect(first.outcome).toBe('success');
    expect(dmp.submissions().at(-1)!.documents[0]!.confidentialityCodes.map((c) => c.code)).toEqual(['N', 'MASQUE_PS']);

    // The same documents again: the registry refuses them, and that is the outcome recorded.
    const again = await handoffMessage(deps, { ...req(raw, '<res-2@labo.mssante.localhost>'), actor: 'dmp-rule:dr.martin@mssante.localhost' });
    expect(again.outcome).toBe('failure');
    const s = again.submissions[0]!;
    expect(s.status).toBe('failure');
    expect(s.errors.map((e) => e.code)).toEqual(['XDSDuplicateUniqueIdInRegistry', 'XDSDuplicateUniqueIdInRegistry']);
    const ev = (await journal.get(s.journalSeq))!;
    expect(ev).toMatchObject({ type: 'dmp.failed', actor: 'dmp-rule:dr.martin@mssante.localhost', details: { status: 'failure', errors: s.errors, httpStatus: 200 } });
    const { rows } = await db.query<{ errors: unknown; status: string }>('SELECT status, errors FROM dmp_submissions WHERE id = $1', [s.id]);
    expect(rows[0]).toEqual({ status: 'failure', errors: s.errors });
    // Newest first.
    expect((await dmpStatus(db, 'dr.martin@mssante.localhost', ['<res-2@labo.mssante.localhost>'])).get('<res-2@labo.mssante.localhost>')!.map((o) => o.status)).toEqual(['failure', 'success']);
  });

  it('refuses a hostile XDM: failure with the reason, journalled, nothing sent', async () => {
    const hostile = rawZip([
      { name: 'README.TXT', data: Buffer.from('x') },
      { name: 'IHE_XDM/SUBSET01/../../../etc/cron.d/evil', data: Buffer.from('* * * * * root sh') },
    ]);
    const good = await buildXdm(fresh(1));
    const raw = await message('<res-3@labo.mssante.localhost>', [
      { filename: 'IHE_XDM.zip', content: good, contentType: 'application/zip' },
      { filename: 'IHE_XDM.zip', content: hostile, contentType: 'application/zip' },
    ]);
    const before = dmp.submissions().length;
    const r = await handoffMessage(deps, req(raw, '<res-3@labo.mssante.localhost>', { masking: 'masque-ps' }));
    expect(r.outcome).toBe('failure');
    expect(r.reason).toMatch(/^IHE_XDM\.zip \(xdm\): the IHE_XDM archive is refused: .*\.\./);
    expect(dmp.submissions()).toHaveLength(before); // not even the good package of the same message
    const s = r.submissions[0]!;
    expect(s).toMatchObject({ status: 'failure', documentIds: [], requestId: null, httpStatus: null });
    expect(s.errors).toEqual([{ code: 'XDM_REFUSED', context: r.reason, severity: 'error' }]);
    const ev = (await journal.get(s.journalSeq))!;
    expect(ev).toMatchObject({ type: 'dmp.failed', details: { sent: false, documents: [], status: 'failure', errors: s.errors } });
    const { rows } = await db.query('SELECT status, endpoint, request_id, document_ids FROM dmp_submissions WHERE id = $1', [s.id]);
    expect(rows[0]).toEqual({ status: 'failure', endpoint: null, request_id: null, document_ids: [] });
  });

  it('sends a bare CDA document as a submission made from its header', async () => {
    const cda = buildCdaDocument({
      patient: { ins: '279035121518989', family: 'DUPONT', given: 'Jeanne', birthDate: '19790312', gender: 'F' },
      author: { rpps: '10002909371', family: 'MARTIN', given: 'Claire', organization: { id: '31234567800017', name: 'LABO DU PORT' } },
      code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
      title: 'Glycémie',
      text: 'Glycémie à jeun : 0,95 g/L',
    });
    const raw = await message('<res-5@labo.mssante.localhost>', [{ filename: 'resultat.xml', content: cda, contentType: 'text/xml' }]);
    const r = await handoffMessage({ ...deps, sourceId: '1.2.250.1.999.42' }, req(raw, '<res-5@labo.mssante.localhost>', { masking: 'invisible-representants-legaux' }));
    expect(r.outcome).toBe('success');
    const at = dmp.submissions().at(-1)!;
    expect(at.requestId).toBe(r.submissions[0]!.requestId);
    expect(at.set).toMatchObject({ sourceId: '1.2.250.1.999.42', patientId: { id: '279035121518989', oid: '1.2.250.1.213.1.4.10' } });
    expect(at.documents).toHaveLength(1);
    expect(at.documents[0]).toMatchObject({ typeCode: { code: '11502-2' }, mimeType: 'text/xml' });
    expect(at.documents[0]!.confidentialityCodes.map((c) => c.code)).toEqual(['N', 'INVISIBLE_REPRESENTANTS_LEGAUX']);
    expect(at.contents.get(at.documents[0]!.entryUuid)!.equals(cda)).toBe(true);
    expect(r.submissions[0]).toMatchObject({ attachment: 'resultat.xml', documentIds: [at.documents[0]!.uniqueId] });
  });

  it('finds the Message-ID in the message when the caller does not give it', async () => {
    expect(messageIdOf(Buffer.from('From: a@b\r\nMessage-ID:\r\n <x.1@b>\r\nSubject: s\r\n\r\nMessage-ID: <body@b>\r\n'))).toBe('<x.1@b>');
    expect(messageIdOf(Buffer.from('From: a@b\r\n\r\nMessage-ID: <body@b>\r\n'))).toBeUndefined();
    const raw = await message('<res-6@labo.mssante.localhost>', [{ filename: 'IHE_XDM.zip', content: await buildXdm(fresh(1)), contentType: 'application/zip' }]);
    const { messageId: _drop, ...withoutId } = req(raw, 'unused');
    const r = await handoffMessage(deps, withoutId);
    expect(r.outcome).toBe('success');
    expect((await dmpStatus(db, 'dr.martin@mssante.localhost', ['<res-6@labo.mssante.localhost>'])).get('<res-6@labo.mssante.localhost>')!.map((o) => o.id)).toEqual([r.submissions[0]!.id]);
  });

  it('a message without documents: nothing sent, nothing recorded', async () => {
    const raw = await message('<hello@x>', []);
    const count = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM dmp_submissions')).rows[0]!.n);
    const before = await count();
    expect(await handoffMessage(deps, req(raw, '<hello@x>'))).toEqual({ outcome: 'nothing', submissions: [] });
    expect(await count()).toBe(before);
  });

  it('a DMP out of reach is a recorded failure, and a bad masking is refused before anything', async () => {
    const raw = await message('<res-4@labo.mssante.localhost>', [{ filename: 'IHE_XDM.zip', content: await buildXdm(fresh(1)), contentType: 'application/zip' }]);
    const port = await freePort();
    const r = await handoffMessage({ ...deps, endpoint: `http://127.0.0.1:${port}/dmp/iti41` }, req(raw, '<res-4@labo.mssante.localhost>'));
    expect(r.outcome).toBe('failure');
    expect(r.submissions[0]!.errors[0]).toMatchObject({ code: 'DMP_UNREACHABLE' });
    expect((await journal.get(r.submissions[0]!.journalSeq))!.details).toMatchObject({ endpoint: `http://127.0.0.1:${port}/dmp/iti41`, httpStatus: 0 });

    await expect(handoffMessage(deps, { ...req(raw, '<res-4@labo.mssante.localhost>'), masking: 'secret' as never })).rejects.toBeInstanceOf(MssError);
  });

  it('per-BAL rules: set, read by the watcher, changed, removed — each journalled', async () => {
    await setDmpRule({ db, journal }, { bal: 'labo@mssante.localhost', masking: 'normal', actor: 'admin:root' });
    await setDmpRule({ db, journal }, { bal: 'cardio@mssante.localhost', masking: 'invisible-patient', actor: 'admin:root' });
    expect(await dmpRules(db)).toEqual([
      { bal: 'cardio@mssante.localhost', masking: 'invisible-patient' },
      { bal: 'labo@mssante.localhost', masking: 'normal' },
    ]);
    await setDmpRule({ db, journal }, { bal: 'cardio@mssante.localhost', masking: 'masque-ps', enabled: false, actor: 'admin:root' });
    expect(await dmpRules(db)).toEqual([{ bal: 'labo@mssante.localhost', masking: 'normal' }]);
    expect((await listDmpRules(db)).find((r) => r.bal === 'cardio@mssante.localhost')).toMatchObject({ masking: 'masque-ps', enabled: false, createdBy: 'admin:root' });
    expect(await removeDmpRule({ db, journal }, 'labo@mssante.localhost', 'admin:root')).toBe(true);
    expect(await removeDmpRule({ db, journal }, 'labo@mssante.localhost', 'admin:root')).toBe(false);
    expect(await dmpRules(db)).toEqual([]);
    expect((await journal.list({ typePrefix: 'dmp.rule.' })).map((e) => [e.type, e.subject, e.details])).toEqual([
      ['dmp.rule.removed', 'labo@mssante.localhost', {}],
      ['dmp.rule.set', 'cardio@mssante.localhost', { masking: 'masque-ps', enabled: false }],
      ['dmp.rule.set', 'cardio@mssante.localhost', { masking: 'invisible-patient', enabled: true }],
      ['dmp.rule.set', 'labo@mssante.localhost', { masking: 'normal', enabled: true }],
    ]);
    await expect(setDmpRule({ db, journal }, { bal: 'x@y', masking: 'nope' as never, actor: 'a' })).rejects.toBeInstanceOf(MssError);
  });
});
