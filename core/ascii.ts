// Protocol texts in US-ASCII, for the wire protocols that allow nothing else.

/** Typographic characters the catalogue and certificate subjects use, and their ASCII forms. */
const TRANSLIT: Record<string, string> = {
  '\u2026': '...',
  '\u2018': "'", '\u2019': "'", '\u201a': "'", '\u201b': "'", '\u2032': "'",
  '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u00ab': '"', '\u00bb': '"', '\u2033': '"',
  '\u2010': '-', '\u2011': '-', '\u2012': '-', '\u2013': '-', '\u2014': '-', '\u2212': '-',
  '\u00a0': ' ', '\u2009': ' ', '\u202f': ' ',
  '\u0153': 'oe', '\u0152': 'OE', '\u00e6': 'ae', '\u00c6': 'AE', '\u00df': 'ss', '\u00f8': 'o', '\u00d8': 'O', '\u0142': 'l', '\u0141': 'L', '\u0111': 'd', '\u0110': 'D',
  '\u20ac': 'EUR', '\u2022': '*', '\u00b7': '.',
};

const TRANSLIT_RE = new RegExp(`[${Object.keys(TRANSLIT).join('')}]`, 'g');

/**
 * SMTP replies (RFC 5321 §4.2) and IMAP response texts (RFC 3501 TEXT-CHAR) are US-ASCII:
 * "MSSanté" goes out as "MSSante", "…" as "...", « » and curly quotes as '"'; any other
 * non-ASCII character as "?", a control character as a space (it could split the reply).
 * Every reply of the SMTP fronts (smtp/wire.ts) and every line the IMAP proxy writes itself
 * (imap-proxy/wire.ts) passes through here: a property of the wire, not of each sentence.
 */
export const ascii = (s: string) =>
  s
    .replace(TRANSLIT_RE, (c) => TRANSLIT[c])
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\x00-\x1f\x7f]/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?');
