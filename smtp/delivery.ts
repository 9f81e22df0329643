import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../core/db/index.js';
import type { Journal, JournalEventInput } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { DeliveryResult, LmtpRoute, LmtpTarget } from '../mailstore/lmtp.js';
import { LmtpPool } from './lmtp-sessions.js';
import { Poller } from './poller.js';
import type { BodyCipher } from './body-cipher.js';
import { claimDue, heartbeatWorker, outcomeState, readSpoolBody, registerWorker, retireWorker, WORKER_HEARTBEAT_SECONDS, type DeliveryOutcome, type SpoolRecord, type SpoolRow } from './spool.js';
import { SpoolWriter } from './spool-writer.js';
import { PgpMimeThread } from './openpgp-thread.js';
import { MssError } from '../core/errors.js';
import { eachLimit } from '../core/each.js';

/** The OpenPGP keys of those of these local recipients that registered one (annuaire/bal/openpgp.ts), by lower-case address. */
export type OpenPgpKeyLookup = (rcpts: readonly string[]) => Promise<Map<string, { fingerprint: string; armored: string }>>;

export interface DeliveryOptions {
  lmtp: LmtpTarget;
  /** A shared store (mailstore.cluster): each recipient goes to its box's back end, or that one's pair when it cannot be reached; `lmtp` is then unused. */
  route?: LmtpRoute;
  hostname: string;
  concurrency?: number;
  pollMs?: number;
  /** Give up on a recipient Dovecot keeps refusing temporarily after this long. */
  maxAgeSeconds?: number;
  /** Where outcomes are recorded (group commit, shared with the fronts); one of its own if not given. */
  writer?: SpoolWriter;
  /** Called with each message's final recipients refused for good (the DSN writer). */
  onPermanentFailure?: (row: SpoolRow, failed: DeliveryOutcome['failed']) => Promise<void>;
  /** Boxes with an OpenPGP key get their copy encrypted to it (smtp/openpgp.ts). Absent: every copy is stored as it came. */
  openpgpKeys?: OpenPgpKeyLookup;
  /** Opens the bodies sealed in the spool (crypt.spool; smtp/body-cipher.ts). */
  cipher?: BodyCipher;
}

/** Recipients whose copy went out encrypted, and to which key (for the journal). */
type Encrypted = Array<{ rcpt: string; fingerprint: string }>;

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
  /** Encrypts copies for boxes with an OpenPGP key, off this event loop; started with the first. */
  private pgp?: PgpMimeThread;
  /** Deliveries started by deliverNow, awaited by stop(). */
  private readonly direct = new Set<Promise<void>>();
  /** One pool of sessions per back end (one only, `o.lmtp`, unless the store is shared). */
  private readonly pools = new Map<string, LmtpPool>();
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
    await this.pgp?.stop();
    for (const p of this.pools.values()) p.close();
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
        await eachLimit(rows, n, async (row) => {
          recording.push((await this.deliverOne(row).catch((e) => this.defer(row, e))).recorded);
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
    const { outcome, encrypted } = await this.attempt(row);
    const recorded = this.finish(row, outcome, encrypted).catch((e) => this.release(row.id, e, 'could not record a delivery outcome; the row will be tried again'));
    return { recorded };
  }

  /**
   * A claimed row that could not even be tried (its body does not open here — sealed under
   * spool keys this node lacks —, or cannot be read): recorded as deferred with its back-off
   * and the reason, which lets go of the lease. Failing the round instead left the row leased
   * to this live worker, so no claim, this worker's included, ever took it again.
   */
  private defer(row: SpoolRow, err: unknown): { recorded: Promise<void> } {
    this.log.error({ err, spool: row.id }, 'could not attempt a claimed delivery; deferred');
    const outcome: DeliveryOutcome = { delivered: [], failed: [], retry: row.local_rcpts, error: `not attempted: ${(err as Error).message}` };
    return { recorded: this.finish(row, outcome).catch((e) => this.release(row.id, e, 'could not record a deferred delivery; the row will be tried again')) };
  }

  /** Lets go of a row this worker holds, for the poller to take again (at once, or after a restart if the database is what failed). */
  private async release(id: number, err: unknown, why: string) {
    this.log.error({ err, spool: id }, why);
    await this.db.query('UPDATE smtp_spool SET leased_by = NULL WHERE id = $1 AND leased_by = $2', [id, this.id]).catch(() => {});
    this.kick();
  }

  private pool(t: LmtpTarget): LmtpPool {
    const key = `${t.tls ? 'tls' : 'tcp'}:${t.host}:${t.port}`;
    let p = this.pools.get(key);
    if (!p) this.pools.set(key, (p = new LmtpPool(t, { name: this.o.hostname, size: this.o.concurrency ?? 8 })));
    return p;
  }

  /**
   * Each group of recipients to its back end; when that one cannot be reached (no LMTP
   * answer: nothing delivered for sure), to the next — its pair, which holds the replica
   * and syncs back. A failure in the middle of a transfer may so deliver twice, never zero
   * times. A group no back end took is retried as a whole.
   */
  private async deliverRouted(row: SpoolRow, to: string[], body: Buffer): Promise<DeliveryResult> {
    if (!this.o.route) return this.pool(this.o.lmtp).deliver({ from: row.env_from, to }, body);
    const groups = await this.o.route(to);
    const out: DeliveryResult = { accepted: [], failed: [] };
    let lastError: Error | undefined;
    for (const g of groups) {
      let done = false;
      for (const t of g.targets) {
        try {
          const r = await this.pool(t).deliver({ from: row.env_from, to: g.rcpts }, body);
          out.accepted.push(...r.accepted);
          out.failed.push(...r.failed);
          done = true;
          break;
        } catch (e) {
          lastError = e as Error;
          if (g.targets.length > 1) this.log.warn({ spool: row.id, backend: `${t.host}:${t.port}`, err: lastError.message }, 'back end unreachable; trying the next one of its pair');
        }
      }
      if (!done) out.failed.push(...g.rcpts.map((rcpt) => ({ rcpt, code: 451, response: `451 4.4.1 LMTP: ${lastError?.message ?? 'no back end'}`, temporary: true })));
    }
    return out;
  }

  /**
   * One LMTP transaction for the recipients that take the message as it came; one more per
   * recipient with an OpenPGP key, each with its own encrypted copy. A key that cannot be
   * read or used leaves that recipient to retry (the mail is kept, never stored in clear
   * for a box that asked for encryption); so does a failed key lookup, for every recipient.
   */
  private async attempt(row: SpoolRow): Promise<{ outcome: DeliveryOutcome; encrypted: Encrypted }> {
    let keys: Awaited<ReturnType<OpenPgpKeyLookup>>;
    try {
      keys = this.o.openpgpKeys ? await this.o.openpgpKeys(row.local_rcpts) : new Map();
    } catch (e) {
      return { outcome: { delivered: [], failed: [], retry: row.local_rcpts, error: `OpenPGP key lookup: ${(e as Error).message}` }, encrypted: [] };
    }
    const clear = row.local_rcpts.filter((r) => !keys.has(r.toLowerCase()));
    const encrypted: Encrypted = [];
    const parts = await Promise.all([
      clear.length ? this.transaction(row, clear, row.body!) : null,
      ...row.local_rcpts
        .filter((r) => keys.has(r.toLowerCase()))
        .map(async (rcpt): Promise<DeliveryOutcome> => {
          const key = keys.get(rcpt.toLowerCase())!;
          let body: Buffer | null;
          try {
            body = await (this.pgp ??= new PgpMimeThread()).encrypt(row.body!, key.armored);
          } catch (e) {
            const err = new MssError('OPENPGP_ENCRYPT_FAILED', { address: rcpt, fingerprint: key.fingerprint, reason: (e as Error).message });
            return { delivered: [], failed: [], retry: [rcpt], error: err.message };
          }
          // Already PGP/MIME: stored as it came, never encrypted twice.
          if (body) encrypted.push({ rcpt, fingerprint: key.fingerprint });
          return this.transaction(row, [rcpt], body ?? row.body!);
        }),
    ]);
    const outcome: DeliveryOutcome = { delivered: [], failed: [], retry: [] };
    for (const p of parts) {
      if (!p) continue;
      outcome.delivered.push(...p.delivered);
      outcome.failed.push(...p.failed);
      outcome.retry.push(...p.retry);
      outcome.error ??= p.error;
    }
    return { outcome, encrypted: encrypted.filter((e) => outcome.delivered.includes(e.rcpt)) };
  }

  private async transaction(row: SpoolRow, to: string[], body: Buffer): Promise<DeliveryOutcome> {
    try {
      const r = await this.deliverRouted(row, to, body);
      return {
        delivered: r.accepted,
        failed: r.failed.filter((f) => !f.temporary).map((f) => ({ rcpt: f.rcpt, code: f.code, response: f.response })),
        retry: r.failed.filter((f) => f.temporary).map((f) => f.rcpt),
        error: r.failed.find((f) => f.temporary)?.response,
      };
    } catch (e) {
      return { delivered: [], failed: [], retry: to, error: `LMTP: ${(e as Error).message}` };
    }
  }

  private async finish(row: SpoolRow, outcome: DeliveryOutcome, encrypted: Encrypted = []) {
    const backoff = Math.min(60 * 2 ** Math.max(0, row.attempts - 1), 3600);
    const state = outcomeState(row, outcome, this.o.maxAgeSeconds ?? 5 * 86400);
    await this.writer.record({ id: row.id, state, outcome, backoffSeconds: backoff, row, events: outcomeEvents(row, outcome, state, encrypted) });
    const base = { spool: row.id, messageId: row.message_id };
    if (outcome.retry.length) this.log.warn({ ...base, retry: outcome.retry, error: outcome.error, state }, 'local delivery deferred');
    const permanent = state === 'failed' ? [...outcome.failed, ...outcome.retry.map((rcpt) => ({ rcpt, code: 451, response: outcome.error ?? 'expired' }))] : outcome.failed;
    if (permanent.length && this.o.onPermanentFailure) await this.o.onPermanentFailure(row, permanent).catch((e) => this.log.error({ err: e }, 'could not write the DSN'));
    this.log.info({ ...base, delivered: outcome.delivered.length, failed: outcome.failed.length, retry: outcome.retry.length }, 'lmtp delivery');
  }
}

/** The journal's account of one delivery attempt. */
function outcomeEvents(row: SpoolRow, outcome: DeliveryOutcome, state: 'done' | 'queued' | 'failed', encrypted: Encrypted): JournalEventInput[] {
  const subject = row.message_id ?? `spool:${row.id}`;
  const base = { spool: row.id, messageId: row.message_id };
  const events: JournalEventInput[] = [];
  if (outcome.delivered.length) events.push({ type: 'smtp.delivered', actor: 'system', subject, details: { ...base, rcpts: outcome.delivered, store: 'dovecot-lmtp', ...(encrypted.length ? { openpgp: encrypted } : {}) } });
  if (outcome.failed.length) events.push({ type: 'smtp.delivery.failed', actor: 'system', subject, details: { ...base, failed: outcome.failed } });
  if (outcome.retry.length) events.push({ type: state === 'failed' ? 'smtp.delivery.expired' : 'smtp.delivery.deferred', actor: 'system', subject, details: { ...base, rcpts: outcome.retry, error: outcome.error } });
  return events;
}
