// The human-readable part of a CDA R2 document (its sections' narrative blocks) as a small
// HTML fragment a page can show. Built, not filtered: every text is escaped, and only the
// elements of the CDA narrative schema are turned into their plain HTML counterparts
// (paragraph → p, list → ul/ol, table → table…) without any attribute but a cell's span.
// Whatever else a hostile document holds — script, iframe, event handlers, styles, links,
// images (renderMultiMedia) — becomes its text or nothing. Callers sanitise again and show
// it in a sandboxed frame; this function alone already leaves nothing active.
import { decodeXml, parseXmlOrdered, unescapeXml, XmlRefused, type OrderedNode } from './safe-xml.js';

const TAGS: Record<string, string> = {
  paragraph: 'p',
  content: 'span',
  linkHtml: 'span',
  footnote: 'small',
  footnoteRef: 'small',
  br: 'br',
  item: 'li',
  table: 'table',
  thead: 'thead',
  tbody: 'tbody',
  tfoot: 'tfoot',
  tr: 'tr',
  th: 'th',
  td: 'td',
  caption: 'caption',
  sub: 'sub',
  sup: 'sup',
};
/** Elements whose content is dropped: an image or object reference, and what is not narrative. */
const DROPPED = new Set(['renderMultiMedia', 'col', 'colgroup']);
/** The HTML the output is limited to (a page-long report is far below). */
const MAX_HTML = 512 * 1024;
const MAX_DEPTH = 64;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const nameOf = (n: OrderedNode) => Object.keys(n).find((k) => k !== ':@') ?? '';
const kids = (n: OrderedNode) => (Array.isArray(n[nameOf(n)]) ? (n[nameOf(n)] as OrderedNode[]) : []);
const attrsOf = (n: OrderedNode) => (n[':@'] ?? {}) as Record<string, string>;
const find = (list: OrderedNode[], name: string) => list.filter((n) => nameOf(n) === name);

class TooBig extends Error {}

/** The narrative elements below a section's <text>, as HTML. */
function render(list: OrderedNode[], out: string[], depth: number, size: { n: number }): void {
  if (depth > MAX_DEPTH) return;
  for (const n of list) {
    const name = nameOf(n);
    if (name === '#text') {
      const t = escapeHtml(unescapeXml(String(n['#text'])));
      size.n += t.length;
      if (size.n > MAX_HTML) throw new TooBig();
      out.push(t);
      continue;
    }
    if (DROPPED.has(name)) continue;
    let tag = TAGS[name];
    if (name === 'list') tag = attrsOf(n).listType === 'ordered' ? 'ol' : 'ul';
    if (!tag) {
      // Unknown (or hostile) element: its text only.
      render(kids(n), out, depth + 1, size);
      continue;
    }
    if (tag === 'br') {
      out.push('<br>');
      continue;
    }
    let open = `<${tag}`;
    if (tag === 'td' || tag === 'th') {
      for (const a of ['colspan', 'rowspan']) {
        const v = attrsOf(n)[a];
        if (v && /^[1-9][0-9]{0,2}$/.test(v)) open += ` ${a}="${v}"`;
      }
    }
    out.push(`${open}>`);
    render(kids(n), out, depth + 1, size);
    out.push(`</${tag}>`);
  }
}

function sectionText(list: OrderedNode[]): string {
  return list
    .map((n) => (nameOf(n) === '#text' ? unescapeXml(String(n['#text'])) : sectionText(kids(n))))
    .join('')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Sections in document order, nested ones after their parent (section > component > section). */
function sections(list: OrderedNode[], out: string[], level: number, size: { n: number }): void {
  for (const comp of find(list, 'component')) {
    for (const section of find(kids(comp), 'section')) {
      const body = kids(section);
      const title = find(body, 'title')[0];
      const h = Math.min(6, level);
      out.push('<section>');
      if (title) out.push(`<h${h}>${escapeHtml(sectionText(kids(title)))}</h${h}>`);
      for (const text of find(body, 'text')) {
        out.push('<div>');
        render(kids(text), out, 0, size);
        out.push('</div>');
      }
      sections(body, out, level + 1, size);
      out.push('</section>');
    }
  }
}

/**
 * The narrative of a CDA document as HTML, or null when it has none to show (a
 * nonXMLBody — a PDF inside the CDA — or no structured body). Throws XmlRefused when the
 * document is not XML that may be read (a DTD, malformed).
 */
export function cdaNarrative(bytes: Buffer): string | null {
  const tree = parseXmlOrdered(decodeXml(bytes));
  const doc = find(tree, 'ClinicalDocument')[0];
  if (!doc) throw new XmlRefused('its root element is not ClinicalDocument');
  const body = find(find(kids(doc), 'component').flatMap(kids), 'structuredBody')[0];
  if (!body) return null;
  const out: string[] = [];
  try {
    sections(kids(body), out, 3, { n: 0 });
  } catch (e) {
    if (e instanceof TooBig) return `${out.join('').slice(0, MAX_HTML).replace(/<[^>]*$/, '')}<p>[…] (texte tronqué)</p>`;
    throw e;
  }
  return out.join('') || null;
}
