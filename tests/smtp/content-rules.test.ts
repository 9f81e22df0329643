import { describe, expect, it } from 'vitest';
import { checkContent, oneMailbox } from '../../smtp/content-rules.js';
import { headerFields } from '../../smtp/message.js';

// The content rules on recorded messages: each rule refuses with its own code and names what
// it found; a conforming message passes and yields its From mailbox.

const DATE = 'Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n';
const msg = (headers: string, body = 'Bonjour.\r\n') => Buffer.from(`${headers}\r\n${body}`, 'utf8');
const good = `From: Laboratoire <labo@peer.mssante.fr>\r\nTo: <dr.martin@mssante.fr>\r\nSubject: test\r\n${DATE}Message-ID: <1@peer.mssante.fr>\r\n`;
const ascii = { smtpUtf8: false };

describe('checkContent', () => {
  it('passes a conforming message and returns its From mailbox', () => {
    expect(checkContent(msg(good), ascii)).toEqual({ ok: true, from: { address: 'labo@peer.mssante.fr', domain: 'peer.mssante.fr' }, messageId: '<1@peer.mssante.fr>' });
  });

  it('passes folded headers and an 8-bit body', () => {
    const m = msg(`From:\r\n <labo@peer.mssante.fr>\r\nSubject: a long\r\n\tsubject\r\n${DATE}`, 'Résultat : 5,2 mmol/L\r\n');
    expect(checkContent(m, ascii)).toMatchObject({ ok: true, from: { address: 'labo@peer.mssante.fr' } });
  });

  it('refuses a NUL byte anywhere, naming its offset', () => {
    const body = msg(good, 'before\0after\r\n');
    expect(checkContent(body, ascii)).toEqual({ ok: false, problem: { code: 'MESSAGE_NUL_BYTE', details: { offset: body.indexOf(0) } } });
    expect(checkContent(msg(`${good}X-Note: a\0b\r\n`), ascii)).toMatchObject({ ok: false, problem: { code: 'MESSAGE_NUL_BYTE' } });
  });

  it('refuses a header line that is not a field', () => {
    expect(checkContent(msg(`${good}this is not a header\r\n`), ascii)).toEqual({ ok: false, problem: { code: 'MESSAGE_HEADER_MALFORMED', details: { line: 6 } } });
    expect(checkContent(msg(` continued first\r\n${good}`), ascii)).toMatchObject({ problem: { code: 'MESSAGE_HEADER_MALFORMED', details: { line: 1 } } });
    expect(checkContent(msg(`${good}Bad Name: x\r\n`), ascii)).toMatchObject({ problem: { code: 'MESSAGE_HEADER_MALFORMED' } });
    expect(checkContent(msg(`${good}Sujet\u00e9: x\r\n`), { smtpUtf8: true })).toMatchObject({ problem: { code: 'MESSAGE_HEADER_MALFORMED' } });
  });

  it('refuses 8-bit header bytes without SMTPUTF8, takes valid UTF-8 with it, refuses invalid UTF-8', () => {
    const utf8 = msg(`${good}X-Objet: résultat d’analyse\r\n`);
    expect(checkContent(utf8, ascii)).toEqual({ ok: false, problem: { code: 'MESSAGE_HEADER_8BIT', details: { header: 'X-Objet' } } });
    expect(checkContent(utf8, { smtpUtf8: true })).toMatchObject({ ok: true });
    const broken = Buffer.concat([Buffer.from(`${good}Subject2: `), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('\r\n\r\nx\r\n')]);
    expect(checkContent(broken, { smtpUtf8: true })).toEqual({ ok: false, problem: { code: 'MESSAGE_HEADER_NOT_UTF8', details: { header: 'Subject2' } } });
    expect(checkContent(broken, ascii)).toMatchObject({ problem: { code: 'MESSAGE_HEADER_8BIT' } });
    // Latin-1 "é" (one byte 0xE9) is 8-bit, and not UTF-8 either.
    const latin1 = Buffer.concat([Buffer.from(`${good}Subject: r`), Buffer.from([0xe9]), Buffer.from('sultat\r\n\r\nx\r\n')]);
    expect(checkContent(latin1, { smtpUtf8: true })).toMatchObject({ problem: { code: 'MESSAGE_HEADER_NOT_UTF8' } });
  });

  it('takes a UTF-8 From mailbox under SMTPUTF8', () => {
    expect(checkContent(msg(`From: José <josé@hôpital.fr>\r\n${DATE}`), { smtpUtf8: true })).toEqual({ ok: true, from: { address: 'josé@hôpital.fr', domain: 'hôpital.fr' } });
  });

  it('refuses a missing From or Date, several From, From not one mailbox', () => {
    expect(checkContent(msg(`To: <a@b.fr>\r\n${DATE}`), ascii)).toEqual({ ok: false, problem: { code: 'MESSAGE_HEADER_MISSING', details: { header: 'From' } } });
    expect(checkContent(msg('From: <labo@peer.mssante.fr>\r\n'), ascii)).toEqual({ ok: false, problem: { code: 'MESSAGE_HEADER_MISSING', details: { header: 'Date' } } });
    expect(checkContent(msg(`${good}From: <autre@peer.mssante.fr>\r\n`), ascii)).toEqual({ ok: false, problem: { code: 'MESSAGE_HEADER_REPEATED', details: { header: 'From', count: 2 } } });
    for (const from of ['<a@peer.mssante.fr>, <b@peer.mssante.fr>', 'undisclosed-senders:;', 'Equipe: <a@peer.mssante.fr>;', 'no address', '<@peer.mssante.fr>', '<a@>', '']) {
      const r = checkContent(msg(`From: ${from}\r\n${DATE}`), ascii);
      expect(r, from).toEqual({ ok: false, problem: { code: 'MESSAGE_FROM_INVALID', details: { from: JSON.stringify(from) } } });
    }
  });

  it('on submission, a missing or unusable From is FROM_HEADER_INVALID (the sentence says "you may send as")', () => {
    const sub = { smtpUtf8: false, fromCode: 'FROM_HEADER_INVALID' as const };
    expect(checkContent(msg(`To: <a@b.fr>\r\n${DATE}`), sub)).toEqual({ ok: false, problem: { code: 'FROM_HEADER_INVALID', details: { from: '""' } } });
    expect(checkContent(msg(`From: a@b.fr, c@d.fr\r\n${DATE}`), sub)).toMatchObject({ problem: { code: 'FROM_HEADER_INVALID' } });
  });

  it('refuses a repeated singleton header (RFC 5322 §3.6), whatever its case', () => {
    for (const name of ['Date', 'Sender', 'Reply-To', 'To', 'Cc', 'Bcc', 'Message-ID', 'In-Reply-To', 'References', 'Subject']) {
      const r = checkContent(msg(`${good}${name.toUpperCase()}: x\r\n${name}: y\r\n`), ascii);
      expect(r, name).toMatchObject({ ok: false, problem: { code: 'MESSAGE_HEADER_REPEATED', details: { header: name } } });
    }
    // Fields that may repeat do.
    expect(checkContent(msg(`${good}Received: a\r\nReceived: b\r\nComments: c\r\nComments: d\r\n`), ascii)).toMatchObject({ ok: true });
  });

  it('reads a header section of 100,000 fields in one pass, keeping nothing per field', () => {
    const many = Array.from({ length: 50_000 }, (_, i) => `X-Champ-${i}: valeur ${i}\r\nReceived: from relais${i}\r\n`).join('');
    expect(checkContent(msg(`${good}${many}`), ascii)).toMatchObject({ ok: true });
    const longFrom = `From: ${'<a@peer.mssante.fr>, '.repeat(5000)}<b@peer.mssante.fr>\r\n${DATE}`;
    expect(checkContent(msg(longFrom), ascii)).toMatchObject({ ok: false, problem: { code: 'MESSAGE_FROM_INVALID' } });
  }, 60_000);

  it('a message that is only headers (no empty line) is read to its end', () => {
    expect(checkContent(Buffer.from(`From: <labo@peer.mssante.fr>\r\n${DATE}`.trimEnd()), ascii)).toMatchObject({ ok: true });
  });
});

describe('headerFields', () => {
  it('stops at the empty line: a body line looking like a header is not one', () => {
    const m = msg('From: <a@b.fr>\r\n', 'From: <c@d.fr>\r\n');
    expect([...headerFields(m)].map((f) => ('name' in f ? f.name : f))).toEqual(['From']);
  });

  it('accepts obsolete white space before the colon (RFC 5322 §4.5)', () => {
    expect([...headerFields(msg('Subject : x\r\n'))]).toMatchObject([{ name: 'Subject' }]);
  });
});

describe('oneMailbox', () => {
  it('takes a display name and angle brackets, lower-cases the domain', () => {
    expect(oneMailbox('"Martin, Paul" <paul.martin@Peer.MSSante.fr>')).toEqual({ address: 'paul.martin@Peer.MSSante.fr', domain: 'peer.mssante.fr' });
  });
});
