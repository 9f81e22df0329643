import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { loadConfig } from '../../core/config/index.js';
import { buildXdm, packageSubmission } from '../../dmp/xdm/build.js';
import { readXdm, unsafeEntryName, xdmLimits, type XdmLimits } from '../../dmp/xdm/read.js';
import { handMade } from '../fixtures/dmp/hostile-xdm.js';
import { lenientMetadata } from '../fixtures/dmp/lenient-metadata.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';

// Building and reading IHE_XDM.zip. Every refusal of a hostile archive (zip-slip, bombs,
// lying headers, bad metadata, XXE…) is a case of the hostile corpus:
// tests/hostile/cases/xdm.ts, run by tests/hostile/xdm.test.ts.

// The platform's own defaults: 100 entries, 20 MiB per file, 50 MiB in all, ratio 100.
const limits: XdmLimits = xdmLimits(loadConfig({ env: {}, cwd: '/tmp' }));

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

  it('judges names as zip-slip the same way everywhere', () => {
    expect(unsafeEntryName('IHE_XDM/SUBSET01/DOC0001.XML')).toBeNull();
    expect(unsafeEntryName('IHE_XDM/SUBSET01/..DOC')).toBeNull();
    expect(unsafeEntryName('a/\u0000b')).toBe('has a control character in its name');
  });
});
