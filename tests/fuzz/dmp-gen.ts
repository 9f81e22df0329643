// Generators shared by the DMP fuzz tests (ebrim, cda-xdm, iti41): metadata built from short
// values (the readers cost ~0.2 µs a character and read 10,000 documents), the smallest
// valid IHE_XDM package, and the refusal checks.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { isMssError } from '../../core/errors.js';
import { writeSubmitObjectsRequest, type MetadataSet } from '../../dmp/ebrim.js';
import type { Author, Coded, DocumentEntry, Submission, SubmissionSet } from '../../dmp/types.js';
import type { XdmLimits } from '../../dmp/xdm/read.js';
import { rawZip } from '../fixtures/dmp/rawzip.js';
import { sampleCda } from '../fixtures/dmp/sample.js';
import { xmlTextOf } from './xml-gen.js';

export const refusedWith = (code: string) => (e: unknown) => {
  if (!isMssError(e) || e.code !== code) throw e;
};

/** A literal \t, \n or \r inside an attribute value: a conformant reader turns it into a space. */
export const RAW_WHITESPACE_IN_ATTRIBUTE = /\s[\w:.-]+="[^"<]*[\t\n\r][^"<]*"/;

// Short values: the readers cost ~0.2 µs a character, and 10,000 documents are read.
export const val = xmlTextOf(8).map((s) => s.trim()).filter((s) => s.length > 0);
export const oid = fc.array(fc.nat({ max: 99_999 }), { minLength: 1, maxLength: 6 }).map((n) => `1.2.${n.join('.')}`);
export const dtm = fc.tuple(fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true }), fc.constantFrom(4, 6, 8, 10, 12, 14)).map(([d, n]) => d.toISOString().replace(/[-:T]/g, '').slice(0, n));
export const coded: fc.Arbitrary<Coded> = fc.record({ code: val, scheme: fc.oneof(oid, val), display: val });
export const list = fc.array(val, { minLength: 1, maxLength: 2 });
export const author: fc.Arbitrary<Author> = fc.record({ person: val, institution: list, role: list, specialty: list }, { requiredKeys: ['person'] });
export const patient = fc.record({ id: fc.string({ unit: fc.constantFrom(...'0123456789ABCabc-.'), minLength: 1, maxLength: 20 }), oid });

/** How the reader gives a hash and size that ITI-41 metadata does not state. */
export const UNSTATED = { hash: '', size: -1 };

/** Metadata of 1 to `docs` documents, every optional field sometimes present. Small: parsing costs ~0.2 µs a character. */
export function metadata(opts: { xdm: boolean; docs?: number }): fc.Arbitrary<MetadataSet> {
  const doc = (p: { id: string; oid: string }) =>
    fc.record(
      {
        uniqueId: val,
        classCode: coded,
        typeCode: coded,
        formatCode: coded,
        confidentialityCodes: fc.array(coded, { minLength: 1, maxLength: 2 }),
        practiceSettingCode: coded,
        healthcareFacilityTypeCode: coded,
        eventCodes: fc.array(coded, { minLength: 1, maxLength: 1 }),
        authors: fc.array(author, { maxLength: 1 }),
        creationTime: dtm,
        serviceStartTime: dtm,
        serviceStopTime: dtm,
        title: val,
        mimeType: val,
        languageCode: fc.oneof(fc.constant('fr-FR'), val),
        hash: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex')),
        size: fc.nat(),
        uri: val,
        sourcePatientInfo: list,
      },
      { requiredKeys: ['uniqueId', 'classCode', 'typeCode', 'formatCode', 'confidentialityCodes', 'authors', 'creationTime', 'mimeType', 'languageCode', ...(opts.xdm ? (['hash', 'size', 'uri'] as const) : [])] },
    ).map((d) => ({ ...UNSTATED, patientId: p, ...d }) as Omit<DocumentEntry, 'entryUuid'>);
  return patient.chain((p) =>
    fc
      .tuple(
        fc.record(
          { uniqueId: val, sourceId: val, contentTypeCode: coded, submissionTime: dtm, authors: fc.array(author, { maxLength: 1 }), title: val, intendedRecipients: list },
          { requiredKeys: ['uniqueId', 'sourceId', 'contentTypeCode', 'submissionTime', 'authors'] },
        ),
        fc.array(doc(p), { minLength: 1, maxLength: opts.docs ?? 2 }),
        fc.uniqueArray(val, { minLength: 3, maxLength: 3 }),
      )
      // structuredClone: plain objects (fast-check builds some records without a prototype).
      .map(([s, docs, ids]) =>
        structuredClone({
          set: { entryUuid: ids[0]!, patientId: p, ...s } as SubmissionSet,
          documents: docs.map((d, i) => ({ entryUuid: ids[i + 1]!, ...d })),
        }),
      ),
  );
}

export const LIMITS: XdmLimits = { maxEntries: 20, maxEntrySize: 64 * 1024, maxTotalSize: 256 * 1024, maxRatio: 100 };

export const contents = fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 3 });

export function submissionOf(m: MetadataSet, bytes: Uint8Array[]): Submission {
  const documents = m.documents.slice(0, bytes.length);
  const map = new Map<string, Buffer>();
  documents.forEach((d, i) => map.set(d.entryUuid, Buffer.from(bytes[i % bytes.length]!)));
  return { set: m.set, documents, contents: map };
}

/** The smallest valid package: one document with only what XDM requires (reading costs grow with size). */
export function minimalXdm(): { meta: Buffer; doc: Buffer; zip: Buffer } {
  const doc = sampleCda(1);
  const coded = { code: 'c', scheme: '1.2.3', display: 'c' };
  const patientId = { id: '1', oid: '1.2.250.1.213.1.4.10' };
  const meta = Buffer.from(
    writeSubmitObjectsRequest({
      set: { entryUuid: 'S', uniqueId: '1.2.1', sourceId: '1.2.2', patientId, contentTypeCode: coded, submissionTime: '2024', authors: [] },
      documents: [{ entryUuid: 'D', uniqueId: '1.2.3', patientId, classCode: coded, typeCode: coded, formatCode: coded, confidentialityCodes: [coded], authors: [], creationTime: '2024', mimeType: 'text/xml', languageCode: 'fr-FR', hash: createHash('sha1').update(doc).digest('hex'), size: doc.length, uri: 'DOC0001.XML' }],
    }),
  );
  return { meta, doc, zip: rawZip([{ name: 'IHE_XDM/SUBSET01/METADATA.XML', data: meta, deflate: true }, { name: 'IHE_XDM/SUBSET01/DOC0001.XML', data: doc }]) };
}
