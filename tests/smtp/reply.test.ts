import { describe, expect, it } from 'vitest';
import { catalogue, type ErrorCode } from '../../core/errors.js';
import { principalLabel, refuse } from '../../core/policy/index.js';
import { ascii } from '../../core/ascii.js';
import { smtpError, smtpRefusal } from '../../smtp/reply.js';

// Every SMTP reply made from the catalogue is ASCII, whatever the sentence and the details
// put in it: a property of the reply function, checked over every entry with an SMTP form.

const HOSTILE = 'Hôpital « Sainte-Thérèse » — l’unité…\u00a0ü\u4e2d\r\nRCPT TO:<x@y>\t\x00\x7f';
const asciiOnly = /^[\x20-\x7e]*$/;

describe('smtpError', () => {
  const withSmtp = (Object.keys(catalogue) as ErrorCode[]).filter((c) => 'smtp' in catalogue[c]);

  it('covers the SMTP entries of the catalogue', () => {
    expect(withSmtp.length).toBeGreaterThan(20);
  });

  it.each(withSmtp)('%s: ASCII only, its enhanced code first, of the reply code’s class', (code) => {
    const entry = catalogue[code] as { smtp: { code: number; enhanced: string }; text: string };
    const details = Object.fromEntries([...entry.text.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], HOSTILE]));
    const err = smtpError(code, details);
    expect(err.message).toMatch(asciiOnly);
    expect(err.message.startsWith(`${entry.smtp.enhanced} `)).toBe(true);
    expect(entry.smtp.enhanced[0]).toBe(String(entry.smtp.code)[0]);
    expect(err.responseCode).toBe(entry.smtp.code);
    // Nothing of the sentence is lost but the characters ASCII cannot carry.
    expect(err.message).not.toMatch(/\{\w+\}/);
  });

  it('keeps an application certificate fingerprint readable (the "…" of principalLabel)', () => {
    const who = principalLabel({ kind: 'application', fingerprint: 'f777ae2e4ebf8a9d0123456789abcdef' });
    const err = smtpRefusal(refuse('SEND_AS_FORBIDDEN', { principal: who, address: 'labo@mssante.fr', why: 'this certificate is not registered for the mailbox' }));
    expect(err.message).toBe('5.7.1 application certificate f777ae2e4ebf8a9d... may not send as labo@mssante.fr: this certificate is not registered for the mailbox');
  });
});

describe('ascii', () => {
  it('transliterates French text and typography, never passes a control character', () => {
    expect(ascii('MSSanté « opérateur » – l’hôpital… cœur 10\u00a0€')).toBe('MSSante " operateur " - l\'hopital... coeur 10 EUR');
    expect(ascii('a\r\nb\tc\x00')).toBe('a  b c ');
    expect(ascii('\u4e2d\u{1F600}')).toMatch(asciiOnly);
  });
});
