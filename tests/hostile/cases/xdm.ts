// IHE_XDM.zip and CDA documents from other people's software, as the webmail shows them
// and the DMP hand-off reads them: zip-slip, bombs, lying headers, broken or hostile
// metadata, XML attacks. The archive is read in memory (nothing extracted), so every case
// is a refusal with its reason — and, inside a message, an error on that attachment only.
// (These cases were tests/dmp/xdm.test.ts's refusals, moved here as data, plus new ones.)
import { writeSubmitObjectsRequest } from '../../../dmp/ebrim.js';
import { packageSubmission } from '../../../dmp/xdm/build.js';
import { BOMB_BYTES, handMade, lyingBomb } from '../../fixtures/dmp/hostile-xdm.js';
import { rawZip } from '../../fixtures/dmp/rawzip.js';
import { sampleSubmission } from '../../fixtures/dmp/sample.js';
import type { Case } from '../harness.js';
import type { XdmCtx } from '../xdm.js';

const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const refused = (reason: RegExp) => ({ code: 'XDM_REFUSED', enhanced: '422', text: new RegExp(`^the IHE_XDM archive is refused: ${reason.source}`) }) as const;
const cdaInvalid = (reason: RegExp) => ({ code: 'CDA_INVALID', enhanced: '422', text: new RegExp(`^the CDA document cannot be read: ${reason.source}`) }) as const;
const META = 'IHE_XDM/SUBSET01/METADATA.XML: ';
const DTD = 'it contains a DOCTYPE declaration, which is refused \\(XML external entity and entity expansion attacks\\)';
const metadata = () => writeSubmitObjectsRequest(packageSubmission(sampleSubmission(1)));
const doc1 = () => packageSubmission(sampleSubmission(1)).contents.get('Document01')!;
const slip = (name: string, why: string): Case<XdmCtx> => ({
  name: `the zip-slip name ${JSON.stringify(name)}`,
  send: (x) => x.read(handMade({ extra: [{ name, data: Buffer.from('evil') }] })),
  expect: refused(new RegExp(`entry "${re(name)}" ${re(why)}$`)),
});
const XXE_CDA = '<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>';

export const xdmCases: Array<Case<XdmCtx>> = [
  // --- names in the archive -----------------------------------------------------------------------
  slip('../evil', 'has a ".." path segment (zip-slip)'),
  slip('/abs', 'has an absolute name (zip-slip)'),
  slip('IHE_XDM/../../x', 'has a ".." path segment (zip-slip)'),
  slip('IHE_XDM\\..\\x', 'has a backslash in its name (zip-slip)'),
  slip('C:/Windows/x', 'has a drive letter in its name (zip-slip)'),
  slip('IHE_XDM/SUBSET01/\u0001DOC', 'has a control character in its name'),
  { name: 'a symbolic link', send: (x) => x.read(handMade({ extra: [{ name: 'IHE_XDM/SUBSET01/link', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 }] })), expect: refused(/entry "IHE_XDM\/SUBSET01\/link" is a symbolic link/) },
  { name: 'an encrypted entry', send: (x) => x.read(handMade({ extra: [{ name: 'X.BIN', data: Buffer.from('x'), flags: 1 }] })), expect: refused(/entry "X\.BIN" is encrypted/) },
  { name: 'two entries whose names differ only in case', send: (x) => x.read(handMade({ extra: [{ name: 'ihe_xdm/subset01/metadata.xml', data: Buffer.from('<x/>') }] })), expect: refused(/entry "ihe_xdm\/subset01\/metadata\.xml" appears twice/) },
  // --- sizes ----------------------------------------------------------------------------------------
  { name: 'a zip bomb whose headers tell the truth (refused without inflating)', send: (x) => x.read(x.bomb), expect: refused(new RegExp(`entry IHE_XDM/SUBSET01/METADATA\\.XML is ${BOMB_BYTES} bytes uncompressed, above the 20971520-byte limit`)) },
  { name: 'a zip bomb whose headers lie: stopped at the ratio cap', send: (x) => x.read(lyingBomb(x.bomb, 1000)), expect: refused(/entry IHE_XDM\/SUBSET01\/METADATA\.XML inflates more than 100 times its compressed size \(a zip bomb\)/) },
  { name: 'a lying zip bomb under a relaxed ratio: stopped at the per-file cap', send: (x) => x.read(lyingBomb(x.bomb, 1000), { ...x.limits, maxRatio: 100_000 }), expect: refused(/entry IHE_XDM\/SUBSET01\/METADATA\.XML inflates to more than 20971520 bytes \(the per-file limit\)$/) },
  {
    name: 'many honest files adding up past the total cap',
    send: (x) => x.read(rawZip(Array.from({ length: 4 }, (_, i) => ({ name: `F${i}.BIN`, data: Buffer.alloc(300 * 1024, 7), deflate: true }))), { ...x.limits, maxRatio: 100_000, maxTotalSize: 1024 * 1024 }),
    expect: refused(/the archive inflates to more than 1048576 bytes in all \(the total limit\)/),
  },
  {
    name: 'an entry that inflates to another size than its header says',
    send: (x) => x.read(handMade({ docs: [], extra: [{ name: 'IHE_XDM/SUBSET01/DOC0001.XML', data: doc1(), deflate: true, declaredSize: doc1().length - 1 }] })),
    expect: refused(/entry IHE_XDM\/SUBSET01\/DOC0001\.XML inflates to \d+ bytes, its header says \d+/),
  },
  { name: 'more entries than allowed', send: (x) => x.read(handMade({ extra: Array.from({ length: 100 }, (_, i) => ({ name: `IHE_XDM/SUBSET01/F${i}.TXT`, data: Buffer.from('x') })) })), expect: refused(/it has \d+ entries, more than 100$/) },
  // --- the package --------------------------------------------------------------------------------------
  { name: 'what is not a ZIP archive', send: (x) => x.read(Buffer.from('PK not really a zip')), expect: refused(/it is not a readable ZIP archive/) },
  { name: 'a ZIP cut in half', send: (x) => x.read(handMade().subarray(0, 400)), expect: refused(/it is not a readable ZIP archive/) },
  { name: 'an empty ZIP', send: (x) => x.read(rawZip([])), expect: refused(/it has no IHE_XDM\/<subset>\/METADATA\.XML$/) },
  { name: 'no METADATA.XML', send: (x) => x.read(rawZip([{ name: 'README.TXT', data: Buffer.from('x') }, { name: 'IHE_XDM/SUBSET01/DOC0001.XML', data: Buffer.from('<a/>') }])), expect: refused(/it has no IHE_XDM\/<subset>\/METADATA\.XML$/) },
  { name: 'two submission sets', send: (x) => x.read(handMade({ extra: [{ name: 'IHE_XDM/SUBSET02/METADATA.XML', data: Buffer.from('<x/>') }] })), expect: refused(/it holds 2 submission sets \(IHE_XDM\/SUBSET01\/METADATA\.XML, IHE_XDM\/SUBSET02\/METADATA\.XML\); one is expected/) },
  {
    name: 'a document whose SHA-1 differs from METADATA.XML',
    send: (x) => {
      const t = Buffer.from(doc1());
      t[t.length - 3] ^= 1;
      return x.read(handMade({ docs: [{ name: 'DOC0001.XML', data: t }] }));
    },
    expect: refused(/document DOC0001\.XML: SHA-1 is [0-9a-f]{40}, METADATA\.XML says [0-9a-f]{40}$/),
  },
  {
    name: 'a document one byte longer than METADATA.XML says',
    send: (x) => x.read(handMade({ docs: [{ name: 'DOC0001.XML', data: Buffer.concat([doc1(), Buffer.from('\n')]) }] })),
    expect: refused(new RegExp(`document DOC0001\\.XML: size is ${doc1().length + 1} bytes, METADATA\\.XML says ${doc1().length}; `)),
  },
  { name: 'a document METADATA.XML lists but the archive lacks', send: (x) => x.read(handMade({ docs: [] })), expect: refused(/document Document01: its URI "DOC0001\.XML" names no file of the archive/) },
  ...(
    [
      ['a document URI leaving the package', '../../etc/passwd', 'has a ".." path segment (zip-slip)'],
      ['an absolute document URI', '/etc/passwd', 'has an absolute name (zip-slip)'],
      ['a document URI with backslashes', '..\\..\\boot.ini', 'has a backslash in its name (zip-slip)'],
    ] as const
  ).map(
    ([name, uri, why]): Case<XdmCtx> => ({
      name,
      send: (x) => {
        const sub = packageSubmission(sampleSubmission(1));
        sub.documents[0]!.uri = uri;
        return x.read(handMade({ metadata: writeSubmitObjectsRequest(sub) }));
      },
      expect: refused(new RegExp(`document Document01: its URI "${re(uri)}" is refused: it ${re(why.replace(/^has /, 'has '))}`)),
    }),
  ),
  // --- METADATA.XML -----------------------------------------------------------------------------------
  { name: 'METADATA.XML that is not well-formed', send: (x) => x.read(handMade({ metadata: '<lcm:SubmitObjectsRequest><rim:RegistryObjectList></lcm:SubmitObjectsRequest>' })), expect: refused(new RegExp(`${META}it is not well-formed XML \\(line 1, column 51: Expected closing tag 'rim:RegistryObjectList'`)) },
  { name: 'METADATA.XML without the document hash', send: (x) => x.read(handMade({ metadata: metadata().replace(/<rim:Slot name="hash">[\s\S]*?<\/rim:Slot>/, '') })), expect: refused(new RegExp(`${META}document Document01: no hash$`)) },
  {
    name: 'METADATA.XML with an external entity (XXE), never read',
    send: (x) => x.read(handMade({ metadata: metadata().replace('<?xml version="1.0" encoding="UTF-8"?>\n', '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lcm:SubmitObjectsRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n').replace('>Résultats<', '>&xxe;<') })),
    expect: refused(new RegExp(`${META}${DTD}$`)),
  },
  {
    name: 'METADATA.XML with a billion laughs',
    send: (x) => x.read(handMade({ metadata: metadata().replace('<?xml version="1.0" encoding="UTF-8"?>\n', `<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`).join('')}]>\n`) })),
    expect: refused(new RegExp(`${META}${DTD}$`)),
  },
  {
    name: 'METADATA.XML with an ENTITY declaration and no DOCTYPE',
    send: (x) => x.read(handMade({ metadata: `<!ENTITY x "y">\n${metadata()}` })),
    expect: refused(new RegExp(`${META}it contains an ENTITY declaration, which is refused \\(XML external entity and entity expansion attacks\\)$`)),
  },
  { name: 'METADATA.XML using an undeclared entity', send: (x) => x.read(handMade({ metadata: metadata().replace('value="Résultats"', 'value="R&foo;sultats"') })), expect: refused(new RegExp(`${META}it uses the undeclared entity &foo;`)) },
  { name: 'METADATA.XML with the character reference &#0;', send: (x) => x.read(handMade({ metadata: metadata().replace('value="Résultats"', 'value="R&#0;sultats"') })), expect: refused(new RegExp(`${META}it contains the character reference &#0;, which XML does not allow`)) },
  { name: 'METADATA.XML declaring an unknown encoding', send: (x) => x.read(handMade({ metadata: metadata().replace('encoding="UTF-8"', 'encoding="x-evil-7"') })), expect: refused(new RegExp(`${META}its declared encoding "x-evil-7" is unknown`)) },
  { name: 'METADATA.XML nested 5,000 elements deep', send: (x) => x.read(handMade({ metadata: `${Array.from({ length: 5000 }, (_, i) => `<e${i}>`).join('')}${Array.from({ length: 5000 }, (_, i) => `</e${4999 - i}>`).join('')}` })), expect: refused(new RegExp(`${META}it cannot be parsed \\(`)) },
  { name: 'METADATA.XML that is not a SubmitObjectsRequest', send: (x) => x.read(handMade({ metadata: '<?xml version="1.0"?><html><body>hello</body></html>' })), expect: refused(new RegExp(`${META}it has no SubmitObjectsRequest element$`)) },
  {
    name: 'a patient that differs between the submission set and the document',
    send: (x) => x.read(handMade({ metadata: metadata().replace(/(<rim:ExternalIdentifier[^>]*identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"[^>]*value=")279035121518989/, '$1179035121518989') })),
    expect: refused(new RegExp(`${META}document Document01: patient 179035121518989 \\(1\\.2\\.250\\.1\\.213\\.1\\.4\\.10\\) is not the submission set's 279035121518989`)),
  },
  // --- bare CDA documents ------------------------------------------------------------------------------
  { name: 'a CDA document with an external entity (XXE)', send: (x) => x.cda(XXE_CDA), expect: cdaInvalid(new RegExp(DTD)) },
  { name: 'an HTML page sent as a CDA document', send: (x) => x.cda('<html><body/></html>'), expect: cdaInvalid(/its root element is not ClinicalDocument \(HL7 CDA R2\)$/) },
  { name: 'a CDA document that is not well-formed', send: (x) => x.cda('<ClinicalDocument><title></ClinicalDocument>'), expect: cdaInvalid(/it is not well-formed XML \(line 1, column 26: Expected closing tag 'title'/) },
  { name: 'a CDA document using an undeclared entity', send: (x) => x.cda('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&nbsp;</title></ClinicalDocument>'), expect: cdaInvalid(/it uses the undeclared entity &nbsp;/) },
  { name: 'a CDA document with a control character reference', send: (x) => x.cda('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>a&#x1;b</title></ClinicalDocument>'), expect: cdaInvalid(/it contains the character reference &#x1;, which XML does not allow/) },
  { name: 'a CDA document declaring an unknown encoding', send: (x) => x.cda('<?xml version="1.0" encoding="klingon"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'), expect: cdaInvalid(/its declared encoding "klingon" is unknown/) },
  { name: 'a CDA document nested 50,000 elements deep', send: (x) => x.cda(`<ClinicalDocument xmlns="urn:hl7-org:v3">${'<x>'.repeat(50_000)}${'</x>'.repeat(50_000)}</ClinicalDocument>`), expect: cdaInvalid(/it cannot be parsed \(/) },
  { name: 'an empty CDA document', send: (x) => x.cda(''), expect: cdaInvalid(/it is not well-formed XML \(line 1: Start tag expected\.\)$/) },
  { name: 'binary bytes as a CDA document', send: (x) => x.cda(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])), expect: cdaInvalid(/it is not well-formed XML \(line 1, column 1: /) },
  // --- in a message: the one attachment is in error, the rest reads ---------------------------------------
  {
    name: 'a message whose IHE_XDM.zip is a zip bomb, beside a good CDA document',
    send: async (x) => x.message([
      { filename: 'IHE_XDM.zip', content: x.bomb, contentType: 'application/zip' },
      { filename: 'cr.xml', content: Buffer.from('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Bilan</title></ClinicalDocument>'), contentType: 'text/xml' },
    ]).then((o) => ({ ...o, code: o.code === 'accepted' ? 'listed' : o.code })),
    expect: { code: 'listed', text: /^IHE_XDM\.zip: XDM_REFUSED: the IHE_XDM archive is refused: entry IHE_XDM\/SUBSET01\/METADATA\.XML is \d+ bytes uncompressed, above the 20971520-byte limit; cr\.xml: read$/ },
  },
  {
    name: 'a message whose CDA attachment carries an XXE, beside a good IHE_XDM.zip',
    send: async (x) => x.message([
      { filename: 'evil.xml', content: Buffer.from(XXE_CDA), contentType: 'application/xml' },
      { filename: 'IHE_XDM.zip', content: handMade(), contentType: 'application/zip' },
    ]).then((o) => ({ ...o, code: o.code === 'accepted' ? 'listed' : o.code })),
    expect: { code: 'listed', text: new RegExp(`^evil\\.xml: CDA_INVALID: the CDA document cannot be read: ${DTD}; IHE_XDM\\.zip: read$`) },
  },
];


