// The IHE_XDM / CDA corpus's context: the dmp readers the webmail and the DMP hand-off run
// on what a message carries — readXdm, readCdaHeader, documentsOfMessage — with the
// platform's default limits, and the outcome of each. The readers keep no state: after
// every case the same good package and the same good CDA document must read back exactly.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { expect } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { readCdaHeader } from '../../dmp/cda.js';
import { documentsOfMessage } from '../../dmp/documents.js';
import { buildXdm } from '../../dmp/xdm/build.js';
import { readXdm, xdmLimits, type XdmLimits } from '../../dmp/xdm/read.js';
import { zipBomb } from '../fixtures/dmp/hostile-xdm.js';
import { sampleSubmission } from '../fixtures/dmp/sample.js';
import type { Outcome } from './harness.js';
import { outcomeOf } from './files.js';

export interface XdmCtx {
  /** The platform's defaults: 100 entries, 20 MiB per file, 50 MiB in all, ratio 100. */
  limits: XdmLimits;
  /** 200 MiB of zeros as METADATA.XML, ~200 KB compressed (tests/fixtures/dmp/hostile-xdm.ts). */
  bomb: Buffer;
  read(zip: Buffer, limits?: XdmLimits): Promise<Outcome>;
  cda(bytes: Buffer | string): Promise<Outcome>;
  /** A message carrying these attachments: the first document's error (code and sentence), or what was read. */
  message(attachments: Array<{ filename: string; content: Buffer; contentType: string }>): Promise<Outcome>;
}

export interface XdmServer extends XdmCtx {
  serves(): Promise<void>;
  nothingLost(): Promise<void>;
}

export async function xdmCtx(): Promise<XdmServer> {
  const limits = xdmLimits(loadConfig({ env: {}, cwd: '/tmp' }));
  const bomb = await zipBomb();
  const good = sampleSubmission(2);
  const goodZip = await buildXdm(good);
  const cdaFixture = readFileSync(new URL('../fixtures/dmp/cda-lab-result.xml', import.meta.url));
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  let reads = 0;
  const ctx: XdmCtx = {
    limits,
    bomb,
    read: (zip, l = limits) => outcomeOf(() => readXdm(zip, l), (s) => `${s.documents.length} documents`),
    cda: (bytes) => outcomeOf(() => readCdaHeader(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)), (h) => `title ${h.title ?? '(none)'}`),
    async message(attachments) {
      const raw = await new MailComposer({ from: 'labo@peer.mssante.localhost', to: 'jeanne.martin@mssante.localhost', subject: 'Résultats', text: 'ci-joint', attachments }).compile().build();
      return outcomeOf(
        () => documentsOfMessage(raw, limits),
        (docs) => docs.map((d) => (d.error ? `${d.filename}: ${d.errorCode}: ${d.error}` : `${d.filename}: read`)).join('; '),
      );
    },
  };
  const server: XdmServer = {
    ...ctx,
    /** The good package and the good CDA document read back, byte for byte. */
    async serves() {
      const s = await readXdm(goodZip, limits);
      expect([...s.contents.values()].map(sha1)).toEqual([...good.contents.values()].map(sha1));
      expect(readCdaHeader(cdaFixture).hash).toBe(sha1(cdaFixture));
      reads++;
    },
    async nothingLost() {
      expect(reads).toBeGreaterThan(0);
      await server.serves();
    },
  };
  return server;
}
