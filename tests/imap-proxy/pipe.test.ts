// The pipe's Dovecot → client path reads into one buffer shared by every session of the
// process and hands each chunk straight to TLS, pausing Dovecot while the client is behind
// (imap-proxy/pipe.ts). Large FETCHes by slow readers on two sessions at once must arrive
// byte for byte as Dovecot sends them.
import { createHash, randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverLmtp } from '../../mailstore/lmtp.js';
import { DOMAIN, PER, PW, startStack, type Stack } from './stack.js';

const MESSAGES = 3;
const SIZE = 1_500_000;

/** A message whose body is random base64 lines: any lost, doubled or overwritten chunk shows. */
function bigMessage(i: number): Buffer {
  const lines = randomBytes((SIZE * 3) / 4)
    .toString('base64')
    .match(/.{1,76}/g)!
    .join('\r\n');
  return Buffer.from(`From: labo@peer.${DOMAIN}\r\nTo: ${PER}\r\nSubject: gros ${i}\r\nMessage-ID: <gros-${i}@peer>\r\n\r\n${lines}\r\n`);
}

/**
 * Logs in, selects INBOX, fetches every message body, reading slowly (a pause every
 * 128 KiB) so the proxy's client socket backs up; returns the raw response.
 */
function slowFetch(open: () => import('node:net').Socket, login: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = open();
    const chunks: Buffer[] = [];
    let size = 0;
    let sinceBreak = 0;
    let step = 0;
    const text = () => Buffer.concat(chunks).toString('latin1');
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      sinceBreak += d.length;
      if (sinceBreak > 128 * 1024) {
        sinceBreak = 0;
        s.pause();
        setTimeout(() => s.resume(), 15);
      }
      const t = step < 3 ? text() : '';
      if (step === 0 && /\r\n/.test(t)) {
        step = 1;
        s.write(`a ${login}\r\n`);
      } else if (step === 1 && /^a OK/m.test(t)) {
        step = 2;
        s.write('b SELECT INBOX\r\n');
      } else if (step === 2 && /^b OK/m.test(t)) {
        step = 3;
        chunks.length = 0;
        size = 0;
        s.write('c FETCH 1:* BODY.PEEK[]\r\n');
      } else if (step === 3 && size > 20 && /\r\nc (OK|NO|BAD)[^\r\n]*\r\n$/.test(Buffer.concat(chunks.slice(-2)).toString('latin1'))) {
        s.end('d LOGOUT\r\n');
        resolve(Buffer.concat(chunks));
      } else if (/^[abc] (NO|BAD)/m.test(t)) {
        reject(new Error(t.slice(-300)));
      }
    });
  });
}

/** The literals of a FETCH response, in order. */
function literals(resp: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const text = resp.toString('latin1');
  const re = /\{(\d+)\}\r\n/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const start = m.index + m[0].length;
    out.push(resp.subarray(start, start + Number(m[1])));
    re.lastIndex = start + Number(m[1]);
  }
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * 'same' when `got` ends with `want`; otherwise where they part, so a failure says what
 * went wrong (a digest alone did not, the one time this failed on a loaded CI machine).
 */
function tailDiff(got: Buffer, want: Buffer): string {
  if (got.length >= want.length && got.subarray(got.length - want.length).equals(want)) return 'same';
  const tail = got.subarray(Math.max(0, got.length - want.length));
  let at = 0;
  while (at < tail.length && tail[at] === want[at]) at++;
  const around = (b: Buffer) => JSON.stringify(b.subarray(Math.max(0, at - 40), at + 40).toString('latin1'));
  return `literal of ${got.length} bytes for a message of ${want.length}; first difference at byte ${at} of the message: got ${around(tail)}, sent ${around(want)}`;
}

describe('imap-proxy pipe: large FETCHes by slow readers', () => {
  let s: Stack;
  const sent: Buffer[] = [];
  beforeAll(async () => {
    s = await startStack();
    for (let i = 0; i < MESSAGES; i++) {
      const m = bigMessage(i);
      sent.push(m);
      const r = await deliverLmtp(s.store.lmtp, { from: `labo@peer.${DOMAIN}`, to: [PER] }, m);
      expect(r.failed).toEqual([]);
    }
  });
  afterAll(async () => s?.stop());

  it('two sessions at once get exactly the bytes Dovecot sends', async () => {
    const tls: ConnectionOptions = s.tls();
    const viaProxy = () => tlsConnect({ host: '127.0.0.1', port: s.proxy.ports.imaps, ...tls });
    const direct = () => tcpConnect({ host: s.store.imap.host, port: s.store.imap.port });
    const master = `LOGIN "${PER}${s.store.master.separator}${s.store.master.user}" "${s.store.master.password}"`;
    const [a, b, reference] = await Promise.all([slowFetch(viaProxy, `LOGIN "${PER}" "${PW.jeanne}"`), slowFetch(viaProxy, `LOGIN "${PER}" "${PW.jeanne}"`), slowFetch(direct, master)]);

    const ref = literals(reference);
    expect(ref).toHaveLength(MESSAGES);
    // What Dovecot stored is what was delivered, after the headers it prepends.
    expect(ref.map((lit, i) => `message ${i}: ${tailDiff(lit, sent[i])}`)).toEqual(sent.map((_, i) => `message ${i}: same`));
    for (const got of [a, b]) {
      const lits = literals(got);
      expect(lits.map((lit, i) => `message ${i}: ${lit.equals(ref[i]) ? 'same' : `${lit.length} bytes, ${sha(lit)}`}`)).toEqual(ref.map((_, i) => `message ${i}: same`));
    }
  });
});
