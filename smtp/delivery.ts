import type { Db } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { deliverLmtp, type LmtpTarget } from '../mailstore/lmtp.js';
import { Poller } from './poller.js';
import { claimDue, recordOutcome, type DeliveryOutcome, type SpoolRow } from './spool.js';

export interface DeliveryOptions {
  lmtp: LmtpTarget;
  hostname: string;
  concurrency?: number;
  pollMs?: number;
  /** Give up on a recipient Dovecot keeps refusing temporarily after this long. */
  maxAgeSeconds?: number;
  /** Called with each message's final recipients refused for good (the DSN writer). */
  onPermanentFailure?: (row: SpoolRow, failed: DeliveryOutcome['failed']) => Promise<void>;
}

/**
 * Moves spooled messages into Dovecot over LMTP. At least once: a crash after LMTP said
 * 250 and before the spool row was updated delivers again at the next start — never
 * zero times. Kicked right after each 250, and polls for leftovers (crash, back-off).
 */
export class DeliveryWorker extends Poller {
  constructor(
    private readonly db: Db,
    private readonly journal: Journal,
    log: Logger,
    private readonly o: DeliveryOptions,
  ) {
    super(log, 'delivery', o.pollMs ?? 1000);
  }

  protected async round() {
    const n = this.o.concurrency ?? 8;
    for (;;) {
      const rows = await claimDue(this.db, n * 4);
      if (!rows.length) return;
      await Poller.each(rows, n, (r) => this.deliverOne(r));
    }
  }

  private async deliverOne(row: SpoolRow) {
    let outcome: DeliveryOutcome;
    try {
      const r = await deliverLmtp(this.o.lmtp, { from: row.env_from, to: row.local_rcpts }, Buffer.from(row.body!), { name: this.o.hostname });
      outcome = {
        delivered: r.accepted,
        failed: r.failed.filter((f) => !f.temporary).map((f) => ({ rcpt: f.rcpt, code: f.code, response: f.response })),
        retry: r.failed.filter((f) => f.temporary).map((f) => f.rcpt),
        error: r.failed.find((f) => f.temporary)?.response,
      };
    } catch (e) {
      outcome = { delivered: [], failed: [], retry: row.local_rcpts, error: `LMTP: ${(e as Error).message}` };
    }
    const backoff = Math.min(60 * 2 ** Math.max(0, row.attempts - 1), 3600);
    const state = await recordOutcome(this.db, row, outcome, backoff, this.o.maxAgeSeconds ?? 5 * 86400);
    const base = { spool: row.id, messageId: row.message_id };
    if (outcome.delivered.length) {
      await this.journal.append({ type: 'smtp.delivered', actor: 'system', subject: row.message_id ?? `spool:${row.id}`, details: { ...base, rcpts: outcome.delivered, store: 'dovecot-lmtp' } });
    }
    if (outcome.failed.length) {
      await this.journal.append({ type: 'smtp.delivery.failed', actor: 'system', subject: row.message_id ?? `spool:${row.id}`, details: { ...base, failed: outcome.failed } });
    }
    if (outcome.retry.length) {
      this.log.warn({ ...base, retry: outcome.retry, error: outcome.error, state }, 'local delivery deferred');
      await this.journal.append({ type: state === 'failed' ? 'smtp.delivery.expired' : 'smtp.delivery.deferred', actor: 'system', subject: row.message_id ?? `spool:${row.id}`, details: { ...base, rcpts: outcome.retry, error: outcome.error } });
    }
    const permanent = state === 'failed' ? [...outcome.failed, ...outcome.retry.map((rcpt) => ({ rcpt, code: 451, response: outcome.error ?? 'expired' }))] : outcome.failed;
    if (permanent.length && this.o.onPermanentFailure) await this.o.onPermanentFailure(row, permanent).catch((e) => this.log.error({ err: e }, 'could not write the DSN'));
    this.log.info({ ...base, delivered: outcome.delivered.length, failed: outcome.failed.length, retry: outcome.retry.length }, 'lmtp delivery');
  }
}
