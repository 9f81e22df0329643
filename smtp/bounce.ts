import type { Db } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';
import { normaliseDomain } from '../core/policy/index.js';
import { buildDsn, type DsnRecipient } from './dsn.js';
import { enqueueOutbound } from './outbound.js';
import type { BodyCipher } from './body-cipher.js';
import { spoolMessage } from './spool.js';

export interface BouncerOptions {
  db: Db;
  journal: Journal;
  hostname: string;
  operatorDomain: string;
  localDomains: string[];
  outboundMaxAgeMs: number;
  kick: () => void;
  /** Seals the DSN's body like any spooled body (crypt.spool). */
  cipher?: BodyCipher;
}

export type Bounce = (
  original: { envFrom: string; body: Buffer; arrivedAt: Date; messageId?: string | null },
  failed: Array<{ rcpt: string; code: number; response: string; remoteMta?: string }>,
) => Promise<void>;

/**
 * Writes an RFC 3464 DSN to the original sender, through the same spool and queue as any
 * message: a local sender gets it over LMTP, another operator's through the queue. A bounce
 * is never bounced (its envelope sender is empty).
 */
export function bouncer(o: BouncerOptions): Bounce {
  return async (original, failed) => {
    if (!original.envFrom || !failed.length) return;
    const dsn = await buildDsn({
      reportingMta: o.hostname,
      from: `postmaster@${o.operatorDomain}`,
      to: original.envFrom,
      original: original.body,
      arrivalDate: original.arrivedAt,
      recipients: failed.map((f): DsnRecipient => ({ ...f, action: 'failed' })),
    });
    const local = o.localDomains.some((d) => normaliseDomain(d) === normaliseDomain(original.envFrom.split('@').pop() ?? ''));
    await o.db.transaction(async (tx) => {
      if (local) await spoolMessage(tx, { front: 'dsn', envFrom: '', localRcpts: [original.envFrom.toLowerCase()], body: dsn, peer: { dsnFor: original.messageId ?? null } }, o.cipher);
      else await enqueueOutbound(tx, { spoolId: null, envFrom: '', rcpts: [original.envFrom], body: dsn, messageId: undefined }, o.outboundMaxAgeMs, o.cipher);
    });
    await o.journal.append({ type: 'smtp.dsn', actor: 'system', subject: original.messageId ?? original.envFrom, details: { to: original.envFrom, failed } });
    o.kick();
  };
}
