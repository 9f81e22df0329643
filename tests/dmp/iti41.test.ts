// ITI-41 transport, pure parts: MIME multipart/related, the request's envelope and XOP
// references, and reading answers. The HTTP round trip is in standin.test.ts.
import { describe, expect, it } from 'vitest';
import { readSubmitObjectsRequest, writeSubmitObjectsRequest } from '../../dmp/ebrim.js';
import { MimeError, buildRelated, parseContentType, parseRelated } from '../../dmp/iti41/mime.js';
import { buildProvideAndRegister, readProvideAndRegister } from '../../dmp/iti41/pnr.js';
import { ITI41_ACTION, ITI41_RESPONSE_ACTION, SoapError, envelope, faultEnvelope, readAnswer, registryResponseXml } from '../../dmp/iti41/soap.js';
import { NS, XmlError, parseDocument, serialize } from '../../dmp/iti41/xml.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';

const ROOT_TYPE = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"';

function request(n = 2) {
  const sub = sampleSubmission(n);
  const sor = writeSubmitObjectsRequest(sub);
  const built = buildProvideAndRegister({
    to: 'https://dmp.example/repository',
    submitObjectsRequest: sor,
    documents: sub.documents.map((d) => ({ id: d.entryUuid, mimeType: d.mimeType, bytes: sub.contents.get(d.entryUuid)! })),
  });
  return { sub, sor, built };
}

const thrown = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
};

describe('Content-Type parameters', () => {
  it('reads tokens and quoted strings, case-insensitive names, escapes', () => {
    expect(parseContentType('Multipart/Related; TYPE="application/xop+xml"; boundary=abc_1; start="<root@x>"; start-info="application/soap+xml"; q="a\\"b"')).toEqual({
      type: 'multipart/related',
      params: { type: 'application/xop+xml', boundary: 'abc_1', start: '<root@x>', 'start-info': 'application/soap+xml', q: 'a"b' },
    });
    expect(parseContentType('application/soap+xml;charset=utf-8;')).toEqual({ type: 'application/soap+xml', params: { charset: 'utf-8' } });
  });
  it('refuses what is not a media type', () => {
    for (const bad of ['', 'soap', 'text/xml; charset', 'text/xml; b="unterminated', 'text/xml x', 'text/xml; a b=c']) expect(parseContentType(bad)).toBeNull();
  });
});

describe('multipart/related', () => {
  const bin = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255, 13, 10]);
  const parts = () => [
    { contentType: ROOT_TYPE, contentId: 'root@t', body: Buffer.from('<x/>') },
    { contentType: 'application/octet-stream', contentId: 'a@t', body: bin },
    { contentType: 'text/plain', contentId: 'b@t', body: Buffer.from('line\r\n--MIMEBoundary_not_the_one\r\n') },
  ];

  it('round-trips binary parts byte for byte, root found by start', () => {
    const r = buildRelated(parts(), { type: 'application/xop+xml', startInfo: 'application/soap+xml', action: ITI41_ACTION });
    const ct = parseContentType(r.contentType)!;
    expect(ct.params).toMatchObject({ type: 'application/xop+xml', start: '<root@t>', 'start-info': 'application/soap+xml', action: ITI41_ACTION });
    expect(ct.params.boundary).toMatch(/^MIMEBoundary_[0-9a-f]{48}$/);
    const p = parseRelated(r.body, r.contentType);
    expect(p.root.body.toString()).toBe('<x/>');
    expect(p.root.contentType?.params.type).toBe('application/soap+xml');
    expect(p.byCid.get('a@t')!.body.equals(bin)).toBe(true);
    expect(p.byCid.get('b@t')!.body.toString()).toBe('line\r\n--MIMEBoundary_not_the_one\r\n');
    expect(p.anonymous).toBe(0);
  });

  it('accepts a preamble and an epilogue (RFC 2046), and base64 parts', () => {
    const b = 'uuid:1234';
    const body = Buffer.from(
      `\r\n--${b}\r\nContent-Type: ${ROOT_TYPE}\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--${b}\r\nContent-ID: <d>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n--${b}--\r\nepilogue text\r\n`,
    );
    const p = parseRelated(body, `multipart/related; type="application/xop+xml"; boundary="${b}"; start="<r>"`);
    expect(p.root.body.toString()).toBe('<x/>');
    expect(p.byCid.get('d')!.body.toString()).toBe('hello');
    // Without start, the first part is the root.
    expect(parseRelated(body, `multipart/related; boundary="${b}"`).root.contentId).toBe('r');
  });

  it('refuses malformed bodies and bodies past the limits', () => {
    const r = buildRelated(parts(), { type: 'application/xop+xml' });
    const limits = { maxHeaderSize: 8192, maxParts: 10, maxPartSize: 1 << 20, maxTotalSize: 1 << 22 };
    const cases: Array<[() => unknown, RegExp]> = [
      [() => parseRelated(r.body, 'application/soap+xml'), /expected multipart\/related/],
      [() => parseRelated(r.body, 'multipart/related; type="application/xop+xml"'), /no usable boundary/],
      [() => parseRelated(r.body, 'multipart/related; boundary=other'), /does not contain its boundary/],
      [() => parseRelated(r.body.subarray(0, r.body.length - 40), r.contentType), /malformed/],
      [() => parseRelated(r.body, r.contentType.replace('<root@t>', '<nobody@t>')), /no part has the Content-ID <nobody@t>/],
      [() => parseRelated(r.body, r.contentType, { ...limits, maxParts: 2 }), /part count exceeds/],
      [() => parseRelated(r.body, r.contentType, { ...limits, maxPartSize: 8 }), /size exceeds/],
      [() => parseRelated(r.body, r.contentType, { ...limits, maxHeaderSize: 20 }), /header size exceeds/],
    ];
    for (const [fn, re] of cases) {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(MimeError);
      expect(e.message).toMatch(re);
    }
    const dup = buildRelated([...parts(), { contentType: 'text/plain', contentId: 'a@t', body: Buffer.from('x') }], { type: 'application/xop+xml' });
    expect(thrown(() => parseRelated(dup.body, dup.contentType)).message).toMatch(/two parts have the Content-ID <a@t>/);
    const qp = Buffer.from('--b\r\nContent-ID: <r>\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx=20\r\n--b--\r\n');
    expect(thrown(() => parseRelated(qp, 'multipart/related; boundary=b')).message).toMatch(/quoted-printable/);
  });
});

describe('namespace-aware XML', () => {
  it('resolves prefixes and writes a sub-tree back with the declarations it inherited', () => {
    const root = parseDocument(`<a:E xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d"><b:S x="1 &amp; 2" y='say "hi"'><T>t &lt; u<![CDATA[<raw>]]></T><b:U/></b:S></a:E>`);
    const s = root.children[0] as ReturnType<typeof parseDocument>;
    expect([root.ns, s.ns, s.local]).toEqual(['urn:a', 'urn:b', 'S']);
    const again = parseDocument(serialize(s));
    expect(again.ns).toBe('urn:b');
    expect(again.raw.x).toBe('1 &amp; 2');
    expect(again.raw.y).toBe('say &quot;hi&quot;');
    const t = again.children[0] as ReturnType<typeof parseDocument>;
    expect(t.ns).toBe('urn:d');
    expect(serialize(s)).toContain('<T>t &lt; u<![CDATA[<raw>]]></T>');
  });
  it('refuses DTDs, undeclared prefixes and entities', () => {
    expect(thrown(() => parseDocument('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'))).toBeInstanceOf(XmlError);
    expect(thrown(() => parseDocument('<p:x/>')).message).toMatch(/prefix "p"/);
    expect(thrown(() => parseDocument('<x><y></x>')).message).toMatch(/not well-formed/);
  });
});

describe('ITI-41 request', () => {
  it('is MTOM: multipart/related of an application/xop+xml SOAP 1.2 root and one binary part per document', () => {
    const { built } = request(2);
    const ct = parseContentType(built.contentType)!;
    expect(ct.type).toBe('multipart/related');
    expect(ct.params).toMatchObject({ type: 'application/xop+xml', 'start-info': 'application/soap+xml', action: ITI41_ACTION });
    const mtom = parseRelated(built.body, built.contentType);
    expect(mtom.root.headers['content-type']).toBe(ROOT_TYPE);
    expect(mtom.byCid.size).toBe(2);
    const xml = mtom.root.body.toString('utf8');
    const env = parseDocument(xml);
    expect(env.ns).toBe(NS.soap12);
    expect(xml).toContain(`<wsa:Action soap:mustUnderstand="true">${ITI41_ACTION}</wsa:Action>`);
    expect(xml).toContain(`<wsa:MessageID>${built.messageId}</wsa:MessageID>`);
    expect(xml).toContain('<wsa:To soap:mustUnderstand="true">https://dmp.example/repository</wsa:To>');
    expect(xml).toMatch(/<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"><lcm:SubmitObjectsRequest /);
    const hrefs = [...xml.matchAll(/<xdsb:Document id="(Document0\d)"><xop:Include xmlns:xop="http:\/\/www.w3.org\/2004\/08\/xop\/include" href="cid:([^"]+)"\/><\/xdsb:Document>/g)];
    expect(hrefs.map((m) => m[1])).toEqual(['Document01', 'Document02']);
    for (const m of hrefs) expect(mtom.byCid.has(decodeURIComponent(m[2]!))).toBe(true);
    expect(built.messageId).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
  });

  it('reads back: WS-Addressing, the same metadata, the same bytes', () => {
    const { sub, built } = request(2);
    const r = readProvideAndRegister(built.body, built.contentType);
    expect(r.wsa).toMatchObject({ action: ITI41_ACTION, messageId: built.messageId, to: 'https://dmp.example/repository' });
    const { set, documents } = sub;
    expect(readSubmitObjectsRequest(r.submitObjectsRequest)).toEqual({ set, documents });
    expect(r.documents.map((d) => [d.id, d.mimeType, d.bytes?.equals(sub.contents.get(d.id)!)])).toEqual([
      ['Document01', 'text/xml', true],
      ['Document02', 'text/xml', true],
    ]);
    expect(r.unreferenced).toEqual([]);
  });

  it('reads the style of ANS\'s DMP sample: ns3/ns4 prefixes, rim as default namespace declared on the request, cid:0.2', () => {
    const sub = sampleSubmission(1);
    // Our SubmitObjectsRequest re-spelled the way the sample writes it: declarations on an ancestor.
    const sor = writeSubmitObjectsRequest(sub)
      .replace(/^<\?xml[^>]*\?>\s*/, '')
      .replace(/ xmlns:(lcm|rim|xsi)="[^"]*"/g, '')
      .replace(/<(\/?)rim:/g, '<$1')
      .replace(/<(\/?)lcm:/g, '<$1ns3:');
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="${NS.soap12}" xmlns:urn="urn:hl7-org:v3"><soap:Header>
<MessageID xmlns="${NS.wsa}">urn:uuid:af216fcb-c0f1-4f0b-b53f-d7fb5562cc1a</MessageID>
<Action xmlns="${NS.wsa}" mustUnderstand="true">${ITI41_ACTION}</Action></soap:Header>
<soap:Body><ns4:ProvideAndRegisterDocumentSetRequest xmlns="${NS.rim}" xmlns:ns2="${NS.rs}" xmlns:ns3="${NS.lcm}" xmlns:ns4="${NS.xdsb}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
${sor}<ns4:Document id="Document01"><xop:Include xmlns:xop="${NS.xop}" href="cid:0.2"/></ns4:Document></ns4:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>`;
    const m = buildRelated([{ contentType: ROOT_TYPE, contentId: '0.1', body: Buffer.from(xml) }, { contentType: 'application/octet-stream', contentId: '0.2', body: sub.contents.get('Document01')! }], {
      type: 'application/xop+xml',
      startInfo: 'application/soap+xml',
    });
    const r = readProvideAndRegister(m.body, m.contentType);
    expect(r.wsa).toMatchObject({ action: ITI41_ACTION, messageId: 'urn:uuid:af216fcb-c0f1-4f0b-b53f-d7fb5562cc1a' });
    expect(r.submitObjectsRequest).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><ns3:SubmitObjectsRequest [^>]*xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"/);
    expect(r.submitObjectsRequest).toMatch(/^[^\n]*<ns3:SubmitObjectsRequest [^>]*xmlns:ns3="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"/);
    expect(readSubmitObjectsRequest(r.submitObjectsRequest)).toEqual({ set: sub.set, documents: sub.documents });
    expect(r.documents[0]!.bytes!.equals(sub.contents.get('Document01')!)).toBe(true);
  });

  it('reports a document whose XOP part is missing, and parts nobody refers to', async () => {
    const { sor } = request(1);
    const xml = envelope(
      { action: ITI41_ACTION, messageId: 'urn:uuid:1', to: 'x' },
      `<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="${NS.xdsb}">${sor.replace(/^<\?xml[^>]*\?>\s*/, '')}<xdsb:Document id="Document01"><xop:Include xmlns:xop="${NS.xop}" href="cid:gone@t"/></xdsb:Document><xdsb:Document id="Inline">aGVsbG8=</xdsb:Document></xdsb:ProvideAndRegisterDocumentSetRequest>`,
    );
    const m = buildRelated([{ contentType: ROOT_TYPE, contentId: 'r@t', body: Buffer.from(xml) }, { contentType: 'text/xml', contentId: 'stray@t', body: Buffer.from('x') }], { type: 'application/xop+xml', startInfo: 'application/soap+xml' });
    const r = readProvideAndRegister(m.body, m.contentType);
    expect(r.documents[0]).toEqual({ id: 'Document01', problem: 'the xop:Include names the part <gone@t>, which the message does not carry' });
    expect(r.documents[1]!.bytes!.toString()).toBe('hello');
    expect(r.unreferenced).toEqual(['stray@t']);
  });

  it('refuses what is not an ITI-41 SOAP 1.2 request, with the HTTP status and fault code to answer', () => {
    const { built } = request(1);
    const soap11 = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>';
    const cases: Array<[Buffer, string | undefined, number, string, RegExp]> = [
      [Buffer.from('hello'), 'text/plain', 415, 'Sender', /not text\/plain/],
      [Buffer.from('hello'), undefined, 415, 'Sender', /without Content-Type/],
      [Buffer.from(soap11), 'text/xml', 415, 'VersionMismatch', /SOAP 1.1/],
      [Buffer.from(soap11), 'application/soap+xml', 400, 'VersionMismatch', /SOAP 1.1 envelope/],
      [Buffer.from('<x>'), 'application/soap+xml', 400, 'Sender', /not well-formed/],
      [Buffer.from(`<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="${NS.soap12}"><soap:Body>&x;</soap:Body></soap:Envelope>`), 'application/soap+xml', 400, 'Sender', /DTD/],
      [Buffer.from(envelope({ action: 'urn:other', messageId: 'urn:uuid:1' }, '<x/>')), 'application/soap+xml', 400, 'Sender', /Action is urn:other/],
      [Buffer.from(envelope({ action: ITI41_ACTION, messageId: 'urn:uuid:1' }, '<x/>')), 'application/soap+xml', 400, 'Sender', /not an xdsb:ProvideAndRegisterDocumentSetRequest/],
      [built.body, built.contentType.replace('application/xop+xml', 'text/xml'), 415, 'Sender', /type="application\/xop\+xml"/],
      [built.body.subarray(0, 200), built.contentType, 400, 'Sender', /malformed|boundary/],
    ];
    for (const [body, ct, status, code, re] of cases) {
      const e = thrown(() => readProvideAndRegister(body, ct));
      expect(e, `${ct}: ${e.message}`).toBeInstanceOf(SoapError);
      expect([(e as SoapError).httpStatus, (e as SoapError).faultCode]).toEqual([status, code]);
      expect(e.message).toMatch(re);
    }
  });
});

describe('ITI-41 answers', () => {
  const plain = (xml: string) => [Buffer.from(xml), 'application/soap+xml; charset=UTF-8'] as const;

  it('reads Success, Failure with its RegistryErrorList, and PartialSuccess as a failure', () => {
    const ok = readAnswer(...plain(envelope({ action: ITI41_RESPONSE_ACTION, messageId: 'urn:uuid:2', relatesTo: 'urn:uuid:1' }, registryResponseXml([]))));
    expect(ok).toEqual({ kind: 'registry', status: 'success', statusUri: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success', errors: [], relatesTo: 'urn:uuid:1' });
    const errors = [
      { code: 'XDSMissingDocument', context: 'document D1 <missing> & "gone"', severity: 'error' as const, location: 'D1' },
      { code: 'XDSRepositoryMetadataError', context: 'stray part', severity: 'warning' as const },
    ];
    const bad = readAnswer(...plain(envelope({ action: ITI41_RESPONSE_ACTION, messageId: 'urn:uuid:2' }, registryResponseXml(errors))));
    expect(bad).toMatchObject({ kind: 'registry', status: 'failure', errors });
    const warnOnly = readAnswer(...plain(envelope({ action: ITI41_RESPONSE_ACTION, messageId: 'urn:uuid:2' }, registryResponseXml([errors[1]!]))));
    expect(warnOnly).toMatchObject({ status: 'success', errors: [errors[1]] });
    const partial = `<rs:RegistryResponse xmlns:rs="${NS.rs}" status="urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"/>`;
    expect(readAnswer(...plain(envelope({ action: ITI41_RESPONSE_ACTION, messageId: 'urn:uuid:2' }, partial)))).toMatchObject({ status: 'failure' });
  });

  it('reads SOAP faults with subcodes, and answers packaged as MTOM', () => {
    const f = readAnswer(...plain(faultEnvelope('Sender', 'bad <thing>')));
    expect(f).toMatchObject({ kind: 'fault', code: 'Sender', reason: 'bad <thing>' });
    const withSub = envelope(
      { action: 'x', messageId: 'urn:uuid:3' },
      `<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value><soap:Subcode><soap:Value xmlns:w="${NS.wsa}">w:InvalidAddressingHeader</soap:Value></soap:Subcode></soap:Code><soap:Reason><soap:Text xml:lang="fr">mauvais</soap:Text></soap:Reason></soap:Fault>`,
    );
    expect(readAnswer(...plain(withSub))).toMatchObject({ kind: 'fault', code: 'Sender', subcodes: ['InvalidAddressingHeader'], reason: 'mauvais' });
    const mtom = buildRelated([{ contentType: ROOT_TYPE, contentId: 'r@t', body: Buffer.from(envelope({ action: ITI41_RESPONSE_ACTION, messageId: 'urn:uuid:4' }, registryResponseXml([]))) }], {
      type: 'application/xop+xml',
      startInfo: 'application/soap+xml',
    });
    expect(readAnswer(mtom.body, mtom.contentType)).toMatchObject({ kind: 'registry', status: 'success' });
  });

  it('refuses answers that are not SOAP or hold no RegistryResponse', () => {
    expect(thrown(() => readAnswer(Buffer.from('<html>502</html>'), 'text/html'))).toBeInstanceOf(SoapError);
    const e = thrown(() => readAnswer(...plain(envelope({ action: 'x', messageId: 'urn:uuid:5' }, '<other xmlns="urn:x"/>'))));
    expect(e.message).toMatch(/\{urn:x\}other, not a RegistryResponse/);
  });
});
