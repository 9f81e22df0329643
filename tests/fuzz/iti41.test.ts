// Property-based fuzzing of the ITI-41 request reader (dmp/iti41: MTOM/XOP multipart, SOAP
// 1.2 envelope, the SubmitObjectsRequest and its documents) and of the stand-in DMP's checks
// (dmp/standin/validate.ts): what a DMP client sends over HTTP. For mutated MTOM and plain
// requests, well-formed requests built from generated parts, and random bytes:
//   - nothing escapes but SoapError / XmlError (the stand-in answers a SOAP fault, never 500);
//   - what the builder wrote reads back: the metadata and every document part;
//   - memory stays bounded.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readSubmitObjectsRequest, writeSubmitObjectsRequest } from '../../dmp/ebrim.js';
import { buildProvideAndRegister, envelope, ITI41_ACTION, readProvideAndRegister, SoapError } from '../../dmp/iti41/index.js';
import { XmlError } from '../../dmp/iti41/xml.js';
import { escapeXml } from '../../dmp/safe-xml.js';
import { checkSubmission } from '../../dmp/standin/validate.js';
import { sampleCda, sampleSubmission } from '../fixtures/dmp/sample.js';
import { contents, metadata, minimalXdm, submissionOf, val } from './dmp-gen.js';
import { check, MAX_RETAINED_GROWTH, mutated, retainedGrowth, soup } from './harness.js';
import { XML_TOKENS } from './xml-gen.js';

// ---------------------------------------------------------------------------------------
// ITI-41 (what the stand-in DMP reads).

describe('ITI-41 requests', () => {
  // 1,000 runs: each builds and reads a whole MTOM request (~5 ms of CPU); the reader has its
  // 10,000 hostile requests below, the metadata its own round trip above.
  it('reads back the request it built: the metadata and every document part', () => {
    // The metadata is the minimal package's: what varies is what MTOM carries — how many
    // documents, their ids and their bytes.
    const { set, documents } = readSubmitObjectsRequest(minimalXdm().meta);
    check(fc.tuple(fc.uniqueArray(val, { minLength: 1, maxLength: 3 }), contents), ([ids, bytes]) => {
      const m = { set, documents: ids.map((id, i) => ({ ...documents[0]!, entryUuid: id, uniqueId: `1.2.3.${i}` })) };
      const sub = submissionOf(m, bytes);
      const built = buildProvideAndRegister({
        to: 'https://dmp.example/iti41',
        submitObjectsRequest: writeSubmitObjectsRequest({ set: sub.set, documents: sub.documents }),
        documents: sub.documents.map((d) => ({ id: d.entryUuid, mimeType: 'text/xml', bytes: sub.contents.get(d.entryUuid)! })),
      });
      const r = readProvideAndRegister(built.body, built.contentType);
      assert.deepEqual(readSubmitObjectsRequest(r.submitObjectsRequest), { set: sub.set, documents: sub.documents });
      assert.deepEqual(
        r.documents.map((d) => [d.id, d.bytes]),
        sub.documents.map((d) => [d.entryUuid, sub.contents.get(d.entryUuid)]),
      );
      assert.deepEqual(r.unreferenced, []);
    }, 1_000);
  });

  it('reads a request or refuses it with SoapError / XmlError, nothing else, and the stand-in checks what it read; memory bounded', async () => {
    const sub = sampleSubmission(1);
    const built = buildProvideAndRegister({ to: 'https://dmp.example/iti41', submitObjectsRequest: writeSubmitObjectsRequest({ set: sub.set, documents: sub.documents }), documents: [{ id: sub.documents[0]!.entryUuid, mimeType: 'text/xml', bytes: sampleCda(1) }] });
    // The same request without MTOM (the document inline, base64), to reach the envelope,
    // the SubmitObjectsRequest and the documents when the MIME layer is intact.
    const plain = Buffer.from(
      envelope(
        { action: ITI41_ACTION, messageId: 'urn:uuid:1', to: 'https://dmp.example/iti41' },
        `<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">${minimalXdm().meta.toString().replace(/^<\?xml[^>]*\?>\s*/, '')}<xdsb:Document id="D">${sampleCda(1).toString('base64')}</xdsb:Document></xdsb:ProvideAndRegisterDocumentSetRequest>`,
      ),
    );
    const SOAP_TOKENS = [...XML_TOKENS, '\r\n--', 'Content-ID: <x>\r\n', 'cid:', '\r\n\r\n', '<xop:Include href="cid:x"/>', 'xmlns:xop="http://www.w3.org/2004/08/xop/include"', 'soap:', 'wsa:', '==', '@'];
    // Well-formed requests built from parts: generated metadata, documents inline, by a
    // cid: reference (resolvable or not) or empty, headers present or not — what reaches the
    // stand-in's checks.
    const content = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
      fc.constantFrom('', 'not base64!', '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:nowhere"/>', '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="http://x/"/>'),
    );
    const generated = fc
      .record({
        meta: metadata({ xdm: false, docs: 1 }),
        docs: fc.array(fc.tuple(fc.option(val, { nil: undefined }), content), { maxLength: 3 }),
        action: fc.option(fc.constantFrom(ITI41_ACTION, 'urn:other'), { nil: undefined }),
        messageId: fc.option(val, { nil: undefined }),
      })
      .map(({ meta, docs, action, messageId }) => {
        const id = (i: number, given: string | undefined) => given ?? meta.documents[i]?.entryUuid ?? 'none';
        const sor = writeSubmitObjectsRequest(meta).replace(/^<\?xml[^>]*\?>\s*/, '');
        const documents = docs.map(([given, c], i) => `<xdsb:Document id="${escapeXml(id(i, given))}">${c}</xdsb:Document>`).join('');
        const headers = `${action ? `<wsa:Action>${action}</wsa:Action>` : ''}${messageId ? `<wsa:MessageID>${escapeXml(messageId)}</wsa:MessageID>` : ''}`;
        return [
          Buffer.from(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header>${headers}</soap:Header><soap:Body><xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">${sor}${documents}</xdsb:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>`),
          'application/soap+xml; charset=utf-8',
        ] as const;
      });
    const request = fc.oneof(
      generated,
      fc.tuple(mutated(fc.constant(built.body), SOAP_TOKENS), fc.constantFrom(built.contentType, built.contentType.replace('boundary="', 'boundary="x'), 'multipart/related; boundary=x', 'multipart/related')),
      fc.tuple(mutated(fc.constant(plain), SOAP_TOKENS), fc.constantFrom('application/soap+xml; charset=utf-8', 'application/soap+xml', 'application/soap+xml; charset=latin1', 'text/xml', '')),
      fc.tuple(soup(SOAP_TOKENS, 30), fc.constantFrom('application/soap+xml', built.contentType)),
    );
    const grown = await retainedGrowth(() =>
      check(request, ([b, ct]) => {
        try {
          const r = readProvideAndRegister(b, ct);
          checkSubmission(r, { hasUniqueId: () => false });
        } catch (e) {
          assert.ok(e instanceof SoapError || e instanceof XmlError, String(e));
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

describe('ITI-41: counterexamples found by fuzzing (regressions)', () => {
  it('MTOM part headers that are not UTF-8 are a Sender fault, not a TypeError (the stand-in answered 500)', () => {
    const sub = sampleSubmission(1);
    const built = buildProvideAndRegister({ to: 'x', submitObjectsRequest: writeSubmitObjectsRequest({ set: sub.set, documents: sub.documents }), documents: [{ id: sub.documents[0]!.entryUuid, mimeType: 'text/xml', bytes: sampleCda(1) }] });
    const at = built.body.indexOf('Content-Type: application/xop+xml');
    const body = Buffer.concat([built.body.subarray(0, at), Buffer.from([0x80, 0x00]), built.body.subarray(at)]);
    expect(() => readProvideAndRegister(body, built.contentType)).toThrow(SoapError);
  });
});
