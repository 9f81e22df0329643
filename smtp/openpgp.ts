// PGP/MIME (RFC 3156 §4) for boxes that registered an OpenPGP key (annuaire/bal/openpgp.ts):
// the delivery turns the message into multipart/encrypted before Dovecot stores it, so
// what is stored is readable only with the box holder's private key (issue 16 §4).
//
// What is encrypted: the message as it was accepted, with "protected headers" as
// Thunderbird and K-9 read them (the draft Thunderbird implements, later RFC 9788): a
// multipart/mixed; protected-headers="v1" part carrying every header field of the message
// byte for byte (the real Subject included), whose one child is the message's own content
// entity — its Content-* fields and its body, byte for byte. A client holding the key shows
// the real Subject and the body and attachments exactly as they were sent. (Without the
// wrapper Thunderbird would show the outer "[...]" as the subject.)
//
// What stays readable outside (an allow-list: a header not named here goes inside only):
// the trace (Return-Path, Received), who and when (From, Sender, To, Cc, Reply-To, Date),
// the identifiers and threading (Message-ID, In-Reply-To, References), receipt requests
// (Disposition-Notification-To, Return-Receipt-To), Auto-Submitted (loop prevention) and
// the MSSanté headers X-MSS-* (Ref #2 §3.8: a DPI or the DMP hand-off routes on them; they
// say whether a CDA/INS is inside, not what it says). The journal and the spool keep the
// Message-ID. The Subject often names a patient or a result: outside it is replaced by
// "[...]", as RFC 9788 §4.1 suggests for an obscured subject; inside it is the real one.
//
// Both header sections are the message's own fields copied as they are, followed by the
// entity nodemailer's MimeNode built: MimeNode would re-encode address and date fields,
// and these must reach the reader unchanged.
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { createMessage, encrypt, readKey } from 'openpgp';
import { fieldValue, headerFields, type HeaderField } from './message.js';

/** Header fields copied outside, byte for byte (lower case); X-MSS-* too. */
const OUTSIDE = new Set([
  'return-path',
  'received',
  'from',
  'sender',
  'to',
  'cc',
  'reply-to',
  'date',
  'message-id',
  'in-reply-to',
  'references',
  'disposition-notification-to',
  'return-receipt-to',
  'auto-submitted',
]);
const keptOutside = (name: string) => OUTSIDE.has(name) || name.startsWith('x-mss-');

/** What the outer Subject says (RFC 9788 §4.1's obscured subject). */
export const OBSCURED_SUBJECT = '[...]';

/** Whether a message is PGP/MIME encrypted already (RFC 3156: its top-level type is multipart/encrypted). */
export function isPgpMimeEncrypted(message: Buffer): boolean {
  for (const f of headerFields(message)) {
    if ('malformed' in f) return false;
    if (f.name.toLowerCase() === 'content-type') return /^multipart\/encrypted\s*(;|$)/i.test(fieldValue(message, f));
  }
  return false;
}

/**
 * The message encrypted to the key, as a PGP/MIME message (RFC 3156 §4): the readable
 * header fields listed above, then a multipart/encrypted entity built by nodemailer's
 * MimeNode with its two parts, the application/pgp-encrypted version part and the
 * application/octet-stream part holding the ASCII-armored OpenPGP message. A message that
 * is multipart/encrypted already is returned as it is (null: nothing to do).
 */
export async function encryptToPgpMime(message: Buffer, armoredKey: string, date = new Date()): Promise<Buffer | null> {
  if (isPgpMimeEncrypted(message)) return null;
  let fields: HeaderField[] = [];
  for (const f of headerFields(message)) {
    // The fronts' content rules refuse such a header section; were one here, nothing is
    // copied outside and the whole message, as it is, is the content entity inside.
    if ('malformed' in f) {
      fields = [];
      break;
    }
    fields.push(f);
  }
  const end = message.indexOf('\r\n\r\n');
  const body = !fields.length ? message : end < 0 ? Buffer.alloc(0) : message.subarray(end + 4);
  const isContent = (f: HeaderField) => /^content-/i.test(f.name);
  const isMimeVersion = (f: HeaderField) => f.name.toLowerCase() === 'mime-version';

  // Inside: the message's header fields (protected headers), then the wrapper and its one child, the content entity.
  const holder = new MimeNode('multipart/mixed');
  const wrapper = holder.createChild('multipart/mixed; protected-headers="v1"');
  wrapper.createChild('application/octet-stream').setRaw(fields.length ? Buffer.concat([...fields.filter(isContent).map((f) => fieldBytes(message, f)), Buffer.from('\r\n'), body]) : message);
  const inner = Buffer.concat([...fields.filter((f) => !isContent(f) && !isMimeVersion(f)).map((f) => fieldBytes(message, f)), await wrapper.build()]);

  const key = await readKey({ armoredKey });
  const armored = await encrypt({ message: await createMessage({ binary: new Uint8Array(inner.buffer, inner.byteOffset, inner.length) }), encryptionKeys: key, format: 'armored', date });

  // Outside: the entity is built as a child node: MimeNode writes its own Date, Message-ID
  // and MIME-Version only on a root, and the message's own are kept instead.
  const entity = holder.createChild('multipart/encrypted; protocol="application/pgp-encrypted"');
  entity
    .createChild('application/pgp-encrypted')
    .setHeader({ 'Content-Description': 'PGP/MIME version identification', 'Content-Transfer-Encoding': '7bit' })
    .setContent('Version: 1\r\n');
  entity
    .createChild('application/octet-stream', { filename: 'encrypted.asc' })
    .setHeader({ 'Content-Description': 'OpenPGP encrypted message', 'Content-Disposition': 'inline', 'Content-Transfer-Encoding': '7bit' })
    .setContent(armored.replace(/\r?\n/g, '\r\n'));
  const outside = fields.filter((f) => keptOutside(f.name.toLowerCase())).map((f) => fieldBytes(message, f));
  return Buffer.concat([...outside, Buffer.from(`Subject: ${OBSCURED_SUBJECT}\r\nMIME-Version: 1.0\r\n`, 'latin1'), await entity.build()]);
}

/** A field's whole bytes, name to the end of its last folded line, with its CRLF. */
const fieldBytes = (message: Buffer, f: HeaderField) => message.subarray(message.lastIndexOf(0x0a, f.valueStart - 1) + 1, f.end + 2);
