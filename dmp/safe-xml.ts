// XML from outside (METADATA.XML of a lab's archive, a CDA document, an ITI-41 body) parsed
// safely: any DTD is refused before parsing — that is where external entities (XXE) and
// entity-expansion bombs live, and none of these formats ever has one — and entities are
// never expanded by the parser: only the five predefined ones and character references
// are decoded, by us, on the values we read.
import iconv from 'iconv-lite';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { dtdDeclared, parserMessage } from '../core/xml.js';

/** Why a piece of XML cannot be read; callers wrap the message in their own MssError. */
export class XmlRefused extends Error {}

/** Bytes to text: BOM or XML declaration decide the encoding, UTF-8 when neither says. */
export function decodeXml(input: Buffer | string): string {
  if (typeof input === 'string') return input.replace(/^\uFEFF/, '');
  if (input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) return input.subarray(3).toString('utf8');
  if (input[0] === 0xff && input[1] === 0xfe) return input.subarray(2).toString('utf16le');
  if (input[0] === 0xfe && input[1] === 0xff) return iconv.decode(input.subarray(2), 'utf16be');
  const head = input.subarray(0, 200).toString('latin1');
  const enc = /^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head)?.[1]?.toLowerCase();
  if (!enc || enc === 'utf-8' || enc === 'utf8') return input.toString('utf8');
  if (!iconv.encodingExists(enc)) throw new XmlRefused(`its declared encoding "${enc}" is unknown`);
  return iconv.decode(input, enc);
}

/** The reason a text carries a DTD, or null. Comments are skipped; CDATA is not (harmless false positive). */
export function dtdReason(xml: string): string | null {
  const d = dtdDeclared(xml);
  if (d === 'DOCTYPE') return 'it contains a DOCTYPE declaration, which is refused (XML external entity and entity expansion attacks)';
  if (d === 'ENTITY') return 'it contains an ENTITY declaration, which is refused (XML external entity and entity expansion attacks)';
  return null;
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes predefined entities and character references; anything else is an undeclared entity. */
export function unescapeXml(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z_][\w.-]*);|&/g, (all, ref: string | undefined) => {
    if (ref === undefined) throw new XmlRefused('it contains a bare "&" (not well-formed XML)');
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!(cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff))) {
        throw new XmlRefused(`it contains the character reference ${all}, which XML does not allow`);
      }
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[ref];
    if (v === undefined) throw new XmlRefused(`it uses the undeclared entity &${ref}; (only &lt; &gt; &amp; &quot; &apos; and character references are accepted)`);
    return v;
  });
}

// XML 1.0 Char production, negated: what may never appear in a document.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };

/**
 * Escapes text for an element or a double-quoted attribute; refuses characters XML cannot
 * carry. Tab, LF and CR as character references: a conformant reader turns them into spaces
 * in an attribute value and CR LF into LF in text (found by fuzzing: a title or an id with a
 * line break did not read back the same).
 */
export function escapeXml(s: string, what = 'a value'): string {
  if (NOT_XML_CHAR.test(s)) throw new XmlRefused(`${what} contains a control character XML cannot carry`);
  return s.replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c]!);
}

/** A parsed element: attributes as `@_name` (raw, still escaped), children by local name. */
export type XmlNode = Record<string, unknown>;

/**
 * Parses text into a tree with namespace prefixes removed (producers disagree on prefixes,
 * some declare none). `arrays` names the elements always given as arrays; `stopNodes`
 * (local-name paths such as `ClinicalDocument.component`) are left unparsed.
 */
export function parseXml(xml: string, arrays: ReadonlySet<string>, opts: { stopNodes?: string[] } = {}): XmlNode {
  const dtd = dtdReason(xml);
  if (dtd) throw new XmlRefused(dtd);
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) throw new XmlRefused(`it is not well-formed XML (line ${valid.err.line}${valid.err.col ? `, column ${valid.err.col}` : ''}: ${parserMessage(valid.err.msg)})`);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    removeNSPrefix: true,
    processEntities: false,
    htmlEntities: false,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    cdataPropName: '#cdata',
    commentPropName: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    isArray: (name) => arrays.has(name),
    // Elements not needed kept as raw text (a CDA body: up to megabytes of base64).
    stopNodes: opts.stopNodes ?? [],
  });
  try {
    return parser.parse(xml) as XmlNode;
  } catch (e) {
    // RangeError: nesting deep enough to exhaust the stack; others: the parser's own refusals.
    throw new XmlRefused(`it cannot be parsed (${e instanceof RangeError ? 'elements nested too deeply' : parserMessage((e as Error).message)})`);
  }
}

// Small accessors over the parsed tree: every value read goes through unescapeXml.

export function children(node: unknown, name: string): XmlNode[] {
  if (!node || typeof node !== 'object') return [];
  const v = (node as XmlNode)[name];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (x && typeof x === 'object' ? (x as XmlNode) : { '#text': x }));
}

export function child(node: unknown, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

export function attr(node: unknown, name: string): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const v = (node as XmlNode)[`@_${name}`];
  return typeof v === 'string' ? unescapeXml(v) : undefined;
}

/** Text content of an element (not its CDATA sections' markup), trimmed. */
export function text(node: unknown): string | undefined {
  if (node === undefined || node === null) return undefined;
  if (typeof node !== 'object') return unescapeXml(String(node)).trim();
  const n = node as XmlNode;
  const parts: string[] = [];
  const t = n['#text'];
  if (t !== undefined) parts.push(unescapeXml(String(t)));
  const c = n['#cdata'];
  if (c !== undefined) parts.push(...(Array.isArray(c) ? c : [c]).map(String));
  return parts.length ? parts.join('').trim() : undefined;
}

/** First element of that local name found breadth-first within `depth` levels. */
export function findElement(root: XmlNode, name: string, depth = 6): XmlNode | undefined {
  let level: XmlNode[] = [root];
  for (let d = 0; d <= depth && level.length; d++) {
    const next: XmlNode[] = [];
    for (const n of level) {
      const hit = child(n, name);
      if (hit) return hit;
      for (const [k, v] of Object.entries(n)) {
        if (k.startsWith('@_') || k.startsWith('#')) continue;
        for (const x of Array.isArray(v) ? v : [v]) if (x && typeof x === 'object') next.push(x as XmlNode);
      }
    }
    level = next;
  }
  return undefined;
}

/** An element of an order-keeping tree: `{ name: children, ':@': attributes }`, or a text `{ '#text': … }`. */
export type OrderedNode = Record<string, unknown>;

/**
 * The same checks as parseXml (no DTD, well-formed, no entity expanded), keeping the order
 * of mixed content: a CDA narrative's text runs between its elements.
 */
export function parseXmlOrdered(xml: string): OrderedNode[] {
  const dtd = dtdReason(xml);
  if (dtd) throw new XmlRefused(dtd);
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) throw new XmlRefused(`it is not well-formed XML (line ${valid.err.line}: ${parserMessage(valid.err.msg)})`);
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    removeNSPrefix: true,
    processEntities: false,
    htmlEntities: false,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    commentPropName: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
  });
  try {
    return parser.parse(xml) as OrderedNode[];
  } catch (e) {
    throw new XmlRefused(`it cannot be parsed (${e instanceof RangeError ? 'elements nested too deeply' : parserMessage((e as Error).message)})`);
  }
}
