// The XML of SOAP messages, namespace-aware. SOAP is about namespaces (a SOAP 1.1 envelope
// must be told apart from a SOAP 1.2 one, a fault's codes are QNames), so this reads the
// text into a small element tree with each element's namespace resolved, and can write any
// sub-tree back out as a standalone document carrying the declarations it relies on (the
// SubmitObjectsRequest inside the ITI-41 body is handed to the ebRIM reader that way).
//
// Safety: a DTD is refused before parsing (external entities and entity-expansion bombs
// live there and SOAP forbids DTDs anyway, SOAP 1.2 part 1 §5); the parser expands no
// entity; values are decoded here with the five predefined entities and character
// references only.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { dtdDeclared, parserMessage } from '../../core/xml.js';

export const NS = {
  soap12: 'http://www.w3.org/2003/05/soap-envelope',
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  wsa: 'http://www.w3.org/2005/08/addressing',
  xop: 'http://www.w3.org/2004/08/xop/include',
  xdsb: 'urn:ihe:iti:xds-b:2007',
  lcm: 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0',
  rim: 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0',
  rs: 'urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0',
} as const;

export class XmlError extends Error {}

export interface El {
  /** Qualified name as written (`ns3:SubmitObjectsRequest`). */
  name: string;
  local: string;
  /** Resolved namespace URI, null when none applies. */
  ns: string | null;
  /** Attributes as written (still escaped), by qualified name; namespace declarations included. */
  raw: Record<string, string>;
  /** Namespace declarations in scope here (prefix '' = default namespace). */
  scope: Map<string, string>;
  children: Node[];
}
export type Node = El | { text: string } | { cdata: string };

const isEl = (n: Node): n is El => 'local' in n;

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Decodes the predefined entities and character references; any other entity is refused. */
export function unescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z_][\w.-]*);/g, (all, ref: string) => {
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (cp > 0x10ffff || (cp < 0x20 && cp !== 9 && cp !== 10 && cp !== 13) || (cp >= 0xd800 && cp <= 0xdfff)) throw new XmlError(`the character reference ${all} is not allowed in XML`);
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[ref];
    if (v === undefined) throw new XmlError(`the undeclared entity &${ref}; is refused`);
    return v;
  });
}

const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };

/** Escapes text for element content or a double-quoted attribute (whitespace as references: a conformant reader normalises it in attributes). */
export function esc(s: string): string {
  if (NOT_XML_CHAR.test(s)) throw new XmlError('a value contains a character XML cannot carry');
  return s.replace(/[&<>"\t\n\r]/g, (c) => ESCAPES[c]!);
}

/** Refuses what must never reach the parser. */
export function refuseDtd(xml: string): void {
  if (dtdDeclared(xml)) throw new XmlError('it contains a DTD (<!DOCTYPE>/<!ENTITY>), which SOAP forbids and which is refused (XML entity attacks)');
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  commentPropName: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

type Raw = Record<string, unknown> & { ':@'?: Record<string, string> };

function build(raw: Raw[], parent: Map<string, string>, depth: number): Node[] {
  if (depth > 64) throw new XmlError('elements are nested too deeply');
  const out: Node[] = [];
  for (const item of raw) {
    const key = Object.keys(item).find((k) => k !== ':@');
    if (key === undefined) continue;
    if (key === '#text') {
      out.push({ text: String(item[key]) });
      continue;
    }
    if (key === '#cdata') {
      const inner = item[key] as Raw[];
      out.push({ cdata: inner.map((t) => String(t['#text'] ?? '')).join('') });
      continue;
    }
    const attrs = item[':@'] ?? {};
    let scope = parent;
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) {
        if (scope === parent) scope = new Map(parent);
        scope.set(k === 'xmlns' ? '' : k.slice(6), unescape(v));
      }
    }
    const colon = key.indexOf(':');
    const prefix = colon < 0 ? '' : key.slice(0, colon);
    const ns = scope.get(prefix);
    if (prefix && ns === undefined) throw new XmlError(`the prefix "${prefix}" of <${key}> is not declared`);
    out.push({ name: key, local: colon < 0 ? key : key.slice(colon + 1), ns: ns || null, raw: { ...attrs }, scope, children: build(item[key] as Raw[], scope, depth + 1) });
  }
  return out;
}

/** Parses a document and returns its root element. */
export function parseDocument(xml: string): El {
  refuseDtd(xml);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new XmlError(`it is not well-formed XML (line ${valid.err.line}: ${parserMessage(valid.err.msg)})`);
  let raw: Raw[];
  try {
    raw = parser.parse(xml) as Raw[];
  } catch (e) {
    throw new XmlError(`it cannot be parsed (${e instanceof RangeError ? 'elements nested too deeply' : parserMessage((e as Error).message)})`);
  }
  const roots = build(raw, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]), 0).filter(isEl);
  if (roots.length !== 1) throw new XmlError('it has no single root element');
  return roots[0];
}

export function elements(el: El | undefined, ns?: string, local?: string): El[] {
  if (!el) return [];
  return el.children.filter((c): c is El => isEl(c) && (ns === undefined || c.ns === ns) && (local === undefined || c.local === local));
}

export function first(el: El | undefined, ns: string, local: string): El | undefined {
  return elements(el, ns, local)[0];
}

/** Every descendant with that name, document order. */
export function descendants(el: El, ns: string | undefined, local: string, out: El[] = []): El[] {
  for (const c of elements(el)) {
    if ((ns === undefined || c.ns === ns) && c.local === local) out.push(c);
    descendants(c, ns, local, out);
  }
  return out;
}

/** An unqualified attribute's decoded value (or a qualified one by its name as written). */
export function attr(el: El | undefined, name: string): string | undefined {
  const v = el?.raw[name];
  return v === undefined ? undefined : unescape(v);
}

/** An attribute by namespace and local name, whatever prefix the writer chose. */
export function attrNs(el: El | undefined, ns: string, local: string): string | undefined {
  if (!el) return undefined;
  for (const [k, v] of Object.entries(el.raw)) {
    const i = k.indexOf(':');
    if (i > 0 && k.slice(i + 1) === local && k.slice(0, i) !== 'xmlns' && el.scope.get(k.slice(0, i)) === ns) return unescape(v);
  }
  return undefined;
}

export function textOf(el: El | undefined): string {
  if (!el) return '';
  return el.children.map((c) => ('text' in c ? unescape(c.text) : 'cdata' in c ? c.cdata : textOf(c))).join('');
}

/** Resolves a QName value (a fault code such as `soap:Sender`) against the element's scope. */
export function qnameValue(el: El, value: string): { ns: string | null; local: string } {
  const v = value.trim();
  const i = v.indexOf(':');
  if (i < 0) return { ns: el.scope.get('') ?? null, local: v };
  return { ns: el.scope.get(v.slice(0, i)) ?? null, local: v.slice(i + 1) };
}

function write(n: Node, out: string[], extra: Map<string, string> | null): void {
  if ('text' in n) {
    out.push(n.text);
    return;
  }
  if ('cdata' in n) {
    // A CDATA section cannot contain "]]>"; split it across two sections when it does.
    out.push(`<![CDATA[${n.cdata.split(']]>').join(']]]]><![CDATA[>')}]]>`);
    return;
  }
  out.push('<', n.name);
  for (const [k, v] of Object.entries(n.raw)) out.push(' ', k, '="', v.replace(/"/g, '&quot;'), '"');
  if (extra) for (const [p, uri] of extra) out.push(' ', p ? `xmlns:${p}` : 'xmlns', '="', esc(uri), '"');
  if (!n.children.length) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const c of n.children) write(c, out, null);
  out.push('</', n.name, '>');
}

/**
 * The element as a standalone document: the namespace declarations it inherited from its
 * ancestors are written on it, so it reads the same out of its envelope.
 */
export function serialize(el: El): string {
  const extra = new Map<string, string>();
  for (const [p, uri] of el.scope) {
    if (p === 'xml') continue;
    const attrName = p ? `xmlns:${p}` : 'xmlns';
    if (!(attrName in el.raw)) extra.set(p, uri);
  }
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  write(el, out, extra);
  return out.join('');
}
