// Property-based fuzzing of the CDA header reader (dmp/cda.ts) and the IHE_XDM archive
// reader (dmp/xdm/read.ts): documents and ZIPs that arrive by mail from anyone in the trust
// space. For random, mutated and generated documents, and archives with hostile names,
// sizes, modes and bytes:
//   - nothing escapes but MssError CDA_INVALID / XDM_REFUSED;
//   - what the builders wrote reads back the same (CDA header fields; an XDM package's set,
//     documents and bytes);
//   - memory stays bounded.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorXcn, buildCdaDocument, readCdaHeader, RPPS_OID, STRUCTURE_OID, type CdaInput } from '../../dmp/cda.js';
import { buildXdm } from '../../dmp/xdm/build.js';
import { readXdm } from '../../dmp/xdm/read.js';
import { rawZip } from '../fixtures/dmp/rawzip.js';
import { sampleCda, sampleSubmission } from '../fixtures/dmp/sample.js';
import { coded, contents, LIMITS, metadata, minimalXdm, oid, patient, RAW_WHITESPACE_IN_ATTRIBUTE, refusedWith, submissionOf, val } from './dmp-gen.js';
import { check, checkAsync, MAX_RETAINED_GROWTH, mutated, retainedGrowth, soup } from './harness.js';
import { writeXml, XML_TOKENS, xmlText, xmlTree } from './xml-gen.js';

// ---------------------------------------------------------------------------------------
// CDA.

const cdaInput: fc.Arbitrary<CdaInput> = fc.record({
  patient: fc.record({ ins: patient.map((p) => p.id), family: val, given: val, birthDate: fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10).replace(/-/g, '')), gender: fc.constantFrom('M' as const, 'F' as const, 'U' as const) }),
  author: fc.record({ rpps: fc.stringMatching(/^\d{11}$/), family: val, given: val, organization: fc.record({ id: val, name: val }), specialty: coded }),
  code: coded,
  title: val,
  text: xmlText,
  id: fc.record({ root: oid, extension: val }),
  effectiveTime: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true }),
  confidentiality: coded,
  languageCode: val,
}).map((i) => structuredClone(i));

const CDA_NAMES = ['ClinicalDocument', 'id', 'code', 'title', 'effectiveTime', 'confidentialityCode', 'languageCode', 'recordTarget', 'patientRole', 'patient', 'name', 'given', 'family', 'birthTime', 'author', 'assignedAuthor', 'assignedPerson', 'representedOrganization', 'documentationOf', 'serviceEvent', 'component'];
const CDA_ATTRS = ['root', 'extension', 'code', 'codeSystem', 'displayName', 'value', 'qualifier', 'xmlns'];
const SAMPLE_CDA = [sampleCda(1), buildCdaDocument({ patient: { ins: '279035121518989', family: 'DUPONT', given: 'Jeanne' }, author: { rpps: '10002909371', family: 'MARTIN', given: 'Claire' }, code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1' }, title: 'CR', text: 'ok' })];
const HOSTILE_CDA = fc.oneof(
  soup([...XML_TOKENS, '<ClinicalDocument xmlns="urn:hl7-org:v3">', '</ClinicalDocument>', 'value="20240101"', '+0100'], 40),
  mutated(fc.constantFrom(...SAMPLE_CDA), XML_TOKENS),
  xmlTree(CDA_NAMES, CDA_ATTRS).map((t) => Buffer.from(writeXml(t), 'utf8')),
);

describe('CDA header', () => {
  it('reads back what the builder wrote (patient, author, codes, times, ids); no raw whitespace in attributes', () => {
    check(cdaInput, (input) => {
      const bytes = buildCdaDocument(input);
      assert.doesNotMatch(bytes.toString('utf8'), RAW_WHITESPACE_IN_ATTRIBUTE);
      const h = readCdaHeader(bytes);
      const { patient: p, author: a } = input;
      assert.deepEqual(
        { uniqueId: h.uniqueId, typeCode: h.typeCode, title: h.title, conf: h.confidentialityCodes, lang: h.languageCode, patientId: h.patientId, patient: h.patient, authors: h.authors, creationTime: h.creationTime, hash: h.hash, size: h.size },
        {
          uniqueId: `${input.id!.root}^${input.id!.extension}`,
          typeCode: input.code,
          title: input.title,
          conf: [input.confidentiality],
          lang: input.languageCode,
          patientId: { id: p.ins, oid: '1.2.250.1.213.1.4.10' },
          patient: { family: p.family, given: p.given, birthDate: p.birthDate, gender: p.gender },
          authors: [{ person: authorXcn(`8${a.rpps}`, a.family, a.given, RPPS_OID), institution: [`${a.organization!.name}^^^^^&${STRUCTURE_OID}&ISO^IDNST^^^${a.organization!.id}`], specialty: [`${a.specialty!.code}^${a.specialty!.display}^${a.specialty!.scheme}`] }],
          creationTime: input.effectiveTime!.toISOString().replace(/[-:T]/g, '').slice(0, 14),
          hash: createHash('sha1').update(bytes).digest('hex'),
          size: bytes.length,
        },
      );
    });
  });

  it('reads a header or refuses with CDA_INVALID, nothing else; memory bounded', async () => {
    const grown = await retainedGrowth(() =>
      check(HOSTILE_CDA, (bytes) => {
        try {
          const h = readCdaHeader(bytes);
          assert.equal(h.size, bytes.length);
          if (h.creationTime !== undefined) assert.match(h.creationTime, /^\d{4,14}$/);
        } catch (e) {
          refusedWith('CDA_INVALID')(e);
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

// ---------------------------------------------------------------------------------------
// IHE_XDM archives.

const ENTRY_NAMES = ['README.TXT', 'INDEX.HTM', 'IHE_XDM/', 'IHE_XDM/SUBSET01/', 'IHE_XDM/SUBSET01/METADATA.XML', 'IHE_XDM/SUBSET02/METADATA.XML', 'IHE_XDM/SUBSET01/DOC0001.XML', 'ihe_xdm/subset01/doc0001.xml', '../evil', '/abs', 'C:\\x', 'a\\b', 'IHE_XDM/SUBSET01/../../x', 'IHE_XDM/\u0000', ''];

describe('IHE_XDM archives', () => {
  // 1,000 runs: each builds and reads a whole ZIP (~6 ms of CPU); the metadata inside has its
  // own 10,000-run round trip above, the reader its 10,000 hostile archives below.
  it('reads back the package it built: the set, the documents (with hash, size, URI), their bytes', async () => {
    await checkAsync(fc.tuple(metadata({ xdm: false, docs: 1 }), contents), async ([m, bytes]) => {
      const sub = submissionOf(m, bytes);
      const zip = await buildXdm(sub);
      const read = await readXdm(zip, LIMITS);
      assert.deepEqual(read.set, sub.set);
      assert.deepEqual(
        read.documents.map(({ uri: _u, hash: _h, size: _s, ...d }) => d),
        sub.documents.map(({ uri: _u, hash: _h, size: _s, ...d }) => d),
      );
      for (const d of read.documents) {
        const b = sub.contents.get(d.entryUuid)!;
        assert.deepEqual(read.contents.get(d.entryUuid), b);
        assert.equal(d.size, b.length);
        assert.equal(d.hash, createHash('sha1').update(b).digest('hex'));
      }
    }, 1_000);
  });

  it('reads an archive or refuses it with XDM_REFUSED, nothing else, whatever the bytes, names and sizes; memory bounded', async () => {
    const { meta, doc, zip } = minimalXdm();
    assert.equal((await readXdm(zip, LIMITS)).documents.length, 1);
    const raw = fc
      .array(
        fc.record({
          name: fc.oneof(fc.constantFrom(...ENTRY_NAMES), fc.string({ maxLength: 12 })),
          data: fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), fc.constant(meta), fc.constant(doc), fc.constant(Buffer.alloc(100_000))),
          deflate: fc.boolean(),
          declaredSize: fc.option(fc.nat({ max: 1 << 20 }), { nil: undefined }),
          unixMode: fc.option(fc.constantFrom(0o120777, 0o100644, 0o40755), { nil: undefined }),
          flags: fc.option(fc.constantFrom(0, 1, 8), { nil: undefined }),
        }),
        { maxLength: 5 },
      )
      .map((entries) => rawZip(entries));
    const grown = await retainedGrowth(() =>
      checkAsync(fc.oneof(raw, mutated(fc.constant(zip), ['PK\x03\x04', 'PK\x01\x02', 'PK\x05\x06', '\xff\xff\xff\xff', '\0\0'])), async (bytes) => {
        try {
          const s = await readXdm(bytes, LIMITS);
          for (const d of s.documents) assert.equal(s.contents.get(d.entryUuid)?.length, d.size);
        } catch (e) {
          refusedWith('XDM_REFUSED')(e);
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

describe('IHE_XDM: counterexamples found by fuzzing (regressions)', () => {
  it('an archive whose local file header is damaged is refused (XDM_REFUSED), not an error of yauzl', async () => {
    const zip = Buffer.from(minimalXdm().zip);
    zip[0] = 0;
    await expect(readXdm(zip, LIMITS)).rejects.toMatchObject({ code: 'XDM_REFUSED', message: expect.stringMatching(/cannot be read \(invalid local file header signature/) });
  });

  it('a package dated before 1980 (before what a ZIP entry can carry) is built, not left hanging', async () => {
    const sub = sampleSubmission(1);
    sub.set.submissionTime = '19691231235900';
    expect((await readXdm(await buildXdm(sub), LIMITS)).set.submissionTime).toBe('19691231235900');
  });
});
