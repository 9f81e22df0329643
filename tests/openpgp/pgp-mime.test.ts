import { simpleParser } from 'mailparser';
import { decrypt, generateKey, readMessage, readPrivateKey, type PrivateKey } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { encryptToPgpMime, isPgpMimeEncrypted } from '../../smtp/openpgp.js';

// smtp/openpgp.ts on its own (socket-free): the shapes of message the delivery may meet.

let publicKey: string;
let privateKey: PrivateKey;
beforeAll(async () => {
  const k = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr.chiffre@mssante.localhost' }], format: 'armored' });
  publicKey = k.publicKey;
  privateKey = await readPrivateKey({ armoredKey: k.privateKey });
});

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
async function open(stored: Buffer) {
  const outer = await simpleParser(stored);
  const asc = outer.attachments.find((a) => a.filename === 'encrypted.asc')!;
  const { data } = await decrypt({ message: await readMessage({ armoredMessage: asc.content.toString() }), decryptionKeys: privateKey, format: 'binary' });
  return { outer, header: stored.toString('latin1', 0, stored.indexOf('\r\n\r\n')), inner: Buffer.from(data as Uint8Array) };
}

describe('PGP/MIME building (RFC 3156 §4)', () => {
  it('keeps outside only the allow-listed fields, folded ones whole, and obscures the Subject', async () => {
    const m = crlf(`Received: from a\n\tby b; Mon, 7 Dec 2026 10:00:00 +0000\nFrom: "Dr A" <a@peer.fr>\nTo: b@mssante.localhost,\n c@mssante.localhost\nSubject: Patient Dupont\nX-MSS-INS: O\nX-MSS-CODECDA: 11502-2\nX-Secret: diagnostic\nThread-Topic: Dupont\nMessage-ID: <1@peer.fr>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nhémoglobine\n`);
    const { outer, header, inner } = await open((await encryptToPgpMime(m, publicKey))!);
    expect(header.split(/\r\n(?![ \t])/).map((l) => l.slice(0, l.indexOf(':')))).toEqual(['Received', 'From', 'To', 'X-MSS-INS', 'X-MSS-CODECDA', 'Message-ID', 'Subject', 'MIME-Version', 'Content-Type']);
    expect(header).toContain('To: b@mssante.localhost,\r\n c@mssante.localhost\r\n');
    expect(outer.subject).toBe('[...]');
    expect(header).not.toMatch(/Dupont|diagnostic/);
    const p = await simpleParser(inner);
    expect(p.subject).toBe('Patient Dupont');
    expect(p.headers.get('x-secret')).toBe('diagnostic');
    expect(p.text).toBe('hémoglobine\n');
  });

  it('a message without Content-Type or without a body keeps its meaning inside', async () => {
    const noType = crlf('From: a@peer.fr\nTo: b@mssante.localhost\nSubject: s\n\nplain ascii\n');
    expect((await simpleParser((await open((await encryptToPgpMime(noType, publicKey))!)).inner)).text).toBe('plain ascii\n');
    const noBody = crlf('From: a@peer.fr\nTo: b@mssante.localhost\nSubject: vide\n');
    const p = await simpleParser((await open((await encryptToPgpMime(noBody, publicKey))!)).inner);
    expect(p.subject).toBe('vide');
  });

  it('a header section the fronts would refuse is encrypted whole and nothing of it is copied outside', async () => {
    const bad = crlf('From: a@peer.fr\nnot a header line\nSubject: Dupont\n\nbody\n');
    const { header, inner } = await open((await encryptToPgpMime(bad, publicKey))!);
    expect(header).not.toMatch(/a@peer\.fr|Dupont/);
    expect(inner.includes(bad)).toBe(true);
  });

  it('recognises PGP/MIME whatever the case and parameters, and nothing else', () => {
    for (const ct of ['multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x', 'Multipart/Encrypted;\r\n boundary="x"', 'multipart/encrypted']) {
      expect(isPgpMimeEncrypted(crlf(`From: a@peer.fr\nContent-Type: ${ct}\n\n--x--\n`)), ct).toBe(true);
    }
    for (const ct of ['multipart/encrypted-not; boundary=x', 'multipart/mixed; protocol="application/pgp-encrypted"', 'text/plain']) {
      expect(isPgpMimeEncrypted(crlf(`From: a@peer.fr\nContent-Type: ${ct}\n\nx\n`)), ct).toBe(false);
    }
    // A Content-Type in the body is not the message's.
    expect(isPgpMimeEncrypted(crlf('From: a@peer.fr\n\nContent-Type: multipart/encrypted\n'))).toBe(false);
  });
});
