// Property-based fuzzing of what the SMTP fronts read from peers and clients: the envelope
// (MAIL FROM / RCPT TO as smtp-server parses them, then as the fronts normalise them for the
// policy), the header section (headerSection, headerValue), the line-ending check against
// SMTP smuggling (LineEndingCheck), the From: address (nodemailer's addressparser), and the
// trace header written from client-supplied names (receivedHeader). For random and mutated
// commands, headers and byte streams:
//   - nothing throws;
//   - an accepted address is one line without controls, and its domain is looked up on the
//     liste blanche under the same key whether the peer wrote its A-label or its U-label;
//   - generated headers are found and unfolded as written; the line-ending check reports the
//     first bare CR or LF wherever TCP cut the stream, and passes every byte through;
//   - the Received: header stays one header whatever the client's names hold.
/// <reference types="vite/client" />
import assert from 'node:assert/strict';
import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { describe, expect, it } from 'vitest';
import { domainForms } from '../../annuaire/whitelist/parse.js';
import { normaliseAddress } from '../../core/policy/decisions.js';
import { domainOf } from '../../smtp/fronts.js';
import * as message from '../../smtp/message.js';
import { check, checkAsync, cuts, MAX_RETAINED_GROWTH, mutated, pieces, retainedGrowth, soup } from './harness.js';

const { headerSection, LineEndingCheck, receivedHeader } = message;

// The header parsers changed with the MX content rules (branch mx: headerFields, fieldValue,
// smtp/content-rules.ts replacing headerValue): each set of properties runs where its
// functions exist, so this file holds before and after that change.
type HeaderField = { name: string; line: number; valueStart: number; end: number };
const api = message as Record<string, unknown>;
const headerValue = api.headerValue as ((headers: string, name: string) => string | undefined) | undefined;
const headerFields = api.headerFields as ((m: Buffer) => Generator<HeaderField | { malformed: number }>) | undefined;
const fieldValue = api.fieldValue as ((m: Buffer, f: HeaderField) => string) | undefined;
const contentRules = Object.values(import.meta.glob('../../smtp/content-rules.ts', { eager: true }))[0] as
  | {
      checkContent(m: Buffer, o: { smtpUtf8: boolean; fromCode?: 'FROM_HEADER_INVALID' }): { ok: true; from: { address: string; domain: string }; messageId?: string } | { ok: false; problem: { code: string; details: Record<string, unknown> } };
      oneMailbox(v: string): { address: string; domain: string } | null;
    }
  | undefined;

/** smtp-server's own parser of MAIL FROM / RCPT TO, with the options the fronts give it. */
const parseAddressCommand = (name: 'mail from' | 'rcpt to', command: string): { address: string; args: false | Record<string, string | true> } | false =>
  (SMTPConnection.prototype as unknown as { _parseAddressCommand(this: unknown, n: string, c: string): ReturnType<typeof parseAddressCommand> })._parseAddressCommand.call(
    { _server: { options: { lenientAddressParsing: false }, logger: { error() {}, info() {}, debug() {} } }, session: {}, id: 'fuzz' },
    name,
    command,
  );

// ---------------------------------------------------------------------------------------
// Envelope.

const label = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcxyzABC0189-'), minLength: 1, maxLength: 10 }),
  fc.string({ unit: fc.constantFrom(...'aéèôçüœßÉ字-'), minLength: 1, maxLength: 6 }),
  fc.constantFrom('xn--hpital-fta', 'xn--', 'xn--zz', 'XN--HPITAL-FTA'),
).filter((l) => !l.startsWith('-') && !l.endsWith('-'));
const domain = fc.array(label, { minLength: 1, maxLength: 3 }).chain((ls) => fc.constantFrom('fr', 'mssante.fr').map((tld) => [...ls, tld].join('.')));
const local = fc.string({ unit: fc.constantFrom(...'abcXYZ019.+-_=!#$%&\'*/?^`{|}~'), minLength: 1, maxLength: 20 });
const ENVELOPE_TOKENS = ['MAIL FROM:', 'RCPT TO:', 'mail from:', '<', '>', '<>', '@', '@@', ':', ',', ' ', '  ', '\t', '"', '\\', 'SIZE=100', 'BODY=8BITMIME', 'SMTPUTF8', 'NOTIFY=SUCCESS', 'ORCPT=rfc822;a@b.fr', 'ENVID=a+0D+0Ab', '+0A', 'postmaster', '[127.0.0.1]', '[IPv6:::1]', 'xn--', 'é', '\0', '\r', '\u200b', '\u0085', '.', '..'];

const COMMAND = fc.oneof(
  fc.tuple(fc.constantFrom('MAIL FROM', 'RCPT TO'), local, domain, fc.constantFrom('', ' SIZE=100', ' BODY=8BITMIME SMTPUTF8', ' NOTIFY=SUCCESS,FAILURE')).map(([c, l, d, p]) => `${c}:<${l}@${d}>${p}`),
  mutated(fc.tuple(fc.constantFrom('MAIL FROM:', 'RCPT TO:'), local, domain).map(([c, l, d]) => Buffer.from(`${c}<${l}@${d}>`, 'utf8')), ENVELOPE_TOKENS.map((t) => Buffer.from(t, 'utf8').toString('latin1'))).map((b) => b.toString('utf8')),
  soup(ENVELOPE_TOKENS.map((t) => Buffer.from(t, 'utf8').toString('latin1')), 12).map((b) => b.toString('utf8')),
);

describe('SMTP envelope addresses', () => {
  it('smtp-server and the fronts never throw; an accepted address is one clean line whose domain has one lookup key, A-label or U-label', async () => {
    const grown = await retainedGrowth(() =>
      check(COMMAND, (line) => {
        const name = /^rcpt/i.test(line) ? 'rcpt to' : 'mail from';
        const parsed = parseAddressCommand(name, line);
        if (!parsed || !parsed.address) return;
        const address = normaliseAddress(parsed.address);
        assert.doesNotMatch(address, /[\x00-\x20\x7f-\x9f<>\u200b\u2060\ufeff]/u);
        if (address === 'postmaster') return;
        assert.ok(address.length <= 253 * 4);
        const d = domainOf(address);
        // What the peer wrote (an A-label is turned into a U-label by smtp-server): same key.
        const written = /@([^@>\s]+)>/.exec(line)?.[1];
        if (written && !written.startsWith('[')) {
          const key = domainForms(d)?.ascii;
          // domainToASCII, not domainForms: a name mixing an A-label and a U-label is one
          // domain (domainForms refuses such a mix only where we write names ourselves).
          if (key !== undefined) assert.equal(key, domainToASCII(written.toLowerCase()), `${written} → ${d}`);
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });

  it('a generated address comes out as written (its domain in U-label form), in either command', () => {
    check(fc.tuple(fc.constantFrom('mail from', 'rcpt to') as fc.Arbitrary<'mail from' | 'rcpt to'>, local, domain), ([name, l, d]) => {
      if (l.startsWith('.') || l.endsWith('.') || l.includes('..') || l.length + d.length + 1 > 253) return;
      const ascii = domainToASCII(d.toLowerCase());
      if (!ascii) return; // not a domain name: refused, covered above
      const parsed = parseAddressCommand(name, `${name.toUpperCase()}:<${l}@${ascii}>`);
      assert.ok(parsed, `${l}@${ascii} refused`);
      assert.equal(domainForms(domainOf(normaliseAddress(parsed.address)))?.ascii, ascii);
      assert.equal(parsed.address.slice(0, parsed.address.lastIndexOf('@')), l);
    });
  });
});

// ---------------------------------------------------------------------------------------
// Header section.

const fieldName = fc.oneof(fc.constantFrom('From', 'To', 'Subject', 'Message-ID', 'X-MSS-INS', 'from', 'FROM'), fc.string({ unit: fc.constantFrom(...'abcXYZ-09'), minLength: 1, maxLength: 12 }));
const fieldText = fc.string({ unit: fc.oneof(fc.constantFrom('a', 'Z', ' ', '\t', ':', '<', '>', '@', '"', '(', ')', ',', ';', '\\', '=?utf-8?q?', 'é'), fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c))), maxLength: 30 });
const field = fc.record({ name: fieldName, lines: fc.array(fieldText, { minLength: 1, maxLength: 3 }) });

describe.runIf(headerValue)('SMTP header section (headerValue)', () => {
  it('finds the first occurrence of a header, case-insensitively, unfolded as written', () => {
    check(fc.tuple(fc.array(field, { minLength: 1, maxLength: 8 }), fieldName, fc.string({ maxLength: 40 })), ([fields, wanted, body]) => {
      // A continuation line starts with a space; the first line holds the start of the value.
      const text = fields.map((f) => `${f.name}: ${f.lines[0]}${f.lines.slice(1).map((l) => `\r\n ${l}`).join('')}\r\n`).join('');
      const section = headerSection(Buffer.from(`${text}\r\n${body}`, 'latin1'));
      assert.equal(section, text);
      const first = fields.find((f) => f.name.toLowerCase() === wanted.toLowerCase());
      const spaced = (s: string) => s.replace(/[ \t]+/g, ' ').trim();
      const got = headerValue!(section, wanted);
      assert.equal(got === undefined ? undefined : spaced(got), first && spaced(first.lines.join(' ')));
    });
  });

  it('never throws on hostile bytes, and holds at most 64 KiB of a message without a header end', async () => {
    const grown = await retainedGrowth(() =>
      check(soup(['\r\n', '\n', '\r', '\r\n\r\n', 'From:', 'From: a@b.fr', ' ', '\t', ':', '\0', '\xff', 'x'.repeat(1000)], 80), (m) => {
        const section = headerSection(m);
        assert.ok(section.length <= Math.max(64 * 1024, m.indexOf('\r\n\r\n') + 2));
        for (const name of ['From', 'Message-ID', 'To']) headerValue!(section, name);
        const from = headerValue!(section, 'From');
        if (from !== undefined) assert.doesNotMatch(from, /\r\n/);
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

/** Header sections as DATA delivers them after the line-ending check: CRLF only. */
const HEADER_TOKENS = ['\r\n', '\r\n\r\n', '\r\n ', '\r\n\t', 'From:', 'From: a@b.fr', 'From: "A, B" <a@b.fr>', 'From: a@b.fr, c@d.fr', 'From: undisclosed:;', 'Date: Mon, 1 Jan 2024 00:00:00 +0000', 'Message-ID: <x@y>', 'Subject: é', 'To:', ' ', '\t', ':', 'X-A', ' :', '\0', '\xc3\xa9', '\xff', '<', '>', '@', '"', '(', ')', ','];
const crlfOnly = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');

describe.runIf(headerFields && fieldValue)('SMTP header section (headerFields, fieldValue)', () => {
  it('reads every generated field back: its name, its value unfolded and trimmed', () => {
    check(fc.tuple(fc.array(field, { minLength: 1, maxLength: 8 }), fc.string({ maxLength: 40 })), ([fields, body]) => {
      const text = fields.map((f) => `${f.name}: ${f.lines[0]}${f.lines.slice(1).map((l) => `\r\n ${l}`).join('')}\r\n`).join('');
      const m = Buffer.from(`${text}\r\n${body}`, 'latin1');
      const got = [...headerFields!(m)];
      assert.deepEqual(
        got.map((f) => ('malformed' in f ? f : [f.name, fieldValue!(m, f).replace(/[ \t]+/g, ' ')])),
        fields.map((f) => [f.name, Buffer.from(`${f.lines[0]}${f.lines.slice(1).map((l) => ` ${l}`).join('')}`, 'latin1').toString('utf8').replace(/[ \t]+/g, ' ').trim()]),
      );
    });
  });

  it('never throws on hostile header sections: fields within the message, at most one malformed line and it ends the walk', async () => {
    const grown = await retainedGrowth(() =>
      check(soup(HEADER_TOKENS, 60).map(crlfOnly), (m) => {
        let malformed = false;
        for (const f of headerFields!(m)) {
          assert.equal(malformed, false, 'a field after a malformed line');
          if ('malformed' in f) {
            malformed = true;
            continue;
          }
          assert.match(f.name, /^[\x21-\x39\x3b-\x7e]+$/);
          assert.ok(f.valueStart <= f.end + 1 && f.end <= m.length, `${f.valueStart}..${f.end} of ${m.length}`);
          fieldValue!(m, f);
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

describe.runIf(contentRules)('SMTP content rules (checkContent, oneMailbox)', () => {
  it('give a verdict on any message, never an exception; an accepted From is one mailbox on one line', async () => {
    const grown = await retainedGrowth(() =>
      check(fc.tuple(soup(HEADER_TOKENS, 60).map(crlfOnly), fc.boolean(), fc.boolean()), ([m, smtpUtf8, submission]) => {
        const v = contentRules!.checkContent(m, { smtpUtf8, ...(submission ? { fromCode: 'FROM_HEADER_INVALID' as const } : {}) });
        if (v.ok) {
          assert.match(v.from.address, /^[^@\s]+@[^@\s]+$/);
          assert.equal(v.from.domain, v.from.domain.toLowerCase());
        } else assert.match(v.problem.code, /^[A-Z0-9_]+$/);
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });

  it('oneMailbox takes one address or nothing, whatever the From value holds', () => {
    const FROM_TOKENS = ['"', '<', '>', '@', ',', ';', ':', '(', ')', '\\', ' ', 'a', 'b.fr', '=?utf-8?B?w6k=?=', 'é', '\t', 'undisclosed-recipients:;', '<>', '@@'];
    check(fc.oneof(soup(FROM_TOKENS, 30).map((b) => b.toString('latin1')), fc.string({ maxLength: 60 })), (value) => {
      const r = contentRules!.oneMailbox(value);
      if (r) {
        assert.equal(r.address.split('@').length, 2);
        assert.doesNotMatch(r.address, /[\r\n]/);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------
// Line endings (SMTP smuggling).

/** The first bare LF or bare CR of the whole stream, by a direct reading of the rule. */
function firstOffence(b: Buffer): { what: 'LF' | 'CR'; offset: number } | null {
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) return { what: 'LF', offset: i };
    if (b[i] === 0x0d && b[i + 1] !== 0x0a) return { what: 'CR', offset: i };
  }
  return null;
}

async function throughCheck(chunks: Buffer[]): Promise<{ offence: InstanceType<typeof LineEndingCheck>['offence']; out: Buffer }> {
  const c = new LineEndingCheck();
  const out: Buffer[] = [];
  c.on('data', (d: Buffer) => out.push(d));
  const ended = new Promise((r) => c.on('end', r));
  for (const chunk of chunks) c.write(chunk);
  c.end();
  await ended;
  return { offence: c.offence, out: Buffer.concat(out) };
}

describe('SMTP line-ending check', () => {
  it('reports the first bare CR or LF wherever the stream was cut, and passes every byte through', async () => {
    const data = fc.oneof(
      soup(['\r\n', '\n', '\r', '\r\r\n', '\r\n.\r\n', '\n.\n', '.', 'a', '\0'], 40),
      mutated(fc.constant(Buffer.from('From: a@b.fr\r\nSubject: x\r\n\r\nHello\r\n.\r\n')), ['\r', '\n', '\n.\n', '\r\n']),
    );
    await checkAsync(fc.tuple(data, cuts), async ([b, at]) => {
      const { offence, out } = await throughCheck(pieces(b, at));
      assert.deepEqual(offence, firstOffence(b));
      assert.deepEqual(out, b);
    });
  });
});

// ---------------------------------------------------------------------------------------
// From: address and the trace header.

describe('From: address and Received: header', () => {
  it.runIf(headerValue)('addressparser never throws, and what the submission front takes from it is one line', () => {
    const FROM_TOKENS = ['"', '<', '>', '@', ',', ';', ':', '(', ')', '\\', ' ', 'a', 'b.fr', '=?utf-8?B?w6k=?=', 'é', '\t', 'undisclosed-recipients:;', '<>', '@@'];
    check(fc.oneof(soup(FROM_TOKENS, 30).map((b) => b.toString('latin1')), fc.string({ maxLength: 60 })), (value) => {
      const from = addressparser(value, { flatten: true }) as Array<{ address?: string; name?: string }>;
      assert.ok(Array.isArray(from));
      const address = from.length === 1 ? (from[0]!.address ?? '') : '';
      assert.doesNotMatch(address, /[\r\n]/);
    });
  });

  it('the Received: header stays one header (CRLF-ended, continuations indented) whatever the client named itself', () => {
    const hostile = fc.string({ unit: fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\t', '"', '(', ')', '\\', ';', 'X-Injected: 1', ' '), fc.string({ unit: 'grapheme', maxLength: 1 })), maxLength: 40 });
    check(fc.record({ helo: hostile, subject: hostile, issuer: hostile, who: fc.option(hostile, { nil: undefined }), rcpt: fc.option(hostile, { nil: undefined }) }), (r) => {
      const h = receivedHeader({
        helo: r.helo,
        remoteAddress: '192.0.2.1',
        hostname: 'mx.mssante.localhost',
        protocol: 'ESMTPS',
        queueId: 'ABCDEF',
        tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
        peerCertificate: { subject: r.subject, issuer: r.issuer, serial: '01' },
        authenticatedAs: r.who,
        recipient: r.rcpt,
        date: new Date(0),
      });
      assert.ok(h.startsWith('Received: ') && h.endsWith('\r\n'));
      const lines = h.slice(0, -2).split('\r\n');
      for (const l of lines) assert.doesNotMatch(l, /[\r\n]/);
      for (const l of lines.slice(1)) assert.match(l, /^\t/);
    });
  });
});
