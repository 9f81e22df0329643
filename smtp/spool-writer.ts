import type { Db, Queryable } from '../core/db/index.js';
import type { Journal, JournalEventInput } from '../core/journal/index.js';
import { isConnectionError } from '../core/db/pg-failover.js';
import { isMssError } from '../core/errors.js';
import { IdBlocks, type BodyCipher } from './body-cipher.js';
import { GroupCommit } from './group-commit.js';
import { recordOutcomes, spoolMessages, type RecordedOutcome, type SpoolRecord, type SpoolRow } from './spool.js';

/** A message a front is about to answer 250 for. */
export interface Accepted {
  record: SpoolRecord;
  /** Other operators' recipients: rows in the outbound queue, same transaction. */
  remote: string[];
  /** Its `smtp.received` journal event; the spool id is added to its details (and is its subject when it has none). */
  event: JournalEventInput;
}

/** What a delivery attempt achieved, with the journal events that say so. */
export interface Outcome extends RecordedOutcome {
  row: SpoolRow;
  events: JournalEventInput[];
}

export type EnqueueOutbound = (q: Queryable, m: { spoolId: number; envFrom: string; rcpts: string[]; body: Buffer; messageId?: string }) => Promise<void>;

type Item = { kind: 'accept'; a: Accepted } | { kind: 'outcome'; o: Outcome };

/**
 * How long a delivery outcome may wait to be recorded. Until then the row stays leased (no
 * claim takes it again); a crash in between delivers that message a second time, never
 * zero times.
 */
const OUTCOME_DELAY_MS = 50;

/**
 * Every write of the spool's hot path goes through here: new messages from the fronts and
 * outcomes from the delivery worker. What arrives together is written together — one
 * transaction holds the new rows (one INSERT), their outbound rows, the outcomes (one
 * UPDATE) and all their journal events (one chained INSERT) — so a message costs a share
 * of a handful of statements and of one commit instead of a dozen statements and two
 * commits. A front answers 250 only once the transaction holding its row is committed: the
 * row and its `smtp.received` event are durable together, or neither is.
 */
export class SpoolWriter {
  private readonly batches: GroupCommit<Item, number>;
  /** Spool ids drawn ahead: no extra statement per batch to bind each sealed body to its row. */
  private readonly ids = new IdBlocks('smtp_spool');

  constructor(
    private readonly db: Db,
    private readonly journal: Journal,
    private readonly enqueueOutbound?: EnqueueOutbound,
    /** Seals the bodies it writes (crypt.spool; smtp/body-cipher.ts). */
    private readonly cipher?: BodyCipher,
  ) {
    // Bounded so that one transaction stays a few MB even when 25 MB messages pile up.
    // Nobody waits on an outcome: it waits up to OUTCOME_DELAY_MS for company, and rides
    // with the next batch of new messages if one comes first.
    // A batch whose COMMIT was cut (a database failover) may be saved: its items are not
    // written again one by one (that could save them twice); each front answers 4xx.
    this.batches = new GroupCommit((items) => this.write(items), {
      maxItems: 500,
      maxBytes: 16 << 20,
      bytes: (i) => (i.kind === 'accept' ? i.a.record.body.length : 0),
      lazyMs: OUTCOME_DELAY_MS,
      // Nor one that found no database (no primary within database.failoverTimeout): one by one, each would wait that long again.
      retryAlone: (e) => !(isMssError(e) && (e.code === 'DB_COMMIT_UNKNOWN' || e.code === 'DB_UNREACHABLE')) && !isConnectionError(e),
    });
  }

  /** Resolves with the spool id once the message is committed. */
  accept(a: Accepted): Promise<number> {
    if (a.remote.length && !this.enqueueOutbound) return Promise.reject(new Error('no outbound queue for remote recipients'));
    return this.batches.submit({ kind: 'accept', a });
  }

  /** Resolves once the outcome is committed (within OUTCOME_DELAY_MS, or with the next new messages). */
  async record(o: Outcome): Promise<void> {
    await this.batches.submit({ kind: 'outcome', o }, { lazy: true });
  }

  drain(): Promise<void> {
    return this.batches.drain();
  }

  private write(items: Item[]): Promise<number[]> {
    return this.db.transaction(async (tx) => {
      const accepted = items.flatMap((i) => (i.kind === 'accept' ? [i.a] : []));
      const ids = accepted.length ? await spoolMessages(tx, accepted.map((a) => a.record), this.cipher, this.ids) : [];
      for (let i = 0; i < accepted.length; i++) {
        const { record, remote } = accepted[i];
        if (remote.length) await this.enqueueOutbound!(tx, { spoolId: ids[i], envFrom: record.envFrom, rcpts: remote, body: record.body, messageId: record.messageId });
      }
      const outcomes = items.flatMap((i) => (i.kind === 'outcome' ? [i.o] : []));
      await recordOutcomes(tx, outcomes);
      const events: JournalEventInput[] = [];
      const out: number[] = [];
      let k = 0;
      for (const i of items) {
        if (i.kind === 'accept') {
          const id = ids[k++];
          const ev = i.a.event;
          events.push({ ...ev, subject: ev.subject ?? `spool:${id}`, details: { ...ev.details, spool: id } });
          out.push(id);
        } else {
          events.push(...i.o.events);
          out.push(i.o.id);
        }
      }
      if (events.length) await this.journal.appendManyIn(tx, events);
      return out;
      // Only database writes: after a connection lost before COMMIT (a PostgreSQL failover)
      // it runs again on the new primary; lost during COMMIT, the fronts answer 4xx.
    }, { retry: true });
  }
}
