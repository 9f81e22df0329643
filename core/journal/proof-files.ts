// The files that prove one journal event to a third party with openssl alone: written to a
// directory by `mss journal export`, zipped by the admin API (GET /api/v1/journal/:seq/proof)
// for the operator console. One list, so both give the same proof.
import yazl from 'yazl';
import { checkProof, type EventProof } from './index.js';
import { MssError } from '../errors.js';

export interface ProofFile {
  name: string;
  data: Buffer;
}

/**
 * stamped.bin, token.tsr, tsa-chain.pem, proof.json, README.txt (+ tsa-ca.pem when given).
 * `dir` is where the files will be (in the README's openssl command); `caFile` the trust
 * anchor to name in it. Throws when the proof does not hold together (the journal was changed).
 */
export function proofFiles(proof: EventProof, o: { tsaChainPem: string; caFile: string; dir?: string; caPem?: string }): ProofFile[] {
  const problem = checkProof(proof);
  if (problem) throw new MssError('JOURNAL_PROOF_BROKEN', { id: proof.event.seq, reason: problem });
  const at = (f: string) => (o.dir ? `${o.dir.replace(/\/$/, '')}/${f}` : f);
  const cmd = `openssl ts -verify -data ${at('stamped.bin')} -in ${at('token.tsr')} -CAfile ${o.caFile} -untrusted ${at('tsa-chain.pem')}`;
  const files: ProofFile[] = [
    { name: 'stamped.bin', data: proof.stamped },
    { name: 'token.tsr', data: proof.token },
    { name: 'tsa-chain.pem', data: Buffer.from(o.tsaChainPem, 'utf8') },
    { name: 'proof.json', data: Buffer.from(JSON.stringify(proof, (k, v) => (k === 'stamped' || k === 'token' ? undefined : v), 2) + '\n', 'utf8') },
    { name: 'README.txt', data: Buffer.from(proofReadme(proof.event.seq, cmd, Boolean(o.caPem)), 'utf8') },
  ];
  if (o.caPem) files.push({ name: 'tsa-ca.pem', data: Buffer.from(o.caPem, 'utf8') });
  return files;
}

/** The same files in one ZIP archive (what a browser downloads). */
export async function proofZip(files: ProofFile[], mtime: Date): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const f of files) zip.addBuffer(f.data, f.name, { mtime, mode: 0o100644 });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

function proofReadme(seq: number, cmd: string, withCa: boolean): string {
  return `Proof of journal event ${seq}

1. proof.json "event" holds the event; "hashedText" is the exact text hashed:
     event.hash = SHA-256( event.prevHash + "\\n" + hashedText )
2. "merkle.path" leads from that hash to the Merkle root of its sealed batch
   (RFC 6962 style: leaf = SHA-256(0x00 || hash), node = SHA-256(0x01 || left || right);
   "side" says where the sibling sits).
3. stamped.bin is the text the timestamping authority signed; its "root=" line is
   merkle.root.
4. token.tsr is the RFC 3161 TimeStampResp over stamped.bin. Check it with:
     ${cmd}
   which prints "Verification: OK".${withCa ? '\n   tsa-ca.pem is the root the operator uses; compare it with the one it publishes before trusting it.' : ''}
`;
}
