import { describe, expect, it } from 'vitest';
import { MssError } from '../../core/errors.js';
import { maskingCodes, maskingOf, withMasking } from '../../dmp/masking.js';
import { NS, parseCx, patientCx, readSubmitObjectsRequest, writeSubmitObjectsRequest, XDS, type MetadataSet } from '../../dmp/ebrim.js';
import { lenientMetadata } from '../fixtures/dmp/lenient-metadata.js';
import { AUTHOR, PATIENT, sampleSubmission } from '../fixtures/dmp/sample.js';

const metadataOf = (count = 2): MetadataSet => {
  const { set, documents } = sampleSubmission(count);
  return { set, documents };
};

const refusal = (fn: () => unknown): MssError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof MssError) return e;
    throw e;
  }
  throw new Error('expected an MssError');
};

describe('ebRIM SubmitObjectsRequest', () => {
  it('writes namespaced, escaped XML that reads back to the same metadata', () => {
    const sub = metadataOf(2);
    const xml = writeSubmitObjectsRequest(sub);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<lcm:SubmitObjectsRequest')).toBe(true);
    expect(xml).toContain(`xmlns:lcm="${NS.lcm}"`);
    expect(xml).toContain(`xmlns:rim="${NS.rim}"`);
    expect(xml).toContain(`xmlns:xsi="${NS.xsi}"`);
    // The title and an event code carry < > & " : escaped, never raw.
    expect(xml).toContain('value="Résultats d&apos;analyses n°1 &lt;urgent&gt; &amp; &quot;à voir&quot;"');
    expect(xml).not.toContain('<urgent>');
    expect(readSubmitObjectsRequest(xml, { xdm: true })).toEqual(sub);
    expect(readSubmitObjectsRequest(Buffer.from(xml), { xdm: true })).toEqual(sub);
  });

  it('writes every identifier, slot and association of the XDS profile', () => {
    const xml = writeSubmitObjectsRequest(metadataOf(2));
    for (const scheme of [XDS.classCode, XDS.typeCode, XDS.formatCode, XDS.confidentialityCode, XDS.practiceSettingCode, XDS.healthcareFacilityTypeCode, XDS.eventCodeList, XDS.author, XDS.ssAuthor, XDS.ssContentTypeCode]) {
      expect(xml).toContain(`classificationScheme="${scheme}"`);
    }
    for (const scheme of [XDS.patientId, XDS.uniqueId, XDS.ssUniqueId, XDS.ssSourceId, XDS.ssPatientId]) expect(xml).toContain(`identificationScheme="${scheme}"`);
    expect(xml).toContain(`objectType="${XDS.documentEntry}"`);
    expect(xml).toContain(`classifiedObject="SubmissionSet01" classificationNode="${XDS.submissionSet}"`);
    for (const slot of ['creationTime', 'hash', 'size', 'languageCode', 'sourcePatientId', 'sourcePatientInfo', 'URI', 'authorPerson', 'authorInstitution', 'authorRole', 'authorSpecialty', 'submissionTime', 'intendedRecipient', 'codingScheme']) {
      expect(xml).toContain(`<rim:Slot name="${slot}">`);
    }
    expect(xml.match(/associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" sourceObject="SubmissionSet01" targetObject="Document0[12]"/g)).toHaveLength(2);
    expect(xml.match(/<rim:Slot name="SubmissionSetStatus">\s*<rim:ValueList>\s*<rim:Value>Original<\/rim:Value>/g)).toHaveLength(2);
    expect(xml).toContain('<rim:Value>279035121518989^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH</rim:Value>');
    // Two confidentiality codes on each document: N and the DMP masking.
    expect(xml.match(new RegExp(`classificationScheme="${XDS.confidentialityCode}"`, 'g'))).toHaveLength(4);
  });

  it('refuses to write incomplete metadata, naming every missing piece', () => {
    const sub = metadataOf(1);
    const d = sub.documents[0]!;
    delete (d as Partial<typeof d>).typeCode;
    d.confidentialityCodes = [];
    d.creationTime = '2024-03-15';
    sub.set.patientId = { id: '', oid: '' };
    const e = refusal(() => writeSubmitObjectsRequest(sub));
    expect(e.code).toBe('XDS_METADATA_INVALID');
    expect(e.status).toBe(422);
    expect(e.details.problems).toEqual([
      'submission set SubmissionSet01: no patient id (INS and its OID)',
      'document Document01: no typeCode',
      'document Document01: no confidentialityCode',
      'document Document01: creationTime "2024-03-15" is not an XDS date-time (YYYY[MM[DD[hh[mm[ss]]]]], UTC)',
    ]);
  });

  it('refuses characters XML cannot carry instead of writing broken XML', () => {
    const sub = metadataOf(1);
    sub.documents[0]!.title = 'bad \u0001 title';
    expect(refusal(() => writeSubmitObjectsRequest(sub)).message).toContain('a title contains a control character XML cannot carry');
  });

  it('reads producers that omit the declaration and namespace declarations, nest or loosen classifications', () => {
    for (const prefix of ['ns3', 'lcm', 'query']) {
      const xml = lenientMetadata({ hash: 'ab'.repeat(20), size: 1234, uri: 'SS000001/DOC0001.XML', prefix });
      const { set, documents } = readSubmitObjectsRequest(xml, { xdm: true });
      expect(set).toEqual({
        entryUuid: 'SS01',
        uniqueId: '1.2.250.1.999.1.1.8.2',
        sourceId: '1.2.250.1.999.1.1',
        patientId: PATIENT,
        contentTypeCode: { code: '04', scheme: '1.2.250.1.213.2.2', display: 'Hospitalisation de jour' },
        submissionTime: '20240116151112',
        authors: [{ person: AUTHOR }],
        title: 'Envoi de résultats',
      });
      expect(documents).toEqual([
        {
          entryUuid: 'DocCR',
          uniqueId: '1.2.250.1.999.1.1.7.99',
          patientId: PATIENT,
          classCode: { code: '10', scheme: '1.2.250.1.213.1.1.4.1', display: 'Compte rendu' },
          typeCode: { code: '11502-2', scheme: '2.16.840.1.113883.6.1' },
          formatCode: { code: 'urn:ihe:lab:xd-lab:2008', scheme: '1.3.6.1.4.1.19376.1.2.3' },
          confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }],
          authors: [{ person: AUTHOR, institution: ['LABO DU PORT', 'SITE NORD'] }],
          creationTime: '20240116151112',
          mimeType: 'text/xml',
          languageCode: 'fr-FR',
          hash: 'ab'.repeat(20),
          size: 1234,
          uri: 'SS000001/DOC0001.XML',
          title: 'CR de biologie',
          sourcePatientInfo: ['PID-5|DUPONT^Jeanne^^^^^L', 'PID-7|19790312'],
        },
      ]);
    }
  });

  it('joins a long URI split into numbered parts', () => {
    const xml = lenientMetadata({ hash: 'ab'.repeat(20), size: 1, uri: 'SUBSET01/DOC0001.XML', splitUri: true });
    expect(readSubmitObjectsRequest(xml).documents[0]!.uri).toBe('SUBSET01/DOC0001.XML');
  });

  it('finds the request inside an envelope (an ITI-41 body)', () => {
    const inner = writeSubmitObjectsRequest(metadataOf(1)).replace(/^<\?xml[^>]*>\n/, '');
    const xml = `<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">${inner}<xdsb:Document id="Document01"/></xdsb:ProvideAndRegisterDocumentSetRequest></s:Body></s:Envelope>`;
    expect(readSubmitObjectsRequest(xml).documents[0]!.uniqueId).toBe('1.2.250.1.999.1.1.7.1');
  });

  it('under XDM rules requires hash, size and URI; without them reads them as not stated', () => {
    const sub = metadataOf(1);
    const d = sub.documents[0]!;
    d.hash = '';
    d.size = -1;
    delete d.uri;
    const xml = writeSubmitObjectsRequest(sub);
    expect(xml).not.toContain('name="hash"');
    expect(xml).not.toContain('name="size"');
    expect(readSubmitObjectsRequest(xml).documents[0]).toMatchObject({ hash: '', size: -1 });
    expect(refusal(() => readSubmitObjectsRequest(xml, { xdm: true })).details.problems).toEqual([
      'document Document01: no hash',
      'document Document01: no size',
      'document Document01: no URI (its file name in the package)',
    ]);
  });

  it('reports every problem of what it reads, and a patient that differs between set and document', () => {
    const xml = writeSubmitObjectsRequest(metadataOf(1))
      .replace(/ExternalIdentifier id="ei1"([^>]*)value="279035121518989\^/, 'ExternalIdentifier id="ei1"$1value="111111111111111^')
      .replace(/nodeRepresentation="11502-2">\s*<rim:Slot name="codingScheme">\s*<rim:ValueList>\s*<rim:Value>2.16.840.1.113883.6.1<\/rim:Value>/, 'nodeRepresentation="11502-2"><rim:Slot name="codingScheme"><rim:ValueList><rim:Value></rim:Value>')
      .replace('<rim:Value>fr-FR</rim:Value>', '<rim:Value> </rim:Value>');
    const e = refusal(() => readSubmitObjectsRequest(xml));
    expect(e.details.problems).toEqual([
      'document Document01: patient 111111111111111 (1.2.250.1.213.1.4.10) is not the submission set\'s 279035121518989 (1.2.250.1.213.1.4.10)',
      'document Document01: typeCode 11502-2 has no coding scheme',
      'document Document01: no languageCode',
    ]);
    expect(e.message).toContain('cannot be used: document Document01: patient 111111111111111');
  });

  it('refuses a DOCTYPE (XXE, entity bombs) before parsing, and undeclared entities', () => {
    const xxe = `<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n${writeSubmitObjectsRequest(metadataOf(1)).replace(/^<\?xml[^>]*>\n/, '').replace('Compte rendu', '&x;')}`;
    const e = refusal(() => readSubmitObjectsRequest(xxe));
    expect(e.code).toBe('XDS_METADATA_INVALID');
    expect(e.message).toContain('DOCTYPE');
    expect(e.message).not.toContain('root:');
    const laughs = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><r>&lol2;</r>`;
    expect(refusal(() => readSubmitObjectsRequest(laughs)).message).toContain('DOCTYPE');
    const undeclared = writeSubmitObjectsRequest(metadataOf(1)).replace('Compte rendu', '&x;');
    expect(refusal(() => readSubmitObjectsRequest(undeclared)).message).toContain('undeclared entity &x;');
  });

  it('refuses malformed XML, a missing request and a missing submission set with a reason', () => {
    expect(refusal(() => readSubmitObjectsRequest('<lcm:SubmitObjectsRequest><RegistryObjectList></lcm:SubmitObjectsRequest>')).message).toMatch(/not well-formed XML \(line 1, column \d+: /);
    expect(refusal(() => readSubmitObjectsRequest('<a/>')).message).toContain('no SubmitObjectsRequest element');
    expect(refusal(() => readSubmitObjectsRequest('<SubmitObjectsRequest><RegistryObjectList/></SubmitObjectsRequest>')).message).toContain('no submission set');
  });

  it('decodes the encoding the XML declaration names', () => {
    const xml = writeSubmitObjectsRequest(metadataOf(1)).replace('encoding="UTF-8"', 'encoding="ISO-8859-1"');
    const latin1 = Buffer.from(xml.replace(/[^\x00-\xff]/g, '?'), 'latin1');
    expect(readSubmitObjectsRequest(latin1).set.title).toBe('Résultats');
  });

  it('reads and writes CX patient ids', () => {
    expect(patientCx(PATIENT)).toBe('279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH');
    expect(parseCx('279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH')).toEqual(PATIENT);
    expect(parseCx('279035121518989^^^&1.2.250.1.213.1.4.10&ISO')).toEqual(PATIENT);
    expect(parseCx('279035121518989')).toBeNull();
    expect(parseCx('^^^&1.2.250.1.213.1.4.10&ISO^NH')).toBeNull();
  });
});

describe('DMP masking', () => {
  it('maps each choice to HL7 N plus its TRE_A07 code', () => {
    expect(maskingCodes('normal')).toEqual([{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }]);
    expect(maskingCodes('masque-ps').map((c) => `${c.scheme}|${c.code}`)).toEqual(['2.16.840.1.113883.5.25|N', '1.2.250.1.213.1.1.4.13|MASQUE_PS']);
    expect(maskingCodes('invisible-patient').map((c) => c.code)).toEqual(['N', 'INVISIBLE_PATIENT']);
    expect(maskingCodes('invisible-representants-legaux').map((c) => c.code)).toEqual(['N', 'INVISIBLE_REPRESENTANTS_LEGAUX']);
    expect(maskingCodes(['invisible-patient', 'masque-ps']).map((c) => c.code)).toEqual(['N', 'MASQUE_PS', 'INVISIBLE_PATIENT']);
  });

  it('reads the choices back and replaces them on a document', () => {
    expect(maskingOf(maskingCodes(['masque-ps', 'invisible-representants-legaux']))).toEqual(['masque-ps', 'invisible-representants-legaux']);
    expect(maskingOf([{ code: 'N', scheme: '2.16.840.1.113883.5.25' }])).toEqual(['normal']);
    const restricted = [{ code: 'R', scheme: '2.16.840.1.113883.5.25' }, { code: 'MASQUE_PS', scheme: '1.2.250.1.213.1.1.4.13' }];
    expect(withMasking(restricted, 'invisible-patient').map((c) => c.code)).toEqual(['R', 'INVISIBLE_PATIENT']);
    expect(withMasking([], 'normal').map((c) => c.code)).toEqual(['N']);
  });
});
