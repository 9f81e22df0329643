import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../core/db/index.js';
import type { Journal, JournalEventInput } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { LmtpTarget } from '../mailstore/lmtp.js';
import { LmtpPool } from './lmtp-sessions.js';
import { Poller } from './poller.js';
import type { BodyCipher } from './body-cipher.js';
import { claimDue, heartbeatWorker, outcomeState, readSpoolBody, registerWorker, retireWorker, WORKER_HEARTBEAT_SECONDS, type DeliveryOutcome, type SpoolRecord, type SpoolRow } from './spool.js';
import { SpoolWriter } from './spool-writer.js';

export interface DeliveryOptions {
  lmtp: LmtpTarget;
  hostname: string;
  concurrency?: number;
  pollMs?: number;
  /** Give up on a recipient Dovecot keeps refusing temporarily after this long. */
  maxAgeSeconds?: number;
  /** Where outcomes are recorded (group commit, shared with the fronts); one of its own if not given. */
  writer?: SpoolWriter;
  /** Called with each message's final recipients refused for good (the DSN writer). */
  onPermanentFailure?: (row: SpoolRow, failed: DeliveryOutcome['failed']) => Promise<void>;
  /** Opens the bodies sealed in the spool (crypt.spool; smtp/body-cipher.ts). */
  cipher?: BodyCipher;
}

/**
 * Moves spooled messages into Dovecot over LMTP. At least once: a crash after LMTP said
 * 250 and before the spool row was updated delivers again at the next start (the dead
 * worker's leases stop counting once its heartbeat stops; at once on PGlite) — never zero
 * times. A message the fronts just spooled is written already leased to this worker and
 * delivered at once from memory (deliverNow); the poller claims the rest (a crash's
 * unfinished rows, retries after back-off) from the database.
 * LMTP sessions stay open from one message to the next; the outcomes of deliveries that
 * finish together are recorded in one transaction (rows and journal events).
 */
export class DeliveryWorker extends Poller {
  /** Deliveries started by deliverNow, awaited by stop(). */
  private readonly direct = new Set<Promise<void>>();
  private readonly lmtp: LmtpPool;
  private readonly writer: SpoolWriter;
  /** This worker in smtp_workers: its leases count while it refreshes its row. */
  readonly id = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private registered: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    private readonly journal: Journal,
    log: Logger,
    private readonly o: DeliveryOptions,
  ) {
    super(log, 'delivery', o.pollMs ?? 1000);
    this.lmtp = new LmtpPool(o.lmtp, { name: o.hostname, size: o.concurrency ?? 8 });
    this.writer = o.writer ?? new SpoolWriter(db, journal);
  }

  /** This worker's id once it is registered: rows leased to it count from then on. */
  async leaseHolder(): Promise<string> {
    // On PGlite this process is the only one: the leases of its predecessors are void.
    this.registered ??= registerWorker(this.db, this.id, this.db.kind === 'pglite').catch((e) => {
      this.registered = null;
      throw e;
    });
    await this.registered;
    return this.id;
  }

  /**
   * Delivers a message the fronts just spooled, leased to this worker (record.leasedBy),
   * without claiming or reading it back. If anything here fails, the lease is let go and
   * the poller takes the row like any other.
   */
  deliverNow(id: number, r: SpoolRecord) {
    const now = new Date();
    const row: SpoolRow = { id, received_at: now, state: 'queued', front: r.front, message_id: r.messageId ?? null, env_from: r.envFrom, local_rcpts: r.localRcpts, delivered_rcpts: [], failed_rcpts: [], size: r.body.length, body: r.body, peer: r.peer, attempts: 1, next_attempt_at: now, last_error: null };
    const done: Promise<void> = this.deliverOne(row)
      .then((d) => d.recorded)
      .catch((e) => this.release(id, e, 'direct delivery failed; the poller takes the row'))
      .finally(() => this.direct.delete(done));
    this.direct.add(done);
  }

  override start() {
    this.heartbeat = setInterval(() => {
      heartbeatWorker(this.db, this.id).catch((e) => this.log.warn({ err: e }, 'delivery worker heartbeat failed'));
    }, WORKER_HEARTBEAT_SECONDS * 1000);
    this.heartbeat.unref();
    super.start();
  }

  override async stop() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await super.stop();
    await Promise.all(this.direct);
    await this.writer.drain();
    this.lmtp.close();
    if (this.registered) await retireWorker(this.db, this.id).catch((e) => this.log.warn({ err: e }, 'could not retire the delivery worker'));
  }

  protected async round() {
    await this.leaseHolder();
    const n = this.o.concurrency ?? 8;
    // Outcomes being recorded: a session moves on to its next message meanwhile (the row
    // stays leased until its outcome commits, so no claim takes it again).
    let recording: Promise<void>[] = [];
    try {
      for (;;) {
        const rows = await claimDue(this.db, n * 4, this.id, this.o.cipher);
        if (!rows.length) return;
        await Poller.each(rows, n, async (row) => {
          recording.push((await this.deliverOne(row)).recorded);
          if (recording.length >= n * 8) {
            const all = recording;
            recording = [];
            await Promise.all(all);
          }
        });
      }
    } finally {
      await Promise.all(recording);
    }
  }

  /** Delivers; resolves once LMTP answered, with a promise that settles once the outcome is recorded. */
  private async deliverOne(row: SpoolRow): Promise<{ recorded: Promise<void> }> {
    row.body ??= await readSpoolBody(this.db, row.id, this.o.cipher);
    const outcome = await this.attempt(row);
    const recorded = this.finish(row, outcome).catch((e) => this.release(row.id, e, 'could not record a delivery outcome; the row will be tried again'));
    return { recorded };
  }

  /** Lets go of a row this worker holds, for the poller to take again (at once, or after a restart if the database is what failed). */
  private async release(id: number, err: unknown, why: string) {
    this.log.error({ err, spool: id }, why);
    await this.db.query('UPDATE smtp_spool SET leased_by = NULL WHERE id = $1 AND leased_by = $2', [id, this.id]).catch(() => {});
    this.kick();
  }

  private async attempt(row: SpoolRow): Promise<DeliveryOutcome> {
    try {
      const r = await this.lmtp.deliver({ from: row.env_from, to: row.local_rcpts }, row.body!);
      return {
        delivered: r.accepted,
        failed: r.failed.filter((f) => !f.temporary).map((f) => ({ rcpt: f.rcpt, code: f.code, response: f.response })),
        retry: r.failed.filter((f) => f.temporary).map((f) => f.rcpt),
        error: r.failed.find((f) => f.temporary)?.response,
      };
    } catch (e) {
      return { delivered: [], failed: [], retry: row.local_rcpts, error: `LMTP: ${(e as Error).message}` };
    }
  }

  private async finish(row: SpoolRow, outcome: DeliveryOutcome) {
    const backoff = Math.min(60 * 2 ** Math.max(0, row.attempts - 1), 3600);
    const state = outcomeState(row, outcome, this.o.maxAgeSeconds ?? 5 * 86400);
    await this.writer.record({ id: row.id, state, outcome, backoffSeconds: backoff, row, events: outcomeEvents(row, outcome, state) });
    const base = { spool: row.id, messageId: row.message_id };
    if (outcome.retry.length) this.log.warn({ ...base, retry: outcome.retry, error: outcome.error, state }, 'local delivery deferred');
    const permanent = state === 'failed' ? [...outcome.failed, ...outcome.retry.map((rcpt) => ({ rcpt, code: 451, response: outcome.error ?? 'expired' }))] : outcome.failed;
    if (permanent.length && this.o.onPermanentFailure) await this.o.onPermanentFailure(row, permanent).catch((e) => this.log.error({ err: e }, 'could not write the DSN'));
    this.log.info({ ...base, delivered: outcome.delivered.length, failed: outcome.failed.length, retry: outcome.retry.length }, 'lmtp delivery');
  }
}

/** The journal's account of one delivery attempt. */
function outcomeEvents(row: SpoolRow, outcome: DeliveryOutcome, state: 'done' | 'queued' | 'failed'): JournalEventInput[] {
  const subject = row.message_id ?? `spool:${row.id}`;
  const base = { spool: row.id, messageId: row.message_id };
  const events: JournalEventInput[] = [];
  if (outcome.delivered.length) events.push({ type: 'smtp.delivered', actor: 'system', subject, details: { ...base, rcpts: outcome.delivered, store: 'dovecot-lmtp' } });
  if (outcome.failed.length) events.push({ type: 'smtp.delivery.failed', actor: 'system', subject, details: { ...base, failed: outcome.failed } });
  if (outcome.retry.length) events.push({ type: state === 'failed' ? 'smtp.delivery.expired' : 'smtp.delivery.deferred', actor: 'system', subject, details: { ...base, rcpts: outcome.retry, error: outcome.error } });
  return events;
}
