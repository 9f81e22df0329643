// Reading the national liste blanche (listeblanchemssante.xml). Pure: bytes in, entries out,
// so it is tested on generated and hostile inputs without a database.
//
// Shape (REFERENCE.md): namespace https://listeblanche.mssante.fr/schema; a
// <DateDeGeneration>; one <Domaine> per domain with <Nom>, <Description>,
// <DNCertificatOperateur>, <ResponsableContact>, <SupportContact>, <DateMAJ>.
import { domainToASCII, domainToUnicode } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { dtdDeclared, parserMessage, withoutComments } from '../../core/xml.js';
import { shown } from '../import/validate.js';

export const WHITELIST_NAMESPACE = 'https://listeblanche.mssante.fr/schema';

export interface WhitelistEntry {
  /** A-label, lower-case: the lookup key. */
  domain: string;
  /** U-label (Unicode) form. */
  domainUnicode: string;
  description: string | null;
  operatorDn: string | null;
  responsableContact: string | null;
  supportContact: string | null;
  dateMaj: string | null;
}

export interface ParsedWhitelist {
  generatedAt: Date;
  generatedRaw: string;
  entries: WhitelistEntry[];
  /** <Domaine> entries that could not be used, with why; the rest of the list is. */
  rejected: Array<{ name: string; reason: string }>;
  /** Names listed more than once (the last entry wins). */
  duplicates: string[];
}

/** Why a list cannot be used at all: the caller wraps it in WHITELIST_INVALID. */
export class WhitelistFormatError extends Error {}

/**
 * A DOCTYPE is where XML external entities (XXE) and entity expansion bombs live; the
 * national list has none, so any DTD is refused before parsing rather than "disabled".
 */
function refuseDtd(xml: string) {
  if (dtdDeclared(xml)) {
    throw new WhitelistFormatError('it contains a DTD (<!DOCTYPE> / <!ENTITY>), which the liste blanche never has and which is refused (XML entity attacks)');
  }
}

/**
 * A character reference to what XML cannot carry (&#0;, other controls, surrogates) is not
 * well-formed XML, but the parser would drop or keep it silently, and "pirate&#0;.fr" would
 * become pirate.fr: a name that is not what the file shows.
 */
function refuseBadCharacterReferences(xml: string) {
  for (const m of xml.matchAll(/&#(x[0-9a-fA-F]+|[0-9]+);/g)) {
    const cp = m[1][0] === 'x' ? parseInt(m[1].slice(1), 16) : parseInt(m[1], 10);
    const ok = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok) throw new WhitelistFormatError(`it contains the character reference ${m[0]}, which XML does not allow`);
  }
}

/**
 * DateDeGeneration as published: ISO 8601 (with or without zone) or French dd/mm/yyyy
 * [hh:mm[:ss]]. A date without zone is read as UTC: only its order against other lists
 * matters, and every list is written the same way.
 */
export function parseGenerationDate(raw: string): Date | null {
  const s = raw.trim();
  let m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (m) {
    const zone = m[8] ? (m[8] === 'Z' ? 'Z' : m[8].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')) : 'Z';
    const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}${m[7] ? '.' + m[7].slice(0, 3) : ''}${zone}`);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  m = /^(\d{2})\/(\d{2})\/(\d{4})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (m) {
    const d = new Date(Date.UTC(+m[3], +m[2] - 1, +m[1], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)));
    return d.getUTCDate() === +m[1] ? d : null;
  }
  return null;
}

/** A label of a host name (RFC 1123): letters, digits, inner hyphens, at most 63. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A name from <Nom> in both forms; null when it is not a usable domain name. The name must
 * be what it shows: WHATWG's domainToASCII also maps away what a person would not see or
 * would read otherwise (percent-escapes, zero-width characters, full-width letters, an
 * invalid xn-- label), so a name is kept only when it is its own A-label or U-label, every
 * label is a host-name label, and it is not an IP address.
 */
export function domainForms(name: string): { ascii: string; unicode: string } | null {
  const n = name.trim().replace(/\.$/, '').toLowerCase().normalize('NFC');
  if (!n || /[\s@/]/.test(n)) return null;
  const ascii = domainToASCII(n);
  if (!ascii || ascii.length > 253) return null;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LDH_LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1])) return null;
  const unicode = domainToUnicode(ascii);
  // An xn-- label must decode and encode back to itself (xn--zz- "decodes" to zz).
  if (domainToASCII(unicode) !== ascii) return null;
  if (n !== ascii && n !== unicode) return null;
  return { ascii, unicode };
}

const text = (v: unknown): string | null => {
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') return null;
  const s = String(v).trim();
  return s === '' ? null : s;
};

/** Every object under `node` whose key is `name`, at any depth (the //Domaine of XPath). */
function collect(node: unknown, name: string, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(node)) for (const n of node) collect(n, name, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === name) for (const item of Array.isArray(v) ? v : [v]) out.push(item && typeof item === 'object' ? (item as Record<string, unknown>) : {});
      else if (!k.startsWith('@_')) collect(v, name, out);
    }
  }
  return out;
}

// One parser for every list: building one costs more than parsing a small list.
const parser = new XMLParser({
  ignoreAttributes: false,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  htmlEntities: false,
  // Only XML's five predefined entities are decoded; there is no DTD to define others.
  processEntities: true,
});

/** How far ahead a <DateDeGeneration> may be (clocks drift, the date may be Paris time): a day. */
const FUTURE_TOLERANCE_MS = 86_400_000;

export function parseWhitelist(input: string | Buffer, now = new Date()): ParsedWhitelist {
  const xml = (typeof input === 'string' ? input : input.toString('utf8')).replace(/^\uFEFF/, '');
  refuseDtd(xml);
  refuseBadCharacterReferences(xml);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new WhitelistFormatError(`it is not well-formed XML (line ${valid.err.line}: ${parserMessage(valid.err.msg)})`);
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch (e) {
    // The validator passes what the parser may still refuse (found by fuzzing: an element
    // named "constructor" threw a plain Error past the import's refusal).
    throw new WhitelistFormatError(`it cannot be parsed (${e instanceof RangeError ? 'elements nested too deeply' : parserMessage((e as Error).message)})`);
  }
  const rootName = Object.keys(doc).find((k) => !k.startsWith('?'));
  const root = rootName ? (doc[rootName] as Record<string, unknown>) : undefined;
  if (!root || typeof root !== 'object') throw new WhitelistFormatError('it has no root element');
  const ns = rootNamespace(xml);
  if (ns !== null && ns !== WHITELIST_NAMESPACE) throw new WhitelistFormatError(`its namespace is ${shown(ns)}, not ${WHITELIST_NAMESPACE}`);

  const rawDate = findText(doc, 'DateDeGeneration');
  if (!rawDate) throw new WhitelistFormatError('it has no <DateDeGeneration> (or an empty one)');
  const generatedAt = parseGenerationDate(rawDate);
  if (!generatedAt) throw new WhitelistFormatError(`its <DateDeGeneration> ${shown(rawDate)} is not a date`);
  // A list from the future would stay "the newest" and make every real list after it "older".
  if (generatedAt.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) throw new WhitelistFormatError(`its <DateDeGeneration> ${shown(rawDate)} is in the future`);

  const byDomain = new Map<string, WhitelistEntry>();
  const rejected: ParsedWhitelist['rejected'] = [];
  const duplicates: string[] = [];
  for (const d of collect(doc, 'Domaine')) {
    const name = text(d.Nom);
    if (!name) {
      rejected.push({ name: '(no name)', reason: '<Domaine> without <Nom>' });
      continue;
    }
    const forms = domainForms(name);
    if (!forms) {
      rejected.push({ name, reason: 'not a domain name' });
      continue;
    }
    if (byDomain.has(forms.ascii)) duplicates.push(forms.ascii);
    byDomain.set(forms.ascii, {
      domain: forms.ascii,
      domainUnicode: forms.unicode,
      description: text(d.Description),
      operatorDn: text(d.DNCertificatOperateur),
      responsableContact: text(d.ResponsableContact),
      supportContact: text(d.SupportContact),
      dateMaj: text(d.DateMAJ),
    });
  }
  if (!byDomain.size) throw new WhitelistFormatError('it lists no usable <Domaine>');
  return { generatedAt, generatedRaw: rawDate, entries: [...byDomain.values()], rejected, duplicates };
}

/** The text of the first element with this name, at any depth (elements are strings once parsed). */
function findText(node: unknown, name: string): string | null {
  if (Array.isArray(node)) {
    for (const n of node) {
      const r = findText(n, name);
      if (r !== null) return r;
    }
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === name) return text(Array.isArray(v) ? v[0] : v);
      if (!k.startsWith('@_')) {
        const r = findText(v, name);
        if (r !== null) return r;
      }
    }
  }
  return null;
}

/**
 * The namespace of the root element as declared on it (default or by its prefix), null when
 * it declares none. Read from the text: the parser drops namespace declarations along with
 * the prefixes. One pass: skip the prolog's comments and processing instructions, take the
 * first tag up to its ">" outside quotes, and read its attributes there.
 */
function rootNamespace(xml: string): string | null {
  const tag = firstTag(withoutComments(xml));
  const m = tag && /^<(?:([A-Za-z_][\w.-]*):)?[A-Za-z_][\w.-]*((?:\s+[^\s=>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*\/?>$/.exec(tag);
  if (!m) return null;
  const attr = m[1] ? `xmlns:${m[1]}` : 'xmlns';
  for (const a of m[2].matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) if (a[1] === attr) return a[2] ?? a[3];
  return null;
}

/** The first element's start tag, `<` to `>`, past processing instructions; null if unterminated. */
function firstTag(xml: string): string | null {
  for (let at = 0; ; ) {
    const open = xml.indexOf('<', at);
    if (open < 0) return null;
    if (xml.startsWith('<?', open)) {
      const close = xml.indexOf('?>', open + 2);
      if (close < 0) return null;
      at = close + 2;
      continue;
    }
    let quote = '';
    for (let i = open + 1; i < xml.length; i++) {
      const c = xml[i];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '>') return xml.slice(open, i + 1);
    }
    return null;
  }
}
