import { simpleParser } from 'mailparser';
import { decrypt, generateKey, readMessage, readPrivateKey, type PrivateKey } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { encryptToPgpMime, isPgpMimeEncrypted } from '../../smtp/openpgp.js';
import { PgpMimeThread } from '../../smtp/openpgp-thread.js';

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

describe("encryption on a thread of its own (smtp/openpgp-thread.ts), as the delivery does it", () => {
  /** A 6 MB message of random base64 lines: encrypting it in this thread holds the loop for seconds. */
  const big = () => crlf(`From: a@peer.fr\nTo: b@mssante.localhost\nSubject: Imagerie\nMIME-Version: 1.0\nContent-Type: text/plain\n\n${randomBytes(4_500_000).toString('base64').replace(/(.{76})/g, '$1\n')}\n`);

  it("does not hold the platform's event loop, and what it makes decrypts to the message", async () => {
    const thread = new PgpMimeThread();
    try {
      const m = big();
      let ticks = 0;
      const ticking = setInterval(() => ticks++, 5);
      const stored = await thread.encrypt(m, publicKey).finally(() => clearInterval(ticking));
      const onThread = ticks;
      const { outer, inner } = await open(stored!);
      expect(outer.subject).toBe('[...]');
      expect(inner.includes(m.subarray(m.indexOf('\r\n\r\n') + 4))).toBe(true);
      // For contrast, the same in this thread: the loop runs its timers only where openpgp
      // happens to yield (5–6 times over the whole message here, against ~250 above).
      ticks = 0;
      const t = setInterval(() => ticks++, 5);
      await encryptToPgpMime(m, publicKey).finally(() => clearInterval(t));
      expect(onThread).toBeGreaterThan(10 * ticks);
    } finally {
      await thread.stop();
    }
  });

  it('jobs at once each get their own result; a key that cannot encrypt fails its job alone, with the reason', async () => {
    const thread = new PgpMimeThread();
    try {
      const msgs = [0, 1, 2].map((i) => crlf(`From: a@peer.fr\nTo: b@mssante.localhost\nSubject: n${i}\n\ncorps ${i}\n`));
      const [bad, ...good] = await Promise.allSettled([thread.encrypt(msgs[0], 'not a key'), ...msgs.map((m) => thread.encrypt(m, publicKey))]);
      expect(bad.status).toBe('rejected');
      expect(String((bad as PromiseRejectedResult).reason.message)).toMatch(/armored/i);
      const subjects = await Promise.all(good.map(async (r) => (await simpleParser((await open((r as PromiseFulfilledResult<Buffer>).value)).inner)).subject));
      expect(subjects).toEqual(['n0', 'n1', 'n2']);
      // Already PGP/MIME: nothing to do, as encryptToPgpMime says.
      expect(await thread.encrypt(crlf('From: a@peer.fr\nContent-Type: multipart/encrypted; boundary=x\n\n--x--\n'), publicKey)).toBeNull();
    } finally {
      await thread.stop();
    }
  });
});
