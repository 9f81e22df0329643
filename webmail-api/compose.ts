// Messages the API writes: a person's message from a BAL, and a read receipt (RFC 8098).
// Built with nodemailer's composer (MIME, encoded words, line lengths, CRLF) — never by hand.
import { randomUUID } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';

/** X-MSS-NIL (Ref. #2 §3.8): the sending software, when the client names none. */
export const DEFAULT_NIL = 'MSSante-Operateur webmail-api/1';

export interface OutgoingAttachment {
  filename: string;
  contentType?: string;
  content: Buffer;
}

export interface Outgoing {
  /** The BAL the message is sent from (From and envelope sender). */
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text?: string;
  html?: string;
  /** Message-ID of the message answered: In-Reply-To and References. */
  inReplyTo?: string;
  references?: string[];
  attachments: OutgoingAttachment[];
  /** Ask for a read receipt (Disposition-Notification-To: the BAL). */
  readReceipt?: boolean;
  nil?: string;
  /** Right-hand side of the Message-ID. */
  hostname: string;
  /** A draft keeps its Bcc header (it is not sent; the send rebuilds the message) and these headers. */
  draft?: { headers: Record<string, string> };
  /** More headers (X-MSS-* of a clinical document package), written as given. */
  headers?: Record<string, string>;
}

const msgId = (id: string) => (id.startsWith('<') ? id : `<${id}>`);

export async function buildMessage(o: Outgoing): Promise<{ raw: Buffer; messageId: string }> {
  const messageId = `<${randomUUID()}@${o.hostname}>`;
  const references = o.references?.length ? o.references.map(msgId) : o.inReplyTo ? [msgId(o.inReplyTo)] : undefined;
  const composer = new MailComposer({
    from: o.from,
    to: o.to,
    cc: o.cc.length ? o.cc : undefined,
    // The Bcc header never leaves; its addresses are in the envelope only.
    bcc: o.bcc.length ? o.bcc : undefined,
    subject: o.subject,
    text: o.text,
    html: o.html,
    messageId,
    date: new Date(),
    inReplyTo: o.inReplyTo ? msgId(o.inReplyTo) : undefined,
    references,
    attachments: o.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    headers: { 'X-MSS-NIL': o.nil || DEFAULT_NIL, ...(o.readReceipt ? { 'Disposition-Notification-To': o.from } : {}), ...o.headers, ...o.draft?.headers },
    // Ref #2 spells its headers in capitals (X-MSS-INS); nodemailer would write X-Mss-Ins.
    normalizeHeaderKey: (key: string) => (/^x-mss-/i.test(key) ? key.toUpperCase() : key),
  } as ConstructorParameters<typeof MailComposer>[0]);
  const root = composer.compile();
  if (o.draft) (root as unknown as { keepBcc: boolean }).keepBcc = true;
  const raw = await root.build();
  return { raw, messageId };
}

export interface MdnInput {
  /** The BAL that received and displayed the message: From of the receipt, Final-Recipient. */
  bal: string;
  /** Disposition-Notification-To of the original. */
  to: string;
  original: { raw: Buffer; messageId: string | null; subject: string };
  hostname: string;
}

/**
 * An RFC 8098 message disposition notification: multipart/report with a sentence for
 * people, the machine-readable message/disposition-notification and the original headers.
 * Sent because the person asked (manual-action/MDN-sent-manually), disposition "displayed".
 */
export async function buildMdn(m: MdnInput): Promise<{ raw: Buffer; messageId: string }> {
  const messageId = `<mdn.${randomUUID()}@${m.hostname}>`;
  const root = new MimeNode('multipart/report; report-type=disposition-notification');
  root.setHeader({
    From: m.bal,
    To: m.to,
    Subject: `Accusé de lecture / Read: ${m.original.subject}`,
    'Message-ID': messageId,
    Date: new Date().toUTCString(),
    'X-MSS-NIL': DEFAULT_NIL,
    ...(m.original.messageId ? { 'In-Reply-To': msgId(m.original.messageId), References: msgId(m.original.messageId) } : {}),
  });
  root
    .createChild('text/plain; charset=utf-8')
    .setContent(
      `Le message « ${m.original.subject} » adressé à ${m.bal} a été affiché.\n` +
        `The message "${m.original.subject}" sent to ${m.bal} has been displayed.\n\n` +
        "Cet accusé ne garantit pas que le message a été lu ou compris. / This receipt does not guarantee that the message has been read or understood.\n",
    );
  const fields = [
    `Reporting-UA: ${m.hostname}; MSSante webmail API`,
    `Final-Recipient: rfc822; ${m.bal}`,
    ...(m.original.messageId ? [`Original-Message-ID: ${msgId(m.original.messageId)}`] : []),
    'Disposition: manual-action/MDN-sent-manually; displayed',
  ];
  root.createChild('message/disposition-notification').setContent(fields.join('\r\n') + '\r\n');
  root.createChild('text/rfc822-headers').setContent(headerSection(m.original.raw));
  return { raw: await root.build(), messageId };
}

function headerSection(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end < 0 ? Math.min(raw.length, 64 * 1024) : end + 2).toString('latin1');
}
