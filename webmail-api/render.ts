// A message as the API shows it: headers, text, HTML made safe to put in a page, and the
// list of attachments. Socket-free: it reads the raw message and the IMAP BODYSTRUCTURE.
//
// The attachment list comes from the BODYSTRUCTURE, so that the index a client sees when it
// reads a message and the part it downloads later are found by the same walk (a download
// fetches only that part, never the whole message); mailparser's parse adds the decoded size
// and the decoded file name, matched by IMAP part number.
import type { MessageStructureObject } from 'imapflow';
import { simpleParser, type AddressObject, type Attachment, type ParsedMail } from 'mailparser';
import sanitizeHtml from 'sanitize-html';
import type { Address } from './json-types.js';

export interface AttachmentRef {
  index: number;
  /** IMAP body part number ("2", "1.3"); "1" for a message that is a single part. */
  part: string;
  filename: string | null;
  contentType: string;
  /** Encoded size in the message (BODYSTRUCTURE), replaced by the decoded size once parsed. */
  size: number;
  contentId: string | null;
  inline: boolean;
}

const BODY_TYPES = new Set(['text/plain', 'text/html']);

/** Attachments in BODYSTRUCTURE order: leaves that are not the message's text, and embedded messages. */
export function attachmentsOf(structure: MessageStructureObject | undefined): AttachmentRef[] {
  const out: AttachmentRef[] = [];
  const walk = (n: MessageStructureObject, isRoot: boolean) => {
    const type = (n.type || 'application/octet-stream').toLowerCase();
    if (type.startsWith('multipart/')) {
      for (const child of n.childNodes ?? []) walk(child, false);
      return;
    }
    const filename = n.dispositionParameters?.filename ?? n.parameters?.name ?? null;
    const disposition = (n.disposition ?? '').toLowerCase();
    const attachment = type === 'message/rfc822' || disposition === 'attachment' || !!filename || !BODY_TYPES.has(type);
    if (!attachment) return;
    out.push({
      index: out.length,
      part: n.part ?? (isRoot ? '1' : ''),
      filename,
      contentType: type,
      size: n.size ?? 0,
      contentId: n.id ? n.id.replace(/^<|>$/g, '') : null,
      inline: disposition === 'inline',
    });
  };
  if (structure) walk(structure, true);
  return out.filter((a) => a.part);
}

/**
 * HTML a page can show: no script, no event handler, no style sheet, no form; links open
 * outside; images only from the message itself (cid:) or inline data — a remote image is a
 * read beacon, which must not fire behind a health professional's back.
 */
export function safeHtml(html: string): string {
  return sanitizeHtml(html, SAFE_HTML);
}
const SAFE_HTML: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'font', 'center'],
  allowedAttributes: {
    a: ['href', 'title', 'rel', 'target'],
    img: ['src', 'alt', 'title', 'width', 'height'],
    td: ['colspan', 'rowspan', 'align', 'valign'],
    th: ['colspan', 'rowspan', 'align', 'valign'],
    table: ['border', 'cellpadding', 'cellspacing', 'width'],
    font: ['color', 'size', 'face'],
    '*': ['dir', 'lang'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['cid', 'data'] },
  allowProtocolRelative: false,
  transformTags: { a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer nofollow', target: '_blank' }) },
};

export type { Address };

const addresses = (a: AddressObject | AddressObject[] | undefined): Address[] =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value).flatMap((v) => (v.group ? v.group : [v])).map((v) => ({ name: v.name ?? '', address: v.address ?? '' }));

/** A header value as one readable string (mailparser structures some of them). */
function headerText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(headerText).join(', ');
  if (typeof v === 'object') {
    const o = v as { text?: string; value?: unknown; params?: Record<string, string> };
    if (typeof o.text === 'string') return o.text;
    if ('value' in o) return [headerText(o.value), ...Object.entries(o.params ?? {}).map(([k, p]) => `${k}=${p}`)].join('; ');
  }
  return String(v);
}

export interface RenderedMessage {
  messageId: string | null;
  subject: string;
  sentAt: string | null;
  from: Address[];
  to: Address[];
  cc: Address[];
  /** Only a draft (or a copy in Sent) keeps its Bcc header. */
  bcc: Address[];
  replyTo: Address[];
  inReplyTo: string | null;
  references: string[];
  headers: Array<{ name: string; value: string }>;
  /** The address a read receipt (RFC 8098) goes to, when the sender asked for one. */
  dispositionNotificationTo: string | null;
  text: string | null;
  html: string | null;
  attachments: AttachmentRef[];
  /** Set when the message is PGP/MIME encrypted (a box with an OpenPGP key, smtp/openpgp.ts): the webmail cannot read it. */
  encrypted: { scheme: 'pgp-mime'; notice: string } | null;
  /** The whole message parsed (null when it was read by its sections: carriesDocuments was then false). */
  parsed: ParsedMail | null;
}

/** What a reader is told of a PGP/MIME message: the webmail never holds the box's private key. */
export const PGP_MIME_NOTICE =
  "Ce message est chiffré avec OpenPGP pour cette boîte : il ne peut être lu que dans un logiciel de messagerie qui détient la clé privée de la boîte (Thunderbird par exemple), pas dans le webmail. — This message is encrypted with OpenPGP for this mailbox: it can only be read in a mail client holding the box's private key, not in the webmail.";

/** RFC 3156 §4: a message whose top level is multipart/encrypted with the application/pgp-encrypted protocol. */
export function encryptionOf(structure: MessageStructureObject | undefined, parsed?: ParsedMail): RenderedMessage['encrypted'] {
  let type = structure?.type?.toLowerCase();
  let protocol = structure?.parameters?.protocol;
  if (!structure && parsed) {
    const ct = parsed.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
    type = ct?.value?.toLowerCase();
    protocol = ct?.params?.protocol;
  }
  return type === 'multipart/encrypted' && protocol?.toLowerCase() === 'application/pgp-encrypted' ? { scheme: 'pgp-mime', notice: PGP_MIME_NOTICE } : null;
}

export async function renderMessage(raw: Buffer, structure: MessageStructureObject | undefined): Promise<RenderedMessage> {
  const p = await simpleParser(raw, PARSE);
  const byPart = new Map<string, Attachment>();
  for (const a of p.attachments) if (a.partId) byPart.set(a.partId, a);
  const attachments = attachmentsOf(structure).map((a) => {
    const parsed = byPart.get(a.part);
    return parsed ? { ...a, filename: parsed.filename ?? a.filename, size: parsed.size } : a;
  });
  return { ...fromHeaders(p), text: p.text ?? null, html: typeof p.html === 'string' ? safeHtml(p.html) : null, attachments, encrypted: encryptionOf(structure, p), parsed: p };
}
const PARSE = { skipTextToHtml: true, skipImageLinks: true } as const;

/** What the message's own header says (mailparser's reading of it, the same for both paths). */
function fromHeaders(p: ParsedMail): Omit<RenderedMessage, 'text' | 'html' | 'attachments' | 'encrypted' | 'parsed'> {
  const headers = p.headerLines.map((h) => ({ name: h.key, value: headerText(p.headers.get(h.key)) }));
  const dnt = p.headers.get('disposition-notification-to') as AddressObject | undefined;
  const refs = p.references ? (Array.isArray(p.references) ? p.references : [p.references]) : [];
  return {
    messageId: p.messageId ?? null,
    subject: p.subject ?? '',
    sentAt: p.date ? p.date.toISOString() : null,
    from: addresses(p.from),
    to: addresses(p.to),
    cc: addresses(p.cc),
    bcc: addresses(p.bcc),
    replyTo: addresses(p.replyTo),
    inReplyTo: p.inReplyTo ?? null,
    references: refs,
    headers: dedupe(headers),
    dispositionNotificationTo: dnt ? (addresses(dnt)[0]?.address ?? null) || null : null,
  };
}

/**
 * The IMAP sections that give the same answer as the whole message, for a multipart message
 * whose text is one text/plain part, or one text/plain and one text/html side by side in a
 * multipart/alternative: the header, those parts (with their MIME headers), and the decoded
 * size (BINARY.SIZE) of each attachment — never an attachment's content. Null when only the
 * whole message answers the same: a single part, other text layouts (mailparser joins or
 * converts texts depending on the tree), an attached message or text file, and — when the
 * clinical documents are read — a ZIP or XML attachment (carriesDocuments looks inside).
 */
export function textSections(structure: MessageStructureObject | undefined, opts: { documents: boolean }): { plain: string; html: string | null; sized: string[] } | null {
  if (!structure || !(structure.type ?? '').toLowerCase().startsWith('multipart/')) return null;
  const attachments = attachmentsOf(structure);
  const isAttachment = new Set(attachments.map((a) => a.part));
  for (const a of attachments) {
    if (/^(text|message)\//.test(a.contentType) || a.contentType.includes('rfc822')) return null;
    if (opts.documents && /zip|xml/i.test(`${a.contentType} ${a.filename ?? ''}`)) return null;
  }
  // mailparser takes a text/plain and a text/html under a multipart/alternative as they are;
  // elsewhere it may join several or convert one into the other.
  const texts: Array<{ part: string; type: string; inAlternative: boolean }> = [];
  let unnumbered = false;
  const walk = (n: MessageStructureObject, inAlternative: boolean) => {
    const type = (n.type || '').toLowerCase();
    if (type.startsWith('multipart/')) return (n.childNodes ?? []).forEach((c) => walk(c, inAlternative || type === 'multipart/alternative'));
    if (!n.part) unnumbered = true;
    else if (!isAttachment.has(n.part)) texts.push({ part: n.part, type, inAlternative });
  };
  walk(structure, false);
  if (unnumbered) return null;
  const sized = attachments.map((a) => a.part);
  if (texts.length === 1 && texts[0].type === 'text/plain') return { plain: texts[0].part, html: null, sized };
  if (texts.length !== 2 || !texts.every((t) => t.inAlternative)) return null;
  const plain = texts.find((t) => t.type === 'text/plain');
  const html = texts.find((t) => t.type === 'text/html');
  return plain && html ? { plain: plain.part, html: html.part, sized } : null;
}

/**
 * renderMessage's answer from the sections textSections named: the header block, each text
 * part as its MIME header + body (mailparser decodes charset and transfer encoding as it
 * does inside the whole message), the attachments' decoded sizes.
 */
export async function renderSections(header: Buffer, plain: Buffer, html: Buffer | null, structure: MessageStructureObject, sizes: Map<string, number>): Promise<RenderedMessage> {
  const [h, t, x] = await Promise.all([simpleParser(header, PARSE), simpleParser(plain, PARSE), html ? simpleParser(html, { ...PARSE, skipHtmlToText: true }) : null]);
  const attachments = attachmentsOf(structure).map((a) => ({ ...a, size: sizes.get(a.part) ?? a.size }));
  return { ...fromHeaders(h), text: t.text ?? null, html: x && typeof x.html === 'string' ? safeHtml(x.html) : null, attachments, encrypted: encryptionOf(structure), parsed: null };
}

/** mailparser maps a repeated header to one value: show it once. */
function dedupe(h: Array<{ name: string; value: string }>) {
  const seen = new Set<string>();
  return h.filter((x) => (seen.has(x.name) ? false : (seen.add(x.name), true)));
}

/** Does the message carry clinical documents the dmp/ readers take (IHE_XDM.zip, a bare CDA)? */
export function carriesDocuments(p: ParsedMail): boolean {
  return p.attachments.some((a) => {
    const name = (a.filename ?? '').toLowerCase();
    // Any ZIP: dmp/ recognises an IHE_XDM layout under another name too.
    if (name.endsWith('.zip') || /zip/.test(a.contentType)) return true;
    const xml = /(^|\/)(\w+\+)?xml$/.test(a.contentType) || name.endsWith('.xml');
    return xml && a.content.subarray(0, 4096).toString('utf8').includes('ClinicalDocument');
  });
}

/**
 * What the dmp/ readers return, made fit for JSON: document bytes (Buffers) and lookup
 * tables (Maps) stay on the server — a client downloads an attachment instead.
 */
export function plain(v: unknown, depth = 0): unknown {
  if (depth > 32) return undefined;
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? v.toString() : v;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array || v instanceof Map || v instanceof Set) return undefined;
  if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1)).filter((x) => x !== undefined);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const p = plain(x, depth + 1);
    if (p !== undefined) out[k] = p;
  }
  return out;
}
