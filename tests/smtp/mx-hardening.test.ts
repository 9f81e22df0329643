import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devIssuer, issueCertificate } from '../../certs/pki.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

// What the MX and submission let through (issue 12): recipient, error and unknown-recipient
// limits, the content rules at the end of DATA, and an ASCII server that names itself by the
// operator's host name. One operator on loopback; the peers are raw SMTP sessions presenting
// the test PKI's operator certificates, so every reply is seen byte for byte.

const A = 'mssante.localhost';
const B = 'peer.mssante.localhost'; // the peer-operator certificate's domain
const B_OTHER = 'clinique-b.mssante.localhost'; // another domain of B's operator on the liste blanche
const C = 'hopital-c.mssante.localhost'; // a domain of another operator
const P2 = 'peer2.mssante.localhost'; // a second peer, the one that goes harvesting
const MAX_ERRORS = 10;
const UNKNOWN_LIMIT = 12;

let pki: TestPki;
let a: TestOperator;
let martin: { login: string; address: string; password: string };
let peer2: { cert: string; key: string };
const boxes: string[] = [];
/** Message-IDs the server acknowledged with 250, and for whom: none may be lost. */
const acknowledged = new Map<string, string[]>();

const tlsAs = (leaf?: { cert: string; key: string }): ConnectionOptions => ({ ca: pki.read('ca.pem'), servername: 'localhost', minVersion: 'TLSv1.2', ...(leaf ?? {}) });
const peerB = () => ({ cert: readFileSync(pki.file('peer-operator.pem'), 'utf8') + pki.read('intermediate.pem'), key: readFileSync(pki.file('peer-operator.key'), 'utf8') });

/** An MX session after STARTTLS, as `as` (peer B by default), from a loopback address. */
async function mx(as = peerB(), from?: string) {
  const t = await SmtpTalk.open(a.ports.mx, '127.0.0.1', undefined, from);
  await t.cmd('EHLO peer.test');
  await t.starttls(tlsAs(as), 'peer.test');
  return t;
}

/** A submission session on 587, logged in as Dr Martin. */
async function submission() {
  const t = await SmtpTalk.open(a.ports.submission);
  await t.cmd('EHLO client.test');
  await t.starttls(tlsAs());
  expect(await t.cmd('AUTH PLAIN ' + Buffer.from(`\0${martin.login}\0${martin.password}`).toString('base64'))).toMatch(/^235 /);
  return t;
}

let seq = 0;
const newId = () => `<hardening.${++seq}.${process.pid}@${B}>`;
/** The header section of a conforming message, but for `omit`ted fields, and `extra` ones after it. */
function headers(o: { from?: string; to?: string; id?: string; extra?: string; omit?: string[] } = {}) {
  const headers: Array<[string, string]> = [
    ['From', `Laboratoire <${o.from ?? `labo@${B}`}>`],
    ['To', `<${o.to ?? martin.address}>`],
    ['Subject', 'Compte rendu'],
    ['Date', new Date().toUTCString()],
    ['Message-ID', o.id ?? newId()],
  ];
  const kept = headers.filter(([n]) => !(o.omit ?? []).includes(n)).map(([n, v]) => `${n}: ${v}\r\n`);
  return `${kept.join('')}${o.extra ?? ''}`;
}
/** A whole DATA payload: headers, the empty line, a body, the final dot. */
const message = (o: Parameters<typeof headers>[0] & { body?: string } = {}) => `${headers(o)}\r\n${o.body ?? 'Bonjour.\r\n'}.\r\n`;

/** MAIL, RCPT, DATA of a good message on an open session: 250, and remembered as acknowledged. */
async function deliverGood(t: SmtpTalk, o: { from?: string; envFrom?: string; rcpts?: string[] } = {}) {
  const rcpts = o.rcpts ?? [martin.address];
  expect(await t.cmd(`MAIL FROM:<${o.envFrom ?? `labo@${B}`}>`)).toBe('250 2.1.0 Accepted');
  for (const r of rcpts) expect(await t.cmd(`RCPT TO:<${r}>`)).toBe('250 2.1.5 Accepted');
  const id = newId();
  expect(await t.data(message({ from: o.from, id }))).toMatch(/^250 2\.0\.0 message accepted, queued as [0-9A-F]{16}$/);
  acknowledged.set(id, rcpts);
}

const limitEvents = async (limit: string) => (await a.platform.journal.list({ type: 'smtp.limit', limit: 200 })).filter((e) => e.details.limit === limit);
const refusedCodes = async () => (await a.platform.journal.list({ type: 'smtp.refused', limit: 1000 })).map((e) => e.details.code);

beforeAll(async () => {
  pki = await testPki();
  const subjectB = new X509Certificate(readFileSync(pki.file('peer-operator.pem'))).subject;
  const issued = await issueCertificate(devIssuer(pki.dir), { type: 'server', domain: P2, organisation: 'Deuxième opérateur pair' });
  peer2 = { cert: issued.certPem + pki.read('intermediate.pem'), key: issued.keyPem };
  a = await startOperator({
    pki,
    domain: A,
    cert: 'server',
    ports: await freePorts(),
    peers: [B, P2, { nom: B_OTHER, dn: subjectB }, { nom: C, dn: 'CN=mx.hopital-c.fr,OU=1,O=Autre operateur,C=FR' }],
    overrides: { smtp: { maxSize: 200_000, maxErrors: MAX_ERRORS, unknownRecipientLimit: UNKNOWN_LIMIT } },
  });
  martin = await a.person('dr.martin', '899999999901');
  for (let i = 0; i < 101; i++) boxes.push(await a.bal({ local: `liste${String(i).padStart(3, '0')}`, type: 'ORG', owner: '1750000001', service: `Service ${i}` }));
  await a.synced();
}, 300_000);

afterAll(async () => {
  await a?.stop();
});

describe('the server names itself by the operator host name, in ASCII', () => {
  it('MX and submission: banner and EHLO', async () => {
    for (const port of [a.ports.mx, a.ports.submission]) {
      const t = await SmtpTalk.open(port);
      // SmtpTalk reads bytes as latin1: any byte over 0x7e would show here.
      const ehlo = await t.cmd('EHLO client.test');
      expect(ehlo.split('\r\n')[0]).toBe('250-mssante.localhost Nice to meet you, [127.0.0.1]');
      expect(ehlo).toMatch(/^250-ENHANCEDSTATUSCODES$/m);
      expect(ehlo).toMatch(/^[\x20-\x7e\r\n]+$/);
      t.close();
    }
    for (const [port, what] of [[a.ports.mx, 'MX'], [a.ports.submission, 'submission']] as const) {
      const greeting = await new Promise<Buffer>((resolve, reject) => {
        let got = Buffer.alloc(0);
        const s = connect(port, '127.0.0.1');
        s.on('error', reject);
        s.on('data', (d) => {
          got = Buffer.concat([got, d]);
          if (got.includes('\r\n')) {
            s.destroy();
            resolve(got);
          }
        });
      });
      expect(greeting.toString('latin1')).toBe(`220 mssante.localhost ESMTP MSSante ${what} ready\r\n`);
    }
  });
});

describe('SIZE= over the limit at MAIL FROM', () => {
  it('552 5.3.4 with the catalogue sentence, journalled; the session goes on', async () => {
    const t = await mx();
    expect(await t.cmd(`MAIL FROM:<labo@${B}> SIZE=999999999`)).toBe('552 5.3.4 message too big: the limit is 200000 bytes');
    expect(await refusedCodes()).toContain('MESSAGE_TOO_BIG');
    await deliverGood(t);
    t.close();
  });
});

describe('the MX content rules, each with its code and sentence, the same session delivering next', () => {
  const cases: Array<{ name: string; data: () => string | Buffer; smtputf8?: boolean; reply: string | RegExp; code: string }> = [
    { name: 'a NUL byte in the body', data: () => message({ body: 'avant\0apres\r\n' }), reply: /^550 5\.6\.0 message refused: it contains a NUL byte at byte \d+$/, code: 'MESSAGE_NUL_BYTE' },
    { name: 'a NUL byte in a header', data: () => message({ extra: 'X-Note: a\0b\r\n' }), reply: /^550 5\.6\.0 message refused: it contains a NUL byte at byte \d+$/, code: 'MESSAGE_NUL_BYTE' },
    { name: 'a header line that is no field', data: () => message({ extra: 'ceci n est pas un champ\r\n' }), reply: '550 5.6.0 message refused: line 6 of the header section is not a header field (name: value)', code: 'MESSAGE_HEADER_MALFORMED' },
    { name: 'no From', data: () => message({ omit: ['From'] }), reply: '550 5.6.0 message refused: it has no From header (RFC 5322 requires one)', code: 'MESSAGE_HEADER_MISSING' },
    { name: 'no Date', data: () => message({ omit: ['Date'] }), reply: '550 5.6.0 message refused: it has no Date header (RFC 5322 requires one)', code: 'MESSAGE_HEADER_MISSING' },
    { name: 'two From headers', data: () => message({ extra: `From: <autre@${B}>\r\n` }), reply: '550 5.6.0 message refused: it has 2 From headers (RFC 5322 allows one)', code: 'MESSAGE_HEADER_REPEATED' },
    { name: 'two Subject headers', data: () => message({ extra: 'Subject: encore\r\n' }), reply: '550 5.6.0 message refused: it has 2 Subject headers (RFC 5322 allows one)', code: 'MESSAGE_HEADER_REPEATED' },
    {
      name: 'a From with two mailboxes',
      data: () => message({ from: `labo@${B}>, <ceo@banque-en-ligne.example` }),
      reply: `550 5.6.0 message refused: the From header "Laboratoire <labo@${B}>, <ceo@banque-en-ligne.example>" must name exactly one mailbox`,
      code: 'MESSAGE_FROM_INVALID',
    },
    {
      name: 'a From outside the trust space',
      data: () => message({ from: 'ceo@banque-en-ligne.example' }),
      reply: '550 5.7.1 From header domain banque-en-ligne.example is not in the MSSante trust space (it is not on the liste blanche)',
      code: 'DOMAIN_NOT_WHITELISTED',
    },
    {
      name: 'a From in our own domain (a forged local professional)',
      data: () => message({ from: martin.address }),
      reply: `550 5.7.1 message refused: the From header domain ${A} is not one of the domains of the operator delivering it (${B}); an operator delivers the mail of its own domains only`,
      code: 'FROM_NOT_PEER_DOMAIN',
    },
    {
      name: "a From in another operator's domain of the liste blanche",
      data: () => message({ from: `direction@${C}` }),
      reply: `550 5.7.1 message refused: the From header domain ${C} is not one of the domains of the operator delivering it (${B}); an operator delivers the mail of its own domains only`,
      code: 'FROM_NOT_PEER_DOMAIN',
    },
    {
      name: 'raw UTF-8 in a header without SMTPUTF8',
      data: () => Buffer.from(message({ extra: 'X-Objet: résultat d’analyse\r\n' }), 'utf8'),
      reply: '550 5.6.7 message refused: the X-Objet header contains non-ASCII bytes; UTF-8 headers need SMTPUTF8 in MAIL FROM (RFC 6532), otherwise encode them (RFC 2047)',
      code: 'MESSAGE_HEADER_8BIT',
    },
    {
      name: 'invalid UTF-8 in a header, under SMTPUTF8',
      smtputf8: true,
      data: () => Buffer.concat([Buffer.from(headers({ extra: 'Subject2: ' })), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('\r\n\r\nx\r\n.\r\n')]),
      reply: '550 5.6.0 message refused: the Subject2 header is not valid UTF-8',
      code: 'MESSAGE_HEADER_NOT_UTF8',
    },
  ];

  it.each(cases)('$name', async (c) => {
    const t = await mx();
    expect(await t.cmd(`MAIL FROM:<labo@${B}>${c.smtputf8 ? ' SMTPUTF8' : ''}`)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd(`RCPT TO:<${martin.address}>`)).toBe('250 2.1.5 Accepted');
    const reply = await t.data(c.data());
    if (typeof c.reply === 'string') expect(reply).toBe(c.reply);
    else expect(reply).toMatch(c.reply);
    await deliverGood(t);
    t.close();
    expect(await refusedCodes()).toContain(c.code);
  });

  it("delivers a From in another of the peer operator's domains (same DNCertificatOperateur)", async () => {
    const t = await mx();
    await deliverGood(t, { from: `accueil@${B_OTHER}` });
    t.close();
  });

  it('delivers UTF-8 headers under SMTPUTF8', async () => {
    const t = await mx();
    expect(await t.cmd(`MAIL FROM:<labo@${B}> SMTPUTF8`)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd(`RCPT TO:<${martin.address}>`)).toBe('250 2.1.5 Accepted');
    const id = newId();
    expect(await t.data(Buffer.from(message({ id, extra: 'X-Objet: résultat d’analyse\r\n' }), 'utf8'))).toMatch(/^250 2\.0\.0 message accepted/);
    acknowledged.set(id, [martin.address]);
    t.close();
  });

  it('refuses a non-ASCII address without SMTPUTF8 (553 5.6.7)', async () => {
    const t = await mx();
    expect(await t.cmd(`MAIL FROM:<labo@${B}>`)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd(`RCPT TO:<josé@${A}>`)).toBe(`553 5.6.7 the address jose@${A} has non-ASCII characters: announce SMTPUTF8 in MAIL FROM (RFC 6531)`);
    t.close();
  });
});

describe('recipients per transaction', () => {
  it('MX: the 101st RCPT gets 452 4.5.3, the 100 are delivered, the next transaction delivers the rest; journalled once', async () => {
    const t = await mx();
    expect(await t.cmd(`MAIL FROM:<labo@${B}>`)).toBe('250 2.1.0 Accepted');
    for (const box of boxes.slice(0, 100)) expect(await t.cmd(`RCPT TO:<${box}>`)).toBe('250 2.1.5 Accepted');
    // A repeated recipient is not a new one.
    expect(await t.cmd(`RCPT TO:<${boxes[0]}>`)).toBe('250 2.1.5 Accepted');
    const over = 'too many recipients: at most 100 per message; send the others in another transaction';
    expect(await t.cmd(`RCPT TO:<${boxes[100]}>`)).toBe(`452 4.5.3 ${over}`);
    expect(await t.cmd(`RCPT TO:<${martin.address}>`)).toBe(`452 4.5.3 ${over}`);
    const first = newId();
    expect(await t.data(message({ id: first, to: 'liste@mssante.localhost' }))).toMatch(/^250 2\.0\.0 message accepted/);
    acknowledged.set(first, boxes.slice(0, 100));
    expect(await t.cmd(`MAIL FROM:<labo@${B}>`)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd(`RCPT TO:<${boxes[100]}>`)).toBe('250 2.1.5 Accepted');
    expect(await t.cmd(`RCPT TO:<${martin.address}>`)).toBe('250 2.1.5 Accepted');
    const second = newId();
    expect(await t.data(message({ id: second }))).toMatch(/^250 2\.0\.0 message accepted/);
    acknowledged.set(second, [boxes[100], martin.address]);
    t.close();
    const received = await a.platform.journal.list({ type: 'smtp.received', subject: first });
    expect((received[0].details.local as string[]).length).toBe(100);
    const events = await limitEvents('recipients');
    expect(events).toHaveLength(1);
    expect(events[0].details).toMatchObject({ front: 'mx', code: 'SMTP_TOO_MANY_RECIPIENTS', max: 100, reply: `452 4.5.3 ${over}` });
  });

  it('submission: the same limit; a client that keeps going past another 100 is cut by the error limit', async () => {
    const t = await submission();
    expect(await t.cmd(`MAIL FROM:<${martin.address}>`)).toBe('250 2.1.0 Accepted');
    for (const box of boxes.slice(0, 100)) expect(await t.cmd(`RCPT TO:<${box}>`)).toBe('250 2.1.5 Accepted');
    // 100 more 452s are the overshoot a client that does not read them may make...
    for (let i = 0; i < 100; i++) expect(await t.cmd(`RCPT TO:<encore${i}@${A}>`)).toMatch(/^452 4\.5\.3 too many recipients/);
    // ...past it, each counts as an error.
    for (let i = 0; i < MAX_ERRORS - 1; i++) expect(await t.cmd(`RCPT TO:<toujours${i}@${A}>`)).toMatch(/^452 4\.5\.3 /);
    expect(await t.cmd(`RCPT TO:<fin@${A}>`)).toMatch(/^452 4\.5\.3 /);
    expect(await t.reply()).toBe(`421 4.7.0 too many errors on this connection (${MAX_ERRORS}); closing it`);
    t.close();
    expect((await limitEvents('recipients')).map((e) => e.details.front)).toContain('submission');
  });
});

describe('errors per connection', () => {
  it(`MX: after ${MAX_ERRORS} refusals, 421 4.7.0 and the connection is closed; journalled; a new connection delivers`, async () => {
    const t = await mx();
    const bad = ['DATA', 'MAIL FROM:<pas une adresse', `RCPT TO:<${martin.address}>`, 'VRFY', 'MAIL FROM:<x@example.org>'];
    const replies: string[] = [];
    for (let i = 0; i < MAX_ERRORS - 1; i++) replies.push(await t.cmd(bad[i % bad.length]));
    expect(replies.every((r) => /^5\d\d 5\.\d\.\d+ /.test(r))).toBe(true);
    expect(await t.cmd('NOOP')).toBe('250 2.0.0 OK');
    // The last one: its own refusal, then 421, then the server closes.
    expect(await t.cmd('DATA')).toBe('503 5.5.1 Error: need RCPT command');
    expect(await t.reply()).toBe(`421 4.7.0 too many errors on this connection (${MAX_ERRORS}); closing it`);
    expect(await t.reply()).toBe('(connection closed)');
    const events = (await limitEvents('errors')).filter((e) => e.details.front === 'mx');
    expect(events).toHaveLength(1);
    expect(events[0].details).toMatchObject({ code: 'SMTP_TOO_MANY_ERRORS', max: MAX_ERRORS, remote: '127.0.0.1', reply: `421 4.7.0 too many errors on this connection (${MAX_ERRORS}); closing it` });
    const u = await mx();
    await deliverGood(u);
    u.close();
  });

  it('an accepted message starts the count again', async () => {
    const t = await mx();
    for (let i = 0; i < MAX_ERRORS - 1; i++) expect(await t.cmd('DATA')).toMatch(/^503 /);
    await deliverGood(t);
    for (let i = 0; i < MAX_ERRORS - 1; i++) expect(await t.cmd('DATA')).toMatch(/^503 /);
    expect(await t.cmd('NOOP')).toBe('250 2.0.0 OK');
    t.close();
  });

  it('submission: the same limit', async () => {
    const t = await submission();
    expect(await t.cmd(`MAIL FROM:<${martin.address}>`)).toBe('250 2.1.0 Accepted');
    for (let i = 0; i < MAX_ERRORS - 1; i++) expect(await t.cmd(`RCPT TO:<patient${i}@gmail.com>`)).toMatch(/^550 5\.7\.1 recipient domain gmail\.com/);
    expect(await t.cmd('RCPT TO:<patient@gmail.com>')).toMatch(/^550 5\.7\.1 /);
    expect(await t.reply()).toBe(`421 4.7.0 too many errors on this connection (${MAX_ERRORS}); closing it`);
    expect(await t.reply()).toBe('(connection closed)');
    expect((await limitEvents('errors')).map((e) => e.details.front)).toContain('submission');
  });
});

describe('the submission content rules', () => {
  it('NUL, 8-bit headers, missing Date, two From: refused; the session then sends', async () => {
    const t = await submission();
    const attempt = async (data: string | Buffer) => {
      expect(await t.cmd(`MAIL FROM:<${martin.address}>`)).toBe('250 2.1.0 Accepted');
      expect(await t.cmd(`RCPT TO:<${boxes[0]}>`)).toBe('250 2.1.5 Accepted');
      return t.data(data);
    };
    const from = martin.address;
    expect(await attempt(message({ from, body: 'a\0b\r\n' }))).toMatch(/^550 5\.6\.0 message refused: it contains a NUL byte at byte \d+$/);
    expect(await attempt(Buffer.from(message({ from, extra: 'Subject2: réponse\r\n' }), 'utf8'))).toMatch(/^550 5\.6\.7 message refused: the Subject2 header contains non-ASCII bytes/);
    expect(await attempt(message({ from, omit: ['Date'] }))).toBe('550 5.6.0 message refused: it has no Date header (RFC 5322 requires one)');
    expect(await attempt(message({ from, extra: `From: <${boxes[0]}>\r\n` }))).toBe('550 5.6.0 message refused: it has 2 From headers (RFC 5322 allows one)');
    const id = newId();
    expect(await attempt(message({ from, id, to: boxes[0] }))).toMatch(/^250 2\.0\.0 message accepted/);
    acknowledged.set(id, [boxes[0]]);
    t.close();
  });
});

describe('unknown recipients per peer, across connections (address harvesting)', () => {
  it(`after ${UNKNOWN_LIMIT} unknown recipients, every recipient from that peer or address gets 450 4.7.1; journalled once per key`, async () => {
    const harvest = 'too many unknown recipients from operator peer2.mssante.localhost (at most 12 within 1 h); recipients are refused for now, try again later';
    const replies: string[] = [];
    // Five per connection: under the per-connection error limit, only the per-peer count sees them.
    for (let s = 0; s < 3; s++) {
      const t = await mx(peer2, '127.0.0.2');
      expect(await t.cmd(`MAIL FROM:<labo@${P2}>`)).toBe('250 2.1.0 Accepted');
      for (let i = 0; i < 5; i++) replies.push(await t.cmd(`RCPT TO:<inconnu.${s}.${i}@${A}>`));
      t.close();
    }
    expect(replies.slice(0, UNKNOWN_LIMIT).every((r) => /^550 5\.1\.1 there is no mailbox inconnu\.\d\.\d@mssante\.localhost at this operator$/.test(r))).toBe(true);
    expect(replies.slice(UNKNOWN_LIMIT)).toEqual(Array(15 - UNKNOWN_LIMIT).fill(`450 4.7.1 ${harvest}`));
    // A new connection, a mailbox that exists: the same answer, so the harvest learns nothing.
    const t = await mx(peer2, '127.0.0.2');
    expect(await t.cmd(`MAIL FROM:<labo@${P2}>`)).toBe('250 2.1.0 Accepted');
    expect(await t.cmd(`RCPT TO:<${martin.address}>`)).toBe(`450 4.7.1 ${harvest}`);
    t.close();
    // The same peer from another address is still stopped (per peer), and so is another peer from that address (per address).
    const u = await mx(peer2, '127.0.0.3');
    expect(await u.cmd(`MAIL FROM:<labo@${P2}>`)).toBe('250 2.1.0 Accepted');
    expect(await u.cmd(`RCPT TO:<${martin.address}>`)).toBe(`450 4.7.1 ${harvest}`);
    u.close();
    const v = await mx(peerB(), '127.0.0.2');
    expect(await v.cmd(`MAIL FROM:<labo@${B}>`)).toBe('250 2.1.0 Accepted');
    expect(await v.cmd(`RCPT TO:<${martin.address}>`)).toMatch(/^450 4\.7\.1 too many unknown recipients from address 127\.0\.0\.2 /);
    v.close();
    const events = await limitEvents('unknown-recipients');
    expect(events.map((e) => e.subject).sort()).toEqual(['address 127.0.0.2', `operator ${P2}`]);
    expect(events[0].details).toMatchObject({ front: 'mx', code: 'SMTP_UNKNOWN_RECIPIENT_RATE', max: UNKNOWN_LIMIT, windowMs: 3_600_000 });
    // Every 450 is in the record too: tallied per connection, one event when it closes.
    const refused = 15 - UNKNOWN_LIMIT + 3;
    await until(async () => {
      const tallies = (await a.platform.journal.list({ type: 'smtp.refused', limit: 1000 })).filter((e) => e.details.limited && e.details.code === 'SMTP_UNKNOWN_RECIPIENT_RATE');
      return tallies.reduce((n, e) => n + (e.details.count as number), 0) === refused;
    });
  });

  it('the other peer, from its own address, is served', async () => {
    const t = await mx();
    await deliverGood(t);
    t.close();
  });
});

describe('nothing acknowledged was lost', () => {
  it('every message answered 250 reached every one of its recipients', async () => {
    await until(async () => {
      const delivered = await a.platform.journal.list({ type: 'smtp.delivered', limit: 1000 });
      const got = new Map<string, Set<string>>();
      for (const e of delivered) for (const r of e.details.rcpts as string[]) got.set(e.subject ?? "", (got.get(e.subject ?? "") ?? new Set()).add(r));
      return [...acknowledged].every(([id, rcpts]) => rcpts.every((r) => got.get(id)?.has(r)));
    });
    expect(acknowledged.size).toBeGreaterThan(20);
  });
});
