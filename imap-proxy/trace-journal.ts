// Traces of one session, gathered before they go to the journal. A mail client reading a
// folder sends one FETCH per message: 30 messages opened in a row become one
// `imap.fetch` event listing the 30 sets, not 30 events. Consecutive actions of the same
// kind, mailbox and outcome are merged; the batch leaves when the kind changes, when it is
// big enough, at least every flushInterval, and at the end of the session. The journal
// group-commits the events of all sessions on top of that.
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { TraceAction } from './trace.js';

/** Sets listed in one event; beyond, the event counts commands without listing them. */
const MAX_SETS = 100;
/** Commands merged into one event. */
const MAX_MERGED = 500;

interface Batch {
  key: string;
  first: TraceAction;
  last: number;
  commands: number;
  sets: string[];
  setsTruncated: boolean;
  sizes: number[];
  expunged: number;
  items: Set<string>;
}

export class TraceJournal {
  private batch: Batch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly writes = new Set<Promise<unknown>>();

  constructor(
    private readonly journal: Pick<Journal, 'append'>,
    private readonly who: { actor: string; bal: string; session: string },
    private readonly flushIntervalMs: number,
    private readonly log: Logger,
  ) {}

  add(a: TraceAction): void {
    const key = [a.op, a.mailbox, a.status, a.uid ? 'uid' : '', a.to ?? '', a.flags ?? '', a.via ?? '', a.unparsed ? 'unparsed' : ''].join('\u0000');
    if (this.batch && this.batch.key !== key) this.flush();
    if (!this.batch) {
      this.batch = { key, first: a, last: a.at, commands: 0, sets: [], setsTruncated: false, sizes: [], expunged: 0, items: new Set() };
      if (!this.timer) {
        this.timer = setTimeout(() => this.flush(), this.flushIntervalMs);
        this.timer.unref();
      }
    }
    const b = this.batch;
    b.commands++;
    b.last = a.at;
    if (a.set !== undefined) {
      if (b.sets.length < MAX_SETS) b.sets.push(a.set);
      else b.setsTruncated = true;
    }
    if (a.sizes) b.sizes.push(...a.sizes.slice(0, MAX_SETS - b.sizes.length));
    if (a.expunged) b.expunged += a.expunged;
    for (const i of a.items ?? []) if (b.items.size < 20) b.items.add(i);
    if (b.commands >= MAX_MERGED) this.flush();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const b = this.batch;
    this.batch = null;
    if (!b) return;
    const a = b.first;
    const details: Record<string, unknown> = {
      session: this.who.session,
      mailbox: a.mailbox,
      status: a.status,
      at: new Date(a.at).toISOString(),
      ...(b.commands > 1 ? { until: new Date(b.last).toISOString(), commands: b.commands } : {}),
      ...(a.uid ? { uid: true } : {}),
      ...(b.sets.length ? { sets: b.sets } : {}),
      ...(b.setsTruncated ? { setsTruncated: true } : {}),
      ...(b.items.size ? { items: [...b.items] } : {}),
      ...(a.flags ? { flags: a.flags } : {}),
      ...(a.to !== undefined ? { to: a.to } : {}),
      ...(b.sizes.length ? { sizes: b.sizes } : {}),
      ...(b.expunged ? { expunged: b.expunged } : {}),
      ...(a.via ? { via: a.via } : {}),
      ...(a.unparsed ? { unparsed: true } : {}),
    };
    const w = this.journal
      .append({ type: `imap.${a.op}`, actor: this.who.actor, subject: this.who.bal, details })
      .catch((e) => this.log.error({ err: e, session: this.who.session }, 'could not journal an IMAP trace'));
    this.writes.add(w);
    void w.finally(() => this.writes.delete(w));
  }

  /** Flushes and waits until every trace of the session is stored. */
  async close(): Promise<void> {
    this.flush();
    await Promise.all([...this.writes]);
  }
}
