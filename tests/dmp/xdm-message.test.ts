import { readFileSync } from 'node:fs';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { SendMailOptions } from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { buildCdaDocument } from '../../dmp/cda.js';
import { composeXdmMessage, displaySubject, documentsOfMessage, patientOfSubmission, submissionFromCda, xdmSubject } from '../../dmp/documents.js';
import { buildXdm, packageSubmission } from '../../dmp/xdm/build.js';
import { xdmLimits } from '../../dmp/xdm/read.js';
import { rawZip } from '../fixtures/dmp/rawzip.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';

const limits = xdmLimits(loadConfig({ env: {}, cwd: '/tmp' }));
const cdaFixture = readFileSync(new URL('../fixtures/dmp/cda-lab-result.xml', import.meta.url));

const compile = (o: SendMailOptions): Promise<Buffer> => new MailComposer(o).compile().build();

const labCda = () =>
  buildCdaDocument({
    patient: { ins: '279035121518989', family: 'Dupont-Hélène', given: 'Jérôme', birthDate: '19790312', gender: 'M' },
    author: { rpps: '10002909371', family: 'MARTIN', given: 'Claire', organization: { id: '331234567800017', name: 'LABO DU PORT' } },
    code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
    title: 'Bilan sanguin',
    text: 'Glycémie à jeun : 0,92 g/L',
    effectiveTime: new Date('2024-03-15T08:30:00Z'),
  });

describe('messages carrying documents', () => {
  it('composes an XDM message from a CDA document, and reads the same submission back from it', async () => {
    const cda = labCda();
    const sub = submissionFromCda(cda, { sourceId: '1.2.250.1.999.1.1', masking: 'masque-ps', submissionTime: new Date('2024-03-15T09:00:00Z') });
    expect(sub.documents[0]).toMatchObject({
      patientId: { id: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
      classCode: { code: '10' },
      typeCode: { code: '11502-2' },
      confidentialityCodes: [{ code: 'N' }, { code: 'MASQUE_PS', scheme: '1.2.250.1.213.1.1.4.13' }],
      creationTime: '20240315083000',
      languageCode: 'fr-FR',
    });
    expect(sub.set.submissionTime).toBe('20240315090000');
    const opts = await composeXdmMessage({ from: 'labo@labo.mssante.localhost', to: 'jean.dupont@medecin.mssante.localhost', text: 'Résultats ci-joints.', submission: sub, nil: 'MSS-OPEN/0.1' });
    expect(opts.subject).toBe("XDM/1.0/DDM+CR d'examens biologiques DUPONT-HELENE Jerome 12/03/1979");
    expect(opts.headers).toEqual({ 'X-MSS-INS': 'O', 'X-MSS-CODECDA': '11502-2', 'X-MSS-NIL': 'MSS-OPEN/0.1' });
    const raw = await compile(opts);
    const head = raw.toString('latin1').split('\r\n\r\n')[0]!;
    expect(head).toMatch(/^X-MSS-INS: O$/m);
    expect(head).toMatch(/^X-MSS-CODECDA: 11502-2$/m);
    expect(head).toMatch(/^X-MSS-NIL: MSS-OPEN\/0\.1$/m);
    expect(raw.toString('latin1')).toMatch(/Content-Type: application\/zip; name=IHE_XDM\.zip/);

    const docs = await documentsOfMessage(raw, limits);
    expect(docs).toHaveLength(1);
    expect(docs[0]).toMatchObject({ filename: 'IHE_XDM.zip', contentType: 'application/zip', kind: 'xdm' });
    expect(docs[0]!.error).toBeUndefined();
    const expected = packageSubmission(sub);
    expect(docs[0]!.submission!.set).toEqual(expected.set);
    expect(docs[0]!.submission!.documents).toEqual(expected.documents);
    expect(docs[0]!.submission!.contents.get(sub.documents[0]!.entryUuid)).toEqual(cda);
  });

  it('lists every document attachment, a hostile one as an error that leaves the others intact', async () => {
    const good = await buildXdm(sampleSubmission(1));
    const slip = rawZip([{ name: 'IHE_XDM/../../evil', data: Buffer.from('x') }]);
    const xxe = Buffer.from('<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>');
    const plainZip = rawZip([{ name: 'photo.jpg', data: Buffer.from('jpeg') }]);
    const raw = await compile({
      from: 'a@x.mssante.localhost',
      to: 'b@y.mssante.localhost',
      subject: 'Documents',
      text: 'see attached',
      attachments: [
        { filename: 'IHE_XDM.zip', content: good, contentType: 'application/zip' },
        { filename: 'IHE_XDM.zip', content: slip, contentType: 'application/zip' },
        { filename: 'export.zip', content: good, contentType: 'application/octet-stream' },
        { filename: 'photos.zip', content: plainZip, contentType: 'application/zip' },
        { filename: 'cr.xml', content: cdaFixture, contentType: 'text/xml' },
        { filename: 'evil.xml', content: xxe, contentType: 'application/xml' },
        { filename: 'note.xml', content: Buffer.from('<note>hello</note>'), contentType: 'text/xml' },
        { filename: 'cr.pdf', content: Buffer.from('%PDF-1.4'), contentType: 'application/pdf' },
      ],
    });
    const docs = await documentsOfMessage(raw, limits);
    expect(docs.map((d) => [d.filename, d.kind, d.error ? 'error' : 'ok'])).toEqual([
      ['IHE_XDM.zip', 'xdm', 'ok'],
      ['IHE_XDM.zip', 'xdm', 'error'],
      ['export.zip', 'xdm', 'ok'],
      ['cr.xml', 'cda', 'ok'],
      ['evil.xml', 'cda', 'error'],
    ]);
    expect(docs[1]).toEqual({ filename: 'IHE_XDM.zip', contentType: 'application/zip', kind: 'xdm', error: 'the IHE_XDM archive is refused: entry "IHE_XDM/../../evil" has a ".." path segment (zip-slip)', errorCode: 'XDM_REFUSED' });
    expect(docs[4]!.errorCode).toBe('CDA_INVALID');
    expect(docs[4]!.error).toContain('DOCTYPE');
    expect(docs[4]!.entries).toBeUndefined();
    expect(docs[3]!.entries![0]).toMatchObject({ typeCode: { code: '11502-2' }, patientId: { id: '279035121518989' } });
    expect(docs[3]!.content).toEqual(cdaFixture);
  });

  it('writes and reads the subject convention', () => {
    expect(xdmSubject({ label: 'Lettre de liaison à la sortie d\'un établissement de santé', family: 'Vial', given: 'Paul', birthDate: '19781126' })).toBe(
      "XDM/1.0/DDM+Lettre de liaison a la sortie d'un etabl VIAL Paul 26/11/1978",
    );
    expect(xdmSubject({ label: '2 documents' })).toBe('XDM/1.0/DDM+2 documents');
    expect(displaySubject('XDM/1.0/DDM+2 documents VIAL Paul 26/11/1978')).toBe('2 documents VIAL Paul 26/11/1978');
    expect(displaySubject('[KO Intégration système !][E12] XDM/1.0/DDM+CR VIAL Paul')).toBe('[KO Intégration système !][E12] CR VIAL Paul');
    expect(displaySubject('Bonjour docteur')).toBe('Bonjour docteur');
    expect(patientOfSubmission(sampleSubmission(1))).toEqual({ family: 'DUPONT', given: 'Jeanne', birthDate: '19790312' });
  });

  it('uses the label alone, "N documents" and no CODECDA for non-CDA documents when that is all it knows', async () => {
    const sub = sampleSubmission(2);
    for (const d of sub.documents) delete d.sourcePatientInfo;
    let opts = await composeXdmMessage({ from: 'a@x', to: 'b@y', text: 't', submission: sub, nil: 'N1' });
    expect(opts.subject).toBe('2 documents');
    expect(opts.headers).toMatchObject({ 'X-MSS-CODECDA': '11502-2', 'X-MSS-INS': 'O' });
    for (const d of sub.documents) d.mimeType = 'application/pdf';
    sub.set.patientId = sub.documents[0]!.patientId = sub.documents[1]!.patientId = { id: 'IPP1', oid: '1.2.250.1.999.1.1.2' };
    opts = await composeXdmMessage({ from: 'a@x', to: 'b@y', text: 't', submission: sub, nil: 'N1' });
    expect(opts.headers).toEqual({ 'X-MSS-INS': 'N', 'X-MSS-NIL': 'N1' });
  });

  it('refuses to make a submission from a CDA header that lacks the patient', () => {
    const bare = Buffer.from('<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/><code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/><effectiveTime value="20240315"/></ClinicalDocument>');
    expect(() => submissionFromCda(bare, { sourceId: '1.2.3' })).toThrow('the CDA document cannot be read: its header has no patientId');
  });
});
