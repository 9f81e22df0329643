// Property-based fuzzing of the XML guard and accessors (dmp/safe-xml.ts) and the ebRIM
// SubmitObjectsRequest (dmp/ebrim.ts: METADATA.XML of an IHE_XDM package, the metadata of an
// ITI-41 request), which arrive by mail or over HTTP from outside. For random XML, mutated
// real documents and grammar-generated trees and metadata:
//   - nothing escapes but XmlRefused / MssError XDS_METADATA_INVALID;
//   - what the writer writes the reader reads back the same, and the writer escapes what a
//     conformant XML reader would normalise (line breaks, tabs);
//   - memory stays bounded; pathological inputs are read in linear time.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readSubmitObjectsRequest, submissionProblems, writeSubmitObjectsRequest, XDS } from '../../dmp/ebrim.js';
import { decodeXml, escapeXml, parseXml, unescapeXml, XmlRefused } from '../../dmp/safe-xml.js';
import { lenientMetadata } from '../fixtures/dmp/lenient-metadata.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';
import { metadata, minimalXdm, RAW_WHITESPACE_IN_ATTRIBUTE, refusedWith } from './dmp-gen.js';
import { check, MAX_RETAINED_GROWTH, mutated, retainedGrowth, soup } from './harness.js';
import { pathologicalXml, writeXml, XML_TOKENS, xmlTree } from './xml-gen.js';

// ---------------------------------------------------------------------------------------
// safe-xml.

describe('dmp/safe-xml on hostile input', () => {
  it('escape then unescape gives the text back; anything else is XmlRefused, never another error', () => {
    check(fc.tuple(fc.string({ unit: 'binary', maxLength: 40 }), soup(XML_TOKENS, 20)), ([s, raw]) => {
      let escaped: string | undefined;
      try {
        escaped = escapeXml(s);
      } catch (e) {
        assert.ok(e instanceof XmlRefused);
        assert.match(s, /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u);
      }
      if (escaped !== undefined) {
        assert.equal(unescapeXml(escaped), s);
        assert.doesNotMatch(escaped, /[<>"'\t\n\r]|&(?!(amp|lt|gt|quot|apos|#\d+);)/);
      }
      for (const text of [raw.toString('latin1'), raw.toString('utf8')]) {
        try {
          unescapeXml(text);
        } catch (e) {
          assert.ok(e instanceof XmlRefused);
        }
      }
      try {
        decodeXml(raw);
        parseXml(decodeXml(raw), new Set(['a']));
      } catch (e) {
        assert.ok(e instanceof XmlRefused);
      }
    });
  });

  it('parses or refuses pathological inputs (2 MB runs) in linear time, with a short one-line reason', () => {
    for (const xml of pathologicalXml()) {
      try {
        parseXml(xml, new Set());
      } catch (e) {
        assert.ok(e instanceof XmlRefused);
        assert.ok(e.message.length < 400 && !e.message.includes('\n'), e.message.slice(0, 500));
      }
    }
  });
});

describe('ebRIM SubmitObjectsRequest: generated metadata', () => {
  it('what the writer writes, the reader reads back the same (both XDM and ITI-41 rules); no raw whitespace in attributes', () => {
    check(fc.tuple(fc.boolean(), fc.boolean()).chain(([xdm, bytes]) => metadata({ xdm, docs: 1 }).map((m) => [xdm, bytes, m] as const)), ([xdm, bytes, m]) => {
      const xml = writeSubmitObjectsRequest(m);
      assert.doesNotMatch(xml, RAW_WHITESPACE_IN_ATTRIBUTE);
      assert.deepEqual(readSubmitObjectsRequest(bytes ? Buffer.from(xml) : xml, { xdm }), m);
    });
  });
});

// ---------------------------------------------------------------------------------------
// ebRIM: hostile documents.

const EBRIM_NAMES = ['SubmitObjectsRequest', 'RegistryObjectList', 'RegistryPackage', 'ExtrinsicObject', 'Classification', 'ExternalIdentifier', 'Slot', 'ValueList', 'Value', 'Name', 'LocalizedString', 'Association', 'rim:Slot', 'lcm:SubmitObjectsRequest'];
const EBRIM_ATTRS = ['id', 'name', 'value', 'classificationScheme', 'classifiedObject', 'nodeRepresentation', 'classificationNode', 'identificationScheme', 'registryObject', 'objectType', 'mimeType'];
const EBRIM_TOKENS = [...XML_TOKENS, ...Object.values(XDS), '<Slot name="size"><ValueList><Value>', '</Value></ValueList></Slot>', '1|', '2|', '^^^&', '&amp;ISO^NH', 'urn:uuid:'];
const SAMPLE_META = [writeSubmitObjectsRequest({ set: sampleSubmission(1).set, documents: sampleSubmission(1).documents }), lenientMetadata({ hash: 'a'.repeat(40), size: 10, uri: 'SUBSET01/DOC0001.XML', splitUri: true })];

const HOSTILE_META = fc.oneof(
  soup(EBRIM_TOKENS, 40),
  mutated(fc.constantFrom(...SAMPLE_META).map((s) => Buffer.from(s, 'utf8')), EBRIM_TOKENS),
  xmlTree(EBRIM_NAMES, EBRIM_ATTRS).map((t) => Buffer.from(writeXml(t), 'utf8')),
);

describe('ebRIM SubmitObjectsRequest: hostile documents', () => {
  it('reads valid metadata or refuses with XDS_METADATA_INVALID, nothing else; memory bounded', async () => {
    const grown = await retainedGrowth(() =>
      check(fc.tuple(HOSTILE_META, fc.boolean()), ([xml, xdm]) => {
        try {
          const m = readSubmitObjectsRequest(xml, { xdm });
          assert.deepEqual(submissionProblems(m, { xdm }), []);
        } catch (e) {
          refusedWith('XDS_METADATA_INVALID')(e);
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

describe('ebRIM writer: counterexamples found by fuzzing (regressions)', () => {
  it('a line break in a value is written as a character reference and reads back (a conformant reader would make it a space)', () => {
    const { set, documents } = readSubmitObjectsRequest(minimalXdm().meta);
    const m = { set: { ...set, title: 'Résultats\nde\tlabo' }, documents: [{ ...documents[0]!, entryUuid: 'a\n!' }] };
    const xml = writeSubmitObjectsRequest(m);
    expect(xml).toContain('id="a&#10;!"');
    expect(xml).toContain('value="Résultats&#10;de&#9;labo"');
    expect(readSubmitObjectsRequest(xml)).toEqual(m);
  });
});
