// What a message the person writes is made of, beyond what they typed: the thread of the
// message it answers or forwards (In-Reply-To, References; a forward takes the original's
// attachments along), and the draft it continues (its attachments and thread). Everything
// is read from the box over the person's own IMAP connection, so a message of a box they
// may not open is the proxy's refusal, and one that is not there a 404.
import type { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { MssError } from '../core/errors.js';
import type { OutgoingAttachment } from './compose.js';
import { draftsFolder, fetchMessage } from './mailbox.js';

export type OriginalAction = 'reply' | 'forward';
export interface OriginalRef {
  folder: string;
  uid: number;
  action: OriginalAction;
}

/**
 * A draft remembers which message it answers or forwards (so sending it marks that one), in
 * this header of its own; the send rebuilds the message and never carries it out.
 */
export const DRAFT_ORIGINAL_HEADER = 'X-Webmail-Original';
const originalHeader = (o: OriginalRef) => `${o.action} ${o.uid} ${encodeURIComponent(o.folder)}`;
function readOriginalHeader(v: unknown): OriginalRef | null {
  const m = /^(reply|forward) (\d{1,10}) (\S{1,800})$/.exec(typeof v === 'string' ? v.trim() : '');
  if (!m) return null;
  try {
    return { action: m[1] as OriginalAction, uid: Number(m[2]), folder: decodeURIComponent(m[3]) };
  } catch {
    return null;
  }
}

export interface Carried {
  /** Attachments taken from the original (a forward) or the draft. */
  attachments: OutgoingAttachment[];
  inReplyTo?: string;
  references?: string[];
  /** The message answered or forwarded (to mark once sent). */
  original: OriginalRef | null;
  /** The draft continued (to delete once sent or saved anew). */
  draft: { folder: string; uid: number } | null;
  /** Headers a draft keeps. */
  draftHeaders: Record<string, string>;
  /** Headers that go with carried attachments: a forwarded IHE_XDM.zip keeps its X-MSS-INS / X-MSS-CODECDA (Ref #2). */
  headers: Record<string, string>;
}

/** The Ref #2 headers that describe an IHE_XDM.zip, kept when the archive is forwarded. */
const XDM_HEADERS = ['x-mss-ins', 'x-mss-codecda'];
function xdmHeadersOf(p: { headers: Map<string, unknown>; attachments: Array<{ filename?: string }> }): Record<string, string> {
  if (!p.attachments.some((a) => (a.filename ?? '').toUpperCase() === 'IHE_XDM.ZIP')) return {};
  const out: Record<string, string> = {};
  for (const k of XDM_HEADERS) {
    const v = p.headers.get(k);
    if (typeof v === 'string' && /^[\x20-\x7e]{1,200}$/.test(v)) out[k.toUpperCase()] = v;
  }
  return out;
}

const idsOf = (v: string | string[] | undefined) => (Array.isArray(v) ? v : v ? v.split(/\s+/).filter(Boolean) : []);
const bracket = (id: string) => (id.startsWith('<') ? id : `<${id}>`);

async function parsedMessage(c: ImapFlow, bal: string, folder: string, uid: number) {
  const m = await fetchMessage(c, bal, folder, uid, false);
  return simpleParser(m.raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, keepCidLinks: true });
}

const attachmentsOf = (p: Awaited<ReturnType<typeof parsedMessage>>): OutgoingAttachment[] =>
  p.attachments.map((a, i) => ({ filename: a.filename || `piece-jointe-${i + 1}`, contentType: a.contentType, content: a.content }));

/**
 * What the message carries from its original and its draft. With both, the draft's
 * attachments are used (a forward's were copied into the draft when it was saved).
 */
export async function carried(c: ImapFlow, bal: string, o: { original?: OriginalRef; draft?: number; inReplyTo?: string; references?: string[] }): Promise<Carried> {
  const out: Carried = { attachments: [], original: o.original ?? null, draft: null, draftHeaders: {}, headers: {} };
  let thread: { inReplyTo?: string; references?: string[] } = {};
  if (o.draft !== undefined) {
    const folder = await draftsFolder(c);
    if (!folder) throw new MssError('NOT_FOUND', { what: `the Drafts folder of ${bal}` });
    const d = await parsedMessage(c, bal, folder, o.draft);
    out.draft = { folder, uid: o.draft };
    out.attachments = attachmentsOf(d);
    out.headers = xdmHeadersOf(d);
    thread = { inReplyTo: d.inReplyTo, references: idsOf(d.references) };
    out.original ??= readOriginalHeader(d.headers.get(DRAFT_ORIGINAL_HEADER.toLowerCase()));
  }
  if (o.original) {
    const p = await parsedMessage(c, bal, o.original.folder, o.original.uid);
    const id = p.messageId ? bracket(p.messageId) : undefined;
    const references = [...idsOf(p.references).map(bracket), ...(id ? [id] : [])].slice(-50);
    thread = o.original.action === 'reply' ? { inReplyTo: id, references } : { references };
    if (o.original.action === 'forward' && o.draft === undefined) {
      out.attachments = attachmentsOf(p);
      out.headers = xdmHeadersOf(p);
    }
  }
  // What the client states itself wins (a DPI keeps its own thread).
  out.inReplyTo = o.inReplyTo ?? thread.inReplyTo;
  out.references = o.references?.length ? o.references : thread.references?.length ? thread.references : undefined;
  if (out.original) out.draftHeaders[DRAFT_ORIGINAL_HEADER] = originalHeader(out.original);
  return out;
}
