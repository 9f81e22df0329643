import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { loadConfig } from '../../core/config/index.js';
import { MssError } from '../../core/errors.js';
import { writeSubmitObjectsRequest } from '../../dmp/ebrim.js';
import { buildXdm, packageSubmission } from '../../dmp/xdm/build.js';
import { readXdm, unsafeEntryName, xdmLimits, type XdmLimits } from '../../dmp/xdm/read.js';
import { lenientMetadata } from '../fixtures/dmp/lenient-metadata.js';
import { rawZip, type RawEntry } from '../fixtures/dmp/rawzip.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';

// The platform's own defaults: 100 entries, 20 MiB per file, 50 MiB in all, ratio 100.
const limits: XdmLimits = xdmLimits(loadConfig({ env: {}, cwd: '/tmp' }));

async function refusal(p: Promise<unknown>): Promise<MssError> {
  try {
    const got = await p;
    throw new Error(`expected a refusal, got ${JSON.stringify(got, (_k, v) => (v instanceof Map ? [...v.keys()] : v)).slice(0, 200)}`);
  } catch (e) {
    if (e instanceof MssError) {
      expect(e.code).toBe('XDM_REFUSED');
      expect(e.status).toBe(422);
      return e;
    }
    throw e;
  }
}

function entryNames(zip: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: false }, (err, z) => {
      if (err || !z) return reject(err);
      const names: string[] = [];
      z.on('entry', (e: yauzl.Entry) => names.push(e.fileName));
      z.on('end', () => resolve(names));
    }),
  );
}

/** A well-formed package made by hand: METADATA.XML of the packaged sample plus its documents. */
function handMade(opts: { subset?: string; metadata?: string | Buffer; docs?: Array<{ name: string; data: Buffer }>; extra?: RawEntry[] } = {}) {
  const sub = packageSubmission(sampleSubmission(1));
  const subset = opts.subset ?? 'SUBSET01';
  const docs = opts.docs ?? sub.documents.map((d) => ({ name: d.uri!, data: sub.contents.get(d.entryUuid)! }));
  const metadata = opts.metadata ?? writeSubmitObjectsRequest(sub);
  return rawZip([
    { name: 'README.TXT', data: Buffer.from('test\r\n') },
    { name: 'INDEX.HTM', data: Buffer.from('<html></html>') },
    { name: `IHE_XDM/${subset}/METADATA.XML`, data: Buffer.from(metadata), deflate: true },
    ...docs.map((d) => ({ name: `IHE_XDM/${subset}/${d.name}`, data: d.data, deflate: true })),
    ...(opts.extra ?? []),
  ]);
}

const ZEROS = 200 * 1024 * 1024;
let bomb: Buffer;

beforeAll(async () => {
  // 200 MiB of zeros streamed through yazl: a ~200 KB archive.
  const zip = new yazl.ZipFile();
  let left = ZEROS;
  const chunk = Buffer.alloc(1024 * 1024);
  const zeros = new Readable({
    read() {
      if (left <= 0) return this.push(null);
      left -= chunk.length;
      this.push(chunk);
    },
  });
  zip.addBuffer(Buffer.from('x'), 'README.TXT');
  zip.addReadStream(zeros, 'IHE_XDM/SUBSET01/METADATA.XML', { compressionLevel: 1 });
  zip.end();
  const parts: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) parts.push(c);
  bomb = Buffer.concat(parts);
});

/** The bomb with its central directory claiming `size` uncompressed bytes instead. */
function lyingBomb(size: number): Buffer {
  const b = Buffer.from(bomb);
  const name = Buffer.from('IHE_XDM/SUBSET01/METADATA.XML');
  for (let i = b.length - 22; i >= 0; i--) {
    if (b.readUInt32LE(i) === 0x02014b50 && b.subarray(i + 46, i + 46 + name.length).equals(name)) {
      expect(b.readUInt32LE(i + 24)).toBe(ZEROS);
      b.writeUInt32LE(size, i + 24);
      return b;
    }
  }
  throw new Error('central directory entry not found');
}

describe('IHE_XDM.zip', () => {
  it('builds the standard layout and reads back the same metadata and bytes', async () => {
    const sub = sampleSubmission(2);
    // The caller's hash, size and URI are ignored: computed from the bytes.
    sub.documents[0]!.hash = '0'.repeat(40);
    sub.documents[0]!.size = 1;
    delete sub.documents[1]!.uri;
    const zip = await buildXdm(sub);
    expect(await entryNames(zip)).toEqual(['README.TXT', 'INDEX.HTM', 'IHE_XDM/SUBSET01/METADATA.XML', 'IHE_XDM/SUBSET01/DOC0001.XML', 'IHE_XDM/SUBSET01/DOC0002.XML']);
    const back = await readXdm(zip, limits);
    const expected = packageSubmission(sub);
    expect(back.set).toEqual(expected.set);
    expect(back.documents).toEqual(expected.documents);
    expect(back.documents[0]).toMatchObject({ uri: 'DOC0001.XML', hash: createHash('sha1').update(sub.contents.get('Document01')!).digest('hex'), size: sub.contents.get('Document01')!.length });
    expect(back.contents).toEqual(sub.contents);
  });

  it('reads another subset folder name and URIs that include it or not', async () => {
    const doc = readFileSync(new URL('../fixtures/dmp/cda-lab-result.xml', import.meta.url));
    const hash = createHash('sha1').update(doc).digest('hex');
    for (const uri of ['SS000001/CR.XML', 'CR.XML']) {
      const zip = handMade({ subset: 'SS000001', metadata: lenientMetadata({ hash, size: doc.length, uri }), docs: [{ name: 'CR.XML', data: doc }] });
      const got = await readXdm(zip, limits);
      expect(got.documents.map((d) => [d.entryUuid, d.uri, d.hash])).toEqual([['DocCR', uri, hash]]);
      expect(got.contents.get('DocCR')).toEqual(doc);
    }
  });

  it.each([
    ['../evil', 'has a ".." path segment (zip-slip)'],
    ['/abs', 'has an absolute name (zip-slip)'],
    ['IHE_XDM/../../x', 'has a ".." path segment (zip-slip)'],
    ['IHE_XDM\\..\\x', 'has a backslash in its name (zip-slip)'],
    ['C:/Windows/x', 'has a drive letter in its name (zip-slip)'],
  ])('refuses the zip-slip name %s', async (name, why) => {
    const e = await refusal(readXdm(handMade({ extra: [{ name, data: Buffer.from('evil') }] }), limits));
    expect(e.message).toBe(`the IHE_XDM archive is refused: entry "${name}" ${why}`);
  });

  it('refuses symbolic links, encrypted entries and duplicate names', async () => {
    expect((await refusal(readXdm(handMade({ extra: [{ name: 'IHE_XDM/SUBSET01/link', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 }] }), limits))).message).toContain('entry "IHE_XDM/SUBSET01/link" is a symbolic link');
    expect((await refusal(readXdm(handMade({ extra: [{ name: 'X.BIN', data: Buffer.from('x'), flags: 1 }] }), limits))).message).toContain('entry "X.BIN" is encrypted');
    expect((await refusal(readXdm(handMade({ extra: [{ name: 'ihe_xdm/subset01/metadata.xml', data: Buffer.from('<x/>') }] }), limits))).message).toContain('entry "ihe_xdm/subset01/metadata.xml" appears twice');
  });

  it('refuses a zip bomb whose headers tell the truth, without inflating it', async () => {
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const e = await refusal(readXdm(bomb, limits));
    expect(e.message).toContain(`entry IHE_XDM/SUBSET01/METADATA.XML is ${ZEROS} bytes uncompressed, above the ${limits.maxEntrySize}-byte limit`);
  });

  it('stops inflating a zip bomb whose headers lie, at the ratio cap', async () => {
    const e = await refusal(readXdm(lyingBomb(1000), limits));
    expect(e.message).toContain(`entry IHE_XDM/SUBSET01/METADATA.XML inflates more than ${limits.maxRatio} times its compressed size (a zip bomb)`);
  });

  it('stops inflating at the per-file and total caps when the ratio is allowed', async () => {
    const relaxed = { ...limits, maxRatio: 100_000 };
    expect((await refusal(readXdm(lyingBomb(1000), relaxed))).message).toContain(`inflates to more than ${limits.maxEntrySize} bytes (the per-file limit)`);
    const data = Buffer.alloc(300 * 1024, 7);
    const many = rawZip(Array.from({ length: 4 }, (_, i) => ({ name: `F${i}.BIN`, data, deflate: true })));
    expect((await refusal(readXdm(many, { ...relaxed, maxTotalSize: 1024 * 1024 }))).message).toContain('the archive inflates to more than 1048576 bytes in all (the total limit)');
  });

  it('refuses an entry that inflates to another size than its header says', async () => {
    const sub = packageSubmission(sampleSubmission(1));
    const doc = sub.contents.get('Document01')!;
    const zip = handMade({ docs: [] , extra: [{ name: 'IHE_XDM/SUBSET01/DOC0001.XML', data: doc, deflate: true, declaredSize: doc.length - 1 }] });
    expect((await refusal(readXdm(zip, limits))).message).toContain(`entry IHE_XDM/SUBSET01/DOC0001.XML inflates to ${doc.length} bytes, its header says ${doc.length - 1}`);
  });

  it('refuses too many entries', async () => {
    const extra = Array.from({ length: limits.maxEntries }, (_, i) => ({ name: `IHE_XDM/SUBSET01/F${i}.TXT`, data: Buffer.from('x') }));
    expect((await refusal(readXdm(handMade({ extra }), limits))).message).toMatch(/it has \d+ entries, more than 100$/);
  });

  it('refuses a package without METADATA.XML', async () => {
    const zip = rawZip([{ name: 'README.TXT', data: Buffer.from('x') }, { name: 'IHE_XDM/SUBSET01/DOC0001.XML', data: Buffer.from('<a/>') }]);
    expect((await refusal(readXdm(zip, limits))).message).toBe('the IHE_XDM archive is refused: it has no IHE_XDM/<subset>/METADATA.XML');
  });

  it('refuses a document whose SHA-1 or size differs from METADATA.XML', async () => {
    const sub = packageSubmission(sampleSubmission(1));
    const doc = sub.contents.get('Document01')!;
    const tampered = Buffer.from(doc);
    tampered[tampered.length - 3] ^= 1;
    const sha = createHash('sha1').update(tampered).digest('hex');
    let e = await refusal(readXdm(handMade({ docs: [{ name: 'DOC0001.XML', data: tampered }] }), limits));
    expect(e.message).toBe(`the IHE_XDM archive is refused: document DOC0001.XML: SHA-1 is ${sha}, METADATA.XML says ${sub.documents[0]!.hash}`);
    const longer = Buffer.concat([doc, Buffer.from('\n')]);
    e = await refusal(readXdm(handMade({ docs: [{ name: 'DOC0001.XML', data: longer }] }), limits));
    expect(e.details.problems).toEqual([
      `document DOC0001.XML: size is ${doc.length + 1} bytes, METADATA.XML says ${doc.length}`,
      `document DOC0001.XML: SHA-1 is ${createHash('sha1').update(longer).digest('hex')}, METADATA.XML says ${sub.documents[0]!.hash}`,
    ]);
  });

  it('refuses a document missing from the archive and a URI leaving the package', async () => {
    let e = await refusal(readXdm(handMade({ docs: [] }), limits));
    expect(e.message).toContain('document Document01: its URI "DOC0001.XML" names no file of the archive');
    const sub = packageSubmission(sampleSubmission(1));
    sub.documents[0]!.uri = '../../etc/passwd';
    e = await refusal(readXdm(handMade({ metadata: writeSubmitObjectsRequest(sub) }), limits));
    expect(e.message).toContain('document Document01: its URI "../../etc/passwd" is refused: it has a ".." path segment (zip-slip)');
  });

  it('refuses malformed METADATA.XML and incomplete metadata, naming the file', async () => {
    let e = await refusal(readXdm(handMade({ metadata: '<lcm:SubmitObjectsRequest><rim:RegistryObjectList></lcm:SubmitObjectsRequest>' }), limits));
    expect(e.message).toMatch(/^the IHE_XDM archive is refused: IHE_XDM\/SUBSET01\/METADATA.XML: it is not well-formed XML \(line 1/);
    const sub = packageSubmission(sampleSubmission(1));
    e = await refusal(readXdm(handMade({ metadata: writeSubmitObjectsRequest(sub).replace(/<rim:Slot name="hash">[\s\S]*?<\/rim:Slot>/, '') }), limits));
    expect(e.message).toBe('the IHE_XDM archive is refused: IHE_XDM/SUBSET01/METADATA.XML: document Document01: no hash');
  });

  it('refuses METADATA.XML with a DOCTYPE (XXE) and never reads the entity', async () => {
    const sub = packageSubmission(sampleSubmission(1));
    const xml = writeSubmitObjectsRequest(sub)
      .replace('<?xml version="1.0" encoding="UTF-8"?>\n', '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lcm:SubmitObjectsRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')
      .replace('>Résultats<', '>&xxe;<');
    const e = await refusal(readXdm(handMade({ metadata: xml }), limits));
    expect(e.message).toBe('the IHE_XDM archive is refused: IHE_XDM/SUBSET01/METADATA.XML: it contains a DOCTYPE declaration, which is refused (XML external entity and entity expansion attacks)');
    expect(JSON.stringify(e.details)).not.toMatch(/root:|nologin|\/bin\/(ba)?sh/);
  });

  it('refuses what is not a ZIP archive, and more than one submission set', async () => {
    expect((await refusal(readXdm(Buffer.from('PK not really a zip'), limits))).message).toContain('it is not a readable ZIP archive');
    const two = handMade({ extra: [{ name: 'IHE_XDM/SUBSET02/METADATA.XML', data: Buffer.from('<x/>') }] });
    expect((await refusal(readXdm(two, limits))).message).toContain('it holds 2 submission sets (IHE_XDM/SUBSET01/METADATA.XML, IHE_XDM/SUBSET02/METADATA.XML); one is expected');
  });

  it('judges names as zip-slip the same way everywhere', () => {
    expect(unsafeEntryName('IHE_XDM/SUBSET01/DOC0001.XML')).toBeNull();
    expect(unsafeEntryName('IHE_XDM/SUBSET01/..DOC')).toBeNull();
    expect(unsafeEntryName('a/\u0000b')).toBe('has a control character in its name');
  });
});
