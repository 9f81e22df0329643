import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCdaDocument, looksLikeCda, readCdaHeader, tsToDtm, uuidOid } from '../../dmp/cda.js';

const fixture = readFileSync(new URL('../fixtures/dmp/cda-lab-result.xml', import.meta.url));

describe('CDA header', () => {
  it('reads the XDS metadata a CDA R2 header states', () => {
    const h = readCdaHeader(fixture);
    expect(h).toEqual({
      hash: createHash('sha1').update(fixture).digest('hex'),
      size: fixture.length,
      mimeType: 'text/xml',
      uniqueId: '1.2.250.1.999.1.1.7^CR-2024-0042',
      typeCode: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
      title: "Compte rendu d'examens biologiques & bilan",
      // 09:30 at +01:00 is 08:30 UTC.
      creationTime: '20240315083000',
      confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }],
      languageCode: 'fr-FR',
      // The INS, not the local IPP listed first.
      patientId: { id: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
      // The birth name (BR), not the used name (SP).
      patient: { family: 'DUPONT', given: 'Jeanne', birthDate: '19790312', gender: 'F' },
      sourcePatientInfo: ['PID-5|DUPONT^Jeanne^^^^^L', 'PID-7|19790312', 'PID-8|F'],
      authors: [
        {
          person: '810002909371^MARTIN^Claire^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS',
          institution: ['LABO DU PORT^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^331234567800017'],
          specialty: ['SM40^Biologie médicale^1.2.250.1.213.2.1.1.1'],
        },
      ],
      serviceStartTime: '20240314060000',
      serviceStopTime: '20240315070000',
      practiceSettingCode: { code: 'AMBULATOIRE', scheme: '1.2.250.1.213.1.1.4.9', display: 'Ambulatoire' },
      healthcareFacilityTypeCode: { code: 'SA25', scheme: '1.2.250.1.71.4.2.4', display: 'Laboratoire de biologie médicale' },
    });
  });

  it('builds a CDA document whose header reads back', () => {
    const bytes = buildCdaDocument({
      patient: { ins: '279035121518989', family: 'DUPONT', given: 'Jeanne', birthDate: '19790312', gender: 'F' },
      author: { rpps: '10002909371', family: 'MARTIN', given: 'Claire', organization: { id: '331234567800017', name: 'LABO <DU> PORT' } },
      code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
      title: 'Glycémie & HbA1c',
      text: 'Glycémie à jeun : 0,92 g/L\nHbA1c : 5,6 %',
      id: { root: '1.2.250.1.999.1.1.7', extension: 'X1' },
      effectiveTime: new Date('2024-03-15T08:30:00Z'),
    });
    expect(looksLikeCda(bytes)).toBe(true);
    const h = readCdaHeader(bytes);
    expect(h).toMatchObject({
      uniqueId: '1.2.250.1.999.1.1.7^X1',
      typeCode: { code: '11502-2', scheme: '2.16.840.1.113883.6.1' },
      title: 'Glycémie & HbA1c',
      creationTime: '20240315083000',
      confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25' }],
      languageCode: 'fr-FR',
      patientId: { id: '279035121518989', oid: '1.2.250.1.213.1.4.10' },
      patient: { family: 'DUPONT', given: 'Jeanne', birthDate: '19790312', gender: 'F' },
      authors: [{ person: '810002909371^MARTIN^Claire^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS', institution: ['LABO <DU> PORT^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^331234567800017'] }],
      size: bytes.length,
    });
    expect(bytes.toString()).toContain('<paragraph>HbA1c : 5,6 %</paragraph>');
    expect(bytes.toString()).toContain('LABO &lt;DU&gt; PORT');
  });

  it('gives each built document its own id when none is given', () => {
    const input = {
      patient: { ins: '279035121518989', family: 'DUPONT', given: 'Jeanne' },
      author: { rpps: '810002909371', family: 'MARTIN', given: 'Claire' },
      code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1' },
      title: 't',
      text: 'x',
    };
    const a = readCdaHeader(buildCdaDocument(input)).uniqueId!;
    const b = readCdaHeader(buildCdaDocument(input)).uniqueId!;
    expect(a).toMatch(/^2\.25\.\d{10,}$/);
    expect(a).not.toBe(b);
    expect(uuidOid()).toMatch(/^2\.25\.[1-9]\d*$/);
  });

  it('leaves out what the header does not state', () => {
    const h = readCdaHeader(Buffer.from('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Seul</title></ClinicalDocument>'));
    expect(h).toEqual({ hash: expect.stringMatching(/^[0-9a-f]{40}$/), size: 79, mimeType: 'text/xml', patient: {}, title: 'Seul' });
  });

  // Refusals of hostile documents (XXE, other roots, malformed XML…) are cases of the
  // hostile corpus: tests/hostile/cases/xdm.ts.
  it('tells a CDA document from other XML', () => {
    expect(looksLikeCda(fixture)).toBe(true);
    expect(looksLikeCda(Buffer.from('<?xml version="1.0"?><html/>'))).toBe(false);
  });

  it('converts HL7 times to XDS UTC date-times', () => {
    expect(tsToDtm('20240315093000+0100')).toBe('20240315083000');
    expect(tsToDtm('20240101003000+0200')).toBe('20231231223000');
    expect(tsToDtm('202403150930-0500')).toBe('202403151430');
    expect(tsToDtm('20240315093000.123+0000')).toBe('20240315093000');
    expect(tsToDtm('20240315')).toBe('20240315');
    expect(tsToDtm('2024031')).toBeUndefined();
    expect(tsToDtm('2024-03-15')).toBeUndefined();
  });
});
