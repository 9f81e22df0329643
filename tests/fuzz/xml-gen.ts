// Generators of XML for the fuzz tests: well-formed trees from a grammar (names from the
// formats' own vocabulary, plus prototype-polluting ones; text and attribute values with
// every character XML escapes; comments, CDATA, processing instructions), and the tokens
// random soups and mutations are made of.
import fc from 'fast-check';

export const XML_TOKENS = [
  '<', '>', '</', '/>', '<!--', '-->', '<?', '?>', '<?xml version="1.0"?>', '<![CDATA[', ']]>', '<!DOCTYPE r [<!ENTITY a "b">]>', '<!ENTITY',
  '&', '&amp;', '&lt;', '&gt;', '&quot;', '&apos;', '&#0;', '&#x110000;', '&#65;', '&#xD800;', '&x;', '&lol;', '"', "'", '=', ' ', '\n', '\t',
  'xmlns="urn:x"', 'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"', 'rim:', 'x:', ':', '\0', '\uFFFE', '\uD800', 'é', '\u00A0',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '#text', '@_id',
];

export interface XmlTree {
  name: string;
  attrs: Array<[string, string]>;
  children: Array<XmlTree | { text: string } | { cdata: string } | { comment: string } | { pi: string }>;
}

/** Text with the characters XML must escape, accents, and whitespace; no character XML forbids. */
export const xmlTextOf = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('a', 'Z', '0', ' ', 'é', 'Œ', '€', '字', '😀', '-', '.', '^', '|', '&', '<', '>', '"', "'", ']]>', '\t', '\n', '\r\n') },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }).filter((c) => !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/u.test(c)) },
    ),
    maxLength,
  });
export const xmlText = xmlTextOf(24);

export const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
export const escAttr = (s: string) => escText(s).replace(/"/g, '&quot;');

/** Well-formed XML trees over a vocabulary of element and attribute names. */
export function xmlTree(names: readonly string[], attrNames: readonly string[], maxDepth = 5): fc.Arbitrary<XmlTree> {
  const name = fc.constantFrom(...names, '__proto__', 'constructor', 'toString', 'a', 'x:b');
  const attrs = fc.uniqueArray(fc.tuple(fc.constantFrom(...attrNames, '__proto__', 'constructor', 'xmlns', 'xmlns:x', 'x:y'), xmlText), { maxLength: 4, selector: (a) => a[0] });
  const { tree } = fc.letrec<{ tree: XmlTree; node: XmlTree['children'][number] }>((tie) => ({
    tree: fc.record({ name, attrs, children: fc.array(tie('node'), { maxLength: 5, depthIdentifier: 'xml' }) }),
    node: fc.oneof(
      { depthSize: 'small', maxDepth, depthIdentifier: 'xml' },
      xmlText.map((text) => ({ text })),
      tie('tree'),
      xmlText.filter((s) => !s.includes(']]>')).map((cdata) => ({ cdata })),
      xmlText.filter((s) => !s.includes('--') && !s.endsWith('-')).map((comment) => ({ comment })),
      fc.constantFrom('x', 'pi data').map((pi) => ({ pi })),
    ),
  }));
  return tree;
}

export function writeXml(t: XmlTree, declaration = true): string {
  const w = (n: XmlTree['children'][number]): string => {
    if ('text' in n) return escText(n.text);
    if ('cdata' in n) return `<![CDATA[${n.cdata}]]>`;
    if ('comment' in n) return `<!--${n.comment}-->`;
    if ('pi' in n) return `<?app ${n.pi}?>`;
    const attrs = n.attrs.map(([k, v]) => ` ${k}="${escAttr(v)}"`).join('');
    return n.children.length ? `<${n.name}${attrs}>${n.children.map(w).join('')}</${n.name}>` : `<${n.name}${attrs}/>`;
  };
  return (declaration ? '<?xml version="1.0" encoding="UTF-8"?>\n' : '') + w(t);
}

/**
 * Deep nesting and long runs of one construct, ~`size` characters each: the shapes that make
 * a parser recurse or rescan. Run once each (not 10,000 times): a linear reader takes well
 * under a second on them, a quadratic one hours — which the runner's timeout turns into a
 * failure.
 */
export function pathologicalXml(size = 2 * 1024 * 1024): string[] {
  const units = ['<a>', '<!--', '<?x', '<![CDATA[', '<a b="1" ', '&amp;', '<', '<!-- <!DOCTYPE -->', '"'];
  return units.map((u) => `<r>${u.repeat(Math.floor(size / u.length))}`);
}
