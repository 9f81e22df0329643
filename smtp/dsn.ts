import { randomBytes } from 'node:crypto';
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { headerSection } from './message.js';

export interface DsnRecipient {
  rcpt: string;
  /** The reply that settled it (or the last one before we gave up). */
  code: number;
  response: string;
  /** failed (5.x.x), or delayed (4.x.x) for a warning. */
  action: 'failed' | 'delayed';
  remoteMta?: string;
}

export interface DsnInput {
  reportingMta: string;
  /** postmaster@<operator domain>: the From of the report. */
  from: string;
  /** The original envelope sender, who receives the report. */
  to: string;
  original: Buffer;
  arrivalDate: Date;
  recipients: DsnRecipient[];
  envelopeId?: string;
}

const statusOf = (r: DsnRecipient) => {
  const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(r.response);
  return m ? m[1] : r.code >= 500 ? '5.0.0' : '4.0.0';
};

/**
 * An RFC 3464 delivery status notification: multipart/report with a sentence for people,
 * the machine-readable message/delivery-status, and the original headers
 * (text/rfc822-headers). Built with nodemailer's MimeNode, never by hand.
 */
export async function buildDsn(d: DsnInput): Promise<Buffer> {
  const failed = d.recipients.filter((r) => r.action === 'failed');
  const root = new MimeNode('multipart/report; report-type=delivery-status');
  root.setHeader({
    From: `Mail Delivery System <${d.from}>`,
    To: d.to,
    Subject: failed.length ? 'Undelivered MSSanté message / Message MSSanté non distribué' : 'Delayed MSSanté message / Message MSSanté retardé',
    'Message-ID': `<dsn.${randomBytes(8).toString('hex')}@${d.reportingMta}>`,
    'Auto-Submitted': 'auto-replied',
    Date: new Date().toUTCString(),
  });
  const lines = d.recipients.map((r) => `  <${r.rcpt}>: ${r.response}`);
  root
    .createChild('text/plain; charset=utf-8')
    .setContent(
      (failed.length
        ? 'Votre message n\'a pas pu être distribué aux destinataires suivants.\nYour message could not be delivered to the following recipients.\n\n'
        : 'Votre message n\'est pas encore distribué ; nous réessayons.\nYour message has not been delivered yet; we keep trying.\n\n') +
        lines.join('\n') +
        '\n',
    );
  const perMessage = [`Reporting-MTA: dns; ${d.reportingMta}`, ...(d.envelopeId ? [`Original-Envelope-Id: ${d.envelopeId}`] : []), `Arrival-Date: ${d.arrivalDate.toUTCString()}`];
  const perRecipient = d.recipients.map((r) =>
    [
      `Final-Recipient: rfc822; ${r.rcpt}`,
      `Action: ${r.action}`,
      `Status: ${statusOf(r)}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
      `Diagnostic-Code: smtp; ${r.response.replace(/[\r\n]+/g, ' ')}`,
    ].join('\r\n'),
  );
  root.createChild('message/delivery-status').setContent([perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n') + '\r\n');
  root.createChild('text/rfc822-headers').setContent(headerSection(d.original));
  return root.build();
}
