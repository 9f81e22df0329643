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

const HELD_MAX_BYTES = 64 * 1024 * 1024;
const HELD_MAX_AGE_MS = 60_000;

/**
 * Moves spooled messages into Dovecot over LMTP. At least once: a crash after LMTP said
 * 250 and before the spool row was updated delivers again at the next start — never
 * zero times. Kicked right after each 250, and polls for leftovers (crash, back-off).
 */
export class DeliveryWorker extends Poller {
  /** Bodies the fronts just spooled, by spool id: delivered without reading them back. */
  private readonly held = new Map<number, { body: Buffer; at: number }>();
  private heldBytes = 0;

  constructor(
    private readonly db: Db,
    private readonly journal: Journal,
    log: Logger,
    private readonly o: DeliveryOptions,
  ) {
    super(log, 'delivery', o.pollMs ?? 1000);
  }

  /**
   * A copy of a body that is already committed in the spool (the row stays the truth): the
   * next claim of that row skips reading it back. Bounded; what does not fit is read back.
   */
  remember(spoolId: number, body: Buffer) {
    // Rows another instance delivered, or that waited long: not worth holding any more.
    const old = Date.now() - HELD_MAX_AGE_MS;
    for (const [id, h] of this.held) {
      if (h.at > old) break;
      this.forget(id);
    }
    if (this.heldBytes + body.length > HELD_MAX_BYTES) return;
    this.held.set(spoolId, { body, at: Date.now() });
    this.heldBytes += body.length;
  }

  private forget(spoolId: number) {
    const h = this.held.get(spoolId);
    if (!h) return;
    this.held.delete(spoolId);
    this.heldBytes -= h.body.length;
  }

  protected async round() {
    const n = this.o.concurrency ?? 8;
    for (;;) {
      // The oldest held ids first, as claimDue takes the oldest rows first.
      const held: number[] = [];
      for (const id of this.held.keys()) if (held.push(id) >= n * 16) break;
      const rows = await claimDue(this.db, n * 4, 300, held);
      if (!rows.length) return;
      await Poller.each(rows, n, (r) => this.deliverOne(r));
    }
  }

  private async deliverOne(row: SpoolRow) {
    try {
      row.body ??= this.held.get(row.id)?.body ?? (await this.db.query<{ body: Buffer | null }>('SELECT body FROM smtp_spool WHERE id = $1', [row.id])).rows[0]?.body ?? null;
      await this.attempt(row);
    } finally {
      this.forget(row.id);
    }
  }

  private async attempt(row: SpoolRow) {
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
