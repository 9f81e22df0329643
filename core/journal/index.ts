import { createHash } from 'node:crypto';
import { readAnchor, writeAnchor, type Anchor } from './anchor.js';
import type { Db, Queryable } from '../db/index.js';
import { MssError } from '../errors.js';
import type { Logger } from '../logger.js';
import { GENESIS_HASH, eventHash, eventText, storableDetails, type HashedFields } from './canonical.js';
import { merkleProof, merkleRoot, rootFromProof, type ProofStep } from './merkle.js';
import type { Timestamper, TokenVerifier } from './types.js';

export type { Timestamper, TokenVerifier } from './types.js';
export { canonicalJson, eventHash, eventText } from './canonical.js';
export { rootFromProof } from './merkle.js';

export interface JournalEventInput {
  /** Dotted, module first: `smtp.received`, `imap.auth.failed`, `annuaire.import`. */
  type: string;
  /** Who acted: a person, an account, a peer certificate subject, or `system`. */
  actor: string;
  /** What it acted on: a BAL address, a message id, a file. */
  subject?: string;
  details?: Record<string, unknown>;
}

/** An event as stored: the hashed fields, its predecessor's hash and its own. */
export interface JournalEvent extends HashedFields {
  prevHash: string;
  hash: string;
}

export interface Appended {
  seq: number;
  hash: string;
}

export interface JournalOptions {
  log?: Logger;
  timestamper?: Timestamper;
  /** Checks each new token at once (a broken TSA is found at sealing, not at audit). */
  verifier?: TokenVerifier;
  sealBatch?: number;
  sealIntervalMs?: number;
  /**
   * A file outside the database where each seal leaves its mark (last sealed seq and the
   * seal's hash): verify then notices a journal cut back at the end — the last events
   * deleted together with their seals, which leaves nothing inside the database to see.
   */
  anchorFile?: string;
  /** The time events are stamped with (`at`); tests that build a month of traffic set it. Default: the system clock. */
  now?: () => Date;
}

export interface VerifyOptions {
  onProgress?: (seq: number) => void;
  /**
   * How old an unsealed event may be before verify calls it a failure. A running platform
   * seals every few seconds; a stopped one, and every `mss` command, leaves none. Default:
   * unsealed events are reported but never fail (for callers that only check the chain).
   */
  unsealedGraceMs?: number;
  /** No sealer can be running (the embedded database, held by the caller): any unsealed event fails, whatever the grace. */
  noSealer?: boolean;
  /** The anchor file the sealer writes (JournalOptions.anchorFile). */
  anchorFile?: string;
  /** For tests: the time verify takes as now. */
  now?: Date;
}

interface Pending {
  ev: JournalEventInput;
  resolve: (a: Appended) => void;
  reject: (e: unknown) => void;
}

const SEAL_LOCK = 0x4d53_5302;
/** Events per multi-row INSERT: 8 parameters each, well under PostgreSQL's 65,535. */
const FLUSH_MAX = 1000;

/**
 * The append-only, hash-chained, timestamped record of everything the platform decides.
 * `append` group-commits: events arriving together share one transaction, so journalling
 * keeps up with mail traffic; the promise resolves once the event is durably stored.
 */
export class Journal {
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private sealTimer: NodeJS.Timeout | null = null;
  private sealing: Promise<number> | null = null;
  private sinceSeal = 0;
  private readonly sealBatch: number;

  constructor(
    readonly db: Db,
    private readonly opts: JournalOptions = {},
  ) {
    this.sealBatch = opts.sealBatch ?? 1000;
  }

  append(ev: JournalEventInput): Promise<Appended> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ev, resolve, reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  /** Appends inside the caller's transaction: the event commits or rolls back with it. */
  async appendIn(tx: Queryable, ev: JournalEventInput): Promise<Appended> {
    return (await this.writeBatch(tx, [ev]))[0];
  }

  async appendManyIn(tx: Queryable, evs: JournalEventInput[]): Promise<Appended[]> {
    const out: Appended[] = [];
    for (let i = 0; i < evs.length; i += FLUSH_MAX) out.push(...(await this.writeBatch(tx, evs.slice(i, i + FLUSH_MAX))));
    return out;
  }

  private async flushLoop(): Promise<void> {
    // Yield once so that events appended in the same tick share the transaction.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.queue.splice(0, FLUSH_MAX);
      try {
        const out = await this.db.transaction((tx) => this.writeBatch(tx, batch.map((p) => p.ev)));
        batch.forEach((p, i) => p.resolve(out[i]));
        this.sinceSeal += batch.length;
        if (this.opts.timestamper && this.sinceSeal >= this.sealBatch && this.sealTimer) void this.sealNow();
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.flushing = null;
  }

  private async writeBatch(tx: Queryable, evs: JournalEventInput[]): Promise<Appended[]> {
    const { rows } = await tx.query<{ seq: number; hash: string }>('SELECT seq, hash FROM journal_head WHERE id = 1 FOR UPDATE');
    let { seq, hash } = rows[0];
    const at = this.opts.now?.() ?? new Date();
    const params: unknown[] = [];
    const values: string[] = [];
    const out: Appended[] = [];
    for (const ev of evs) {
      if (!ev.type || !ev.actor) throw new Error('a journal event needs a type and an actor');
      seq += 1;
      const fields = { seq, at, type: ev.type, actor: ev.actor, subject: ev.subject ?? null, details: storableDetails(ev.details) };
      const prev = hash;
      hash = eventHash(prev, fields);
      const n = params.length;
      values.push(`($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, $${n + 6}::jsonb, $${n + 7}, $${n + 8})`);
      params.push(seq, at, fields.type, fields.actor, fields.subject, JSON.stringify(fields.details), prev, hash);
      out.push({ seq, hash });
    }
    // The head moves in the same statement as the events go in: one round trip less per
    // batch (on PGlite, one call into the engine less on every hot path that journals).
    const n = params.length;
    await tx.query(
      `WITH head AS (UPDATE journal_head SET seq = $${n + 1}, hash = $${n + 2} WHERE id = 1)
       INSERT INTO journal_events (seq, at, type, actor, subject, details, prev_hash, hash) VALUES ${values.join(',')}`,
      [...params, seq, hash],
    );
    return out;
  }

  /** Waits until every event appended so far is stored. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Seal pending events every sealIntervalMs (and whenever sealBatch events piled up). */
  startSealing(): void {
    if (!this.opts.timestamper || this.sealTimer) return;
    const tick = () => {
      this.sealNow().catch((e) => this.opts.log?.error({ err: e }, 'journal sealing failed; will retry'));
    };
    this.sealTimer = setInterval(tick, this.opts.sealIntervalMs ?? 2000);
    this.sealTimer.unref();
  }

  /** Stops the sealer after storing and sealing everything pending. */
  async stop(): Promise<void> {
    if (this.sealTimer) clearInterval(this.sealTimer);
    this.sealTimer = null;
    await this.flush();
    if (this.opts.timestamper) await this.sealNow();
  }

  /** Seals every unsealed event now; returns how many events were sealed. */
  sealNow(): Promise<number> {
    if (this.sealing) return this.sealing.then(() => this.sealNow());
    const run = this.sealAll().finally(() => {
      this.sealing = null;
    });
    this.sealing = run;
    return run;
  }

  private async sealAll(): Promise<number> {
    const tsa = this.opts.timestamper;
    if (!tsa) throw new Error('no timestamping authority configured');
    let total = 0;
    let anchor: Anchor | undefined;
    for (;;) {
      const n = await this.db.transaction(async (tx) => {
        // One sealer at a time, across processes sharing the database.
        await tx.query('SELECT pg_advisory_xact_lock($1)', [SEAL_LOCK]);
        const last = await tx.query<{ last_seq: number; stamped: Buffer }>('SELECT last_seq, stamped FROM journal_seals ORDER BY last_seq DESC LIMIT 1');
        const from = (last.rows[0]?.last_seq ?? 0) + 1;
        const prevSeal = last.rows[0] ? sha256(last.rows[0].stamped) : GENESIS_HASH;
        const { rows } = await tx.query<{ seq: number; hash: string }>('SELECT seq, hash FROM journal_events WHERE seq >= $1 ORDER BY seq LIMIT $2', [from, this.sealBatch]);
        if (!rows.length) return 0;
        const to = rows[rows.length - 1].seq;
        const leaves = rows.map((r) => Buffer.from(r.hash, 'hex'));
        const root = merkleRoot(leaves).toString('hex');
        const stamped = sealText({ first: from, last: to, count: rows.length, root, prev: prevSeal });
        const token = await tsa.stamp(stamped);
        const genTime = this.opts.verifier ? (await this.opts.verifier.verify(token, stamped)).genTime : new Date();
        await tx.query('INSERT INTO journal_seals (first_seq, last_seq, root, prev_seal, stamped, token, gen_time, leaves) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          from,
          to,
          root,
          prevSeal,
          stamped,
          token,
          genTime,
          Buffer.concat(leaves),
        ]);
        anchor = { lastSeq: to, seal: sha256(stamped) };
        return rows.length;
      });
      total += n;
      if (n < this.sealBatch) break;
    }
    if (anchor && this.opts.anchorFile) {
      try {
        writeAnchor(this.opts.anchorFile, anchor);
      } catch (e) {
        // The seal itself is committed; the next one writes the anchor again.
        this.opts.log?.warn({ err: e, file: this.opts.anchorFile }, 'journal anchor not written');
      }
    }
    this.sinceSeal = 0;
    if (total) this.opts.log?.debug({ events: total }, 'journal sealed');
    return total;
  }

  async get(seq: number): Promise<JournalEvent | undefined> {
    const { rows } = await this.db.query<RowShape>('SELECT * FROM journal_events WHERE seq = $1', [seq]);
    return rows[0] && toEvent(rows[0]);
  }

  /** The audit trail, newest first, optionally filtered; `subjects` keeps only events about one of them (an admin's scope). */
  async list(f: { type?: string; typePrefix?: string; actor?: string; subject?: string; subjects?: readonly string[]; since?: Date; until?: Date; beforeSeq?: number; limit?: number } = {}): Promise<JournalEvent[]> {
    const where: string[] = [];
    const p: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      p.push(v);
      where.push(sql.replace('?', `$${p.length}`));
    };
    if (f.type) add('type = ?', f.type);
    if (f.typePrefix) add("type LIKE ? || '%'", f.typePrefix);
    if (f.actor) add('actor = ?', f.actor);
    if (f.subject) add('subject = ?', f.subject);
    if (f.subjects) add('subject = ANY(?::text[])', [...f.subjects]);
    if (f.since) add('at >= ?', f.since);
    if (f.until) add('at < ?', f.until);
    if (f.beforeSeq) add('seq < ?', f.beforeSeq);
    p.push(Math.min(f.limit ?? 100, 1000));
    const { rows } = await this.db.query<RowShape>(
      `SELECT * FROM journal_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT $${p.length}`,
      p,
    );
    return rows.map(toEvent);
  }

  /** Everything needed to prove one event to a third party with openssl alone. */
  async proof(seq: number): Promise<EventProof> {
    const ev = await this.get(seq);
    if (!ev) throw new MssError('JOURNAL_EVENT_NOT_FOUND', { id: seq });
    const { rows } = await this.db.query<SealRow>('SELECT * FROM journal_seals WHERE first_seq <= $1 AND last_seq >= $1', [seq]);
    const seal = rows[0];
    if (!seal) throw new MssError('JOURNAL_EVENT_NOT_SEALED', { id: seq });
    const hashes = await this.db.query<{ hash: string }>('SELECT hash FROM journal_events WHERE seq BETWEEN $1 AND $2 ORDER BY seq', [seal.first_seq, seal.last_seq]);
    const leaves = hashes.rows.map((r) => Buffer.from(r.hash, 'hex'));
    const path = merkleProof(leaves, seq - seal.first_seq);
    return {
      event: ev,
      hashedText: eventText(ev),
      merkle: { index: seq - seal.first_seq, leaves: leaves.length, path, root: seal.root },
      seal: { firstSeq: seal.first_seq, lastSeq: seal.last_seq, genTime: seal.gen_time, prevSeal: seal.prev_seal },
      stamped: Buffer.from(seal.stamped),
      token: Buffer.from(seal.token),
    };
  }

  /**
   * Re-checks the whole chain and every seal. Streams the table in pages, so it runs on a
   * journal of any size; reports every problem, and the first bad event.
   */
  async verify(verifier?: TokenVerifier, opts: VerifyOptions = {}): Promise<VerifyReport> {
    const problems: Problem[] = [];
    const PAGE = 5000;
    let expected = 1;
    let prevHash = GENESIS_HASH;
    let events = 0;
    let lastSeq = 0;
    for (;;) {
      const { rows } = await this.db.query<RowShape>('SELECT * FROM journal_events WHERE seq >= $1 ORDER BY seq LIMIT $2', [expected, PAGE]);
      if (!rows.length) break;
      for (const row of rows) {
        const ev = toEvent(row);
        if (ev.seq !== expected) {
          problems.push({ seq: expected, kind: 'missing', message: `event ${expected}${ev.seq - expected > 1 ? `–${ev.seq - 1}` : ''} missing: the sequence jumps from ${expected - 1} to ${ev.seq} (rows deleted)` });
        } else if (ev.prevHash !== prevHash) {
          problems.push({ seq: ev.seq, kind: 'chain', message: `event ${ev.seq} does not follow event ${ev.seq - 1}: its previous-hash link is broken (rows reordered, replaced or deleted)` });
        }
        if (eventHash(ev.prevHash, ev) !== ev.hash) {
          problems.push({ seq: ev.seq, kind: 'altered', message: `event ${ev.seq} was altered: its content no longer matches its hash` });
        }
        prevHash = ev.hash;
        expected = ev.seq + 1;
        lastSeq = ev.seq;
        events++;
      }
      opts.onProgress?.(lastSeq);
    }
    const head = (await this.db.query<{ seq: number; hash: string }>('SELECT seq, hash FROM journal_head WHERE id = 1')).rows[0];
    if (head && (head.seq !== lastSeq || (lastSeq > 0 && head.hash !== prevHash))) {
      problems.push({ seq: Math.min(head.seq, lastSeq + 1), kind: 'tail', message: `the journal ends at event ${lastSeq} but its head records event ${head.seq}: events were removed or rewritten at the end` });
    }

    const anchor = opts.anchorFile ? this.readAnchorFile(opts.anchorFile, lastSeq, problems) : undefined;
    const seals = await this.verifySeals(verifier, lastSeq, problems, anchor?.lastSeq);
    const sealedTo = seals.lastSeq;
    if (anchor) this.checkAnchor(opts.anchorFile!, anchor, seals.anchored, lastSeq, problems);
    const unsealed = Math.max(0, lastSeq - sealedTo);
    if (unsealed && (opts.noSealer || opts.unsealedGraceMs !== undefined)) await this.checkUnsealed(sealedTo + 1, unsealed, opts.noSealer ? null : opts.unsealedGraceMs!, opts.now ?? new Date(), problems);

    // Row-level problems and per-event seal findings name the exact event; a problem that
    // only knows its batch (an old seal without leaves, a bad token) comes after them.
    const rank = (p: Problem) => (p.kind === 'seal' ? 1 : 0);
    problems.sort((a, b) => rank(a) - rank(b) || a.seq - b.seq);
    return { ok: problems.length === 0, events, seals: seals.count, unsealed, tokensChecked: !!verifier, problems, firstBad: problems[0]?.seq };
  }

  /**
   * Every seal: contiguous with the one before, linked to it, its stamped text its own,
   * its token valid, and every event it covers still the one it committed to. With the
   * leaves (migration 0010) each event is compared with its own leaf: an event whose link
   * to the previous one still holds but whose hash is not the sealed one was rewritten
   * there (a forger who recomputed the later hashes changes all of them, but only the
   * forged event keeps its original link); the later ones are reported as one range.
   */
  private async verifySeals(verifier: TokenVerifier | undefined, lastSeq: number, problems: Problem[], anchorSeq?: number): Promise<{ count: number; lastSeq: number; anchored?: string }> {
    let nextFirst = 1;
    let prevSeal = GENESIS_HASH;
    // The sealed hash of the event before the current batch (its first event's link).
    let prevLeaf: string | undefined = GENESIS_HASH;
    // The hash of the seal ending where the anchor says the newest seal ended.
    let anchored: string | undefined;
    let count = 0;
    // Paged: a seal row carries its token and up to sealBatch leaves.
    for await (const s of this.sealRows()) {
      count++;
      const label = `seal ${s.id} (events ${s.first_seq}–${s.last_seq})`;
      if (s.first_seq !== nextFirst) problems.push({ seq: nextFirst, kind: 'seal', message: `${label} does not start where the previous seal ended (${nextFirst})` });
      if (s.prev_seal !== prevSeal) problems.push({ seq: s.first_seq, kind: 'seal', message: `${label} is not linked to the previous seal` });
      const stamped = Buffer.from(s.stamped);
      const size = s.last_seq - s.first_seq + 1;
      const rows = (await this.db.query<{ seq: number; prev_hash: string; hash: string }>('SELECT seq, prev_hash, hash FROM journal_events WHERE seq BETWEEN $1 AND $2 ORDER BY seq', [s.first_seq, s.last_seq])).rows;
      const leaves = s.leaves ? Buffer.from(s.leaves) : undefined;
      const leavesOk = leaves !== undefined && leaves.length === size * 32 && merkleRoot(splitLeaves(leaves)).toString('hex') === s.root;
      if (leaves && !leavesOk) problems.push({ seq: s.first_seq, kind: 'seal', message: `${label}: its list of event hashes does not give the timestamped Merkle root (the seal row was altered)` });
      if (leavesOk) {
        prevLeaf = this.compareWithLeaves(s, label, rows, leaves!, prevLeaf, lastSeq, problems);
      } else {
        if (rows.length && merkleRoot(rows.map((r) => Buffer.from(r.hash, 'hex'))).toString('hex') !== s.root) {
          problems.push({ seq: s.first_seq, kind: 'seal', message: `${label}: the events no longer match the sealed Merkle root (an event in the range was changed, removed or re-hashed)` });
        }
        prevLeaf = undefined;
      }
      if (!stamped.equals(sealText({ first: s.first_seq, last: s.last_seq, count: size, root: s.root, prev: s.prev_seal }))) {
        problems.push({ seq: s.first_seq, kind: 'seal', message: `${label}: the stamped text does not match the seal's fields` });
      }
      if (verifier) {
        try {
          await verifier.verify(Buffer.from(s.token), stamped);
        } catch (e) {
          problems.push({ seq: s.first_seq, kind: 'seal', message: `${label}: timestamp token invalid: ${(e as Error).message}` });
        }
      }
      nextFirst = s.last_seq + 1;
      prevSeal = sha256(stamped);
      if (s.last_seq === anchorSeq) anchored = prevSeal;
    }
    return { count, lastSeq: nextFirst - 1, anchored };
  }

  private async *sealRows(): AsyncGenerator<SealRow> {
    let after = 0;
    for (;;) {
      const { rows } = await this.db.query<SealRow>('SELECT * FROM journal_seals WHERE first_seq > $1 ORDER BY first_seq LIMIT 100', [after]);
      if (!rows.length) return;
      yield* rows;
      after = rows[rows.length - 1].first_seq;
    }
  }

  /** One batch against the hashes its seal committed to; returns the sealed hash of its last event. */
  private compareWithLeaves(s: SealRow, label: string, rows: Array<{ seq: number; prev_hash: string; hash: string }>, leaves: Buffer, prevLeaf: string | undefined, lastSeq: number, problems: Problem[]): string {
    const leaf = (seq: number) => leaves.toString('hex', (seq - s.first_seq) * 32, (seq - s.first_seq + 1) * 32);
    const bySeq = new Map(rows.map((r) => [r.seq, r]));
    let rehashed: [number, number] | undefined;
    const flushRehashed = () => {
      if (!rehashed) return;
      const [a, b] = rehashed;
      problems.push({ seq: a, kind: 'rehashed', message: `event${a === b ? ` ${a} no longer carries the hash` : `s ${a}–${b} no longer carry the hashes`} ${label} committed to: recomputed after an earlier change` });
      rehashed = undefined;
    };
    let missingFrom: number | undefined;
    for (let seq = s.first_seq; seq <= s.last_seq; seq++) {
      const r = bySeq.get(seq);
      const want = leaf(seq);
      const expectedPrev = seq === s.first_seq ? prevLeaf : leaf(seq - 1);
      if (!r) {
        // A gap inside the table is reported by the chain walk; a sealed event past the
        // table's end was deleted with the head moved back to hide it.
        if (seq > lastSeq) missingFrom ??= seq;
        continue;
      }
      if (r.hash === want) continue;
      if (expectedPrev === undefined || r.prev_hash === expectedPrev) {
        flushRehashed();
        problems.push({ seq, kind: 'forged', message: `event ${seq} was changed after ${label} sealed it: its hash is no longer the one the seal committed to` });
      } else if (rehashed && rehashed[1] === seq - 1) rehashed[1] = seq;
      else {
        flushRehashed();
        rehashed = [seq, seq];
      }
    }
    flushRehashed();
    if (missingFrom !== undefined) {
      const one = missingFrom === s.last_seq;
      problems.push({ seq: missingFrom, kind: 'forged', message: `event${one ? ` ${missingFrom}` : `s ${missingFrom}–${s.last_seq}`}, sealed by ${label}, ${one ? 'is' : 'are'} gone: deleted, with the journal's head moved back to hide it` });
    }
    return leaf(s.last_seq);
  }

  private readAnchorFile(file: string, lastSeq: number, problems: Problem[]): Anchor | undefined {
    try {
      return readAnchor(file);
    } catch (e) {
      problems.push({ seq: lastSeq + 1, kind: 'seal', message: `the journal anchor ${file} cannot be read: ${(e as Error).message}` });
      return undefined;
    }
  }

  /** The newest seal this node recorded outside the database must still be there, unchanged. */
  private checkAnchor(file: string, a: Anchor, seal: string | undefined, lastSeq: number, problems: Problem[]): void {
    if (seal === a.seal) return;
    const from = Math.min(lastSeq + 1, a.lastSeq);
    problems.push({
      seq: from,
      kind: 'cut',
      message: seal
        ? `the seal ending at event ${a.lastSeq} is not the one recorded in ${file}: the journal was rewritten from there`
        : `${from === a.lastSeq ? `event ${from} was` : `events ${from}–${a.lastSeq} were`} sealed (as recorded in ${file}) but ${from === a.lastSeq ? 'it and its' : 'they and their'} seal are gone: the journal was cut back at the end (if this data directory was moved to another database on purpose, remove that file)`,
    });
  }

  /**
   * Unsealed events older than the grace period (or dated in the future) are a failure;
   * with graceMs null no sealer can be running, so any is.
   */
  private async checkUnsealed(from: number, count: number, graceMs: number | null, now: Date, problems: Problem[]): Promise<void> {
    const { rows } = await this.db.query<{ oldest: Date; newest: Date }>('SELECT min(at) AS oldest, max(at) AS newest FROM journal_events WHERE seq >= $1', [from]);
    const oldest = new Date(rows[0].oldest);
    const newest = new Date(rows[0].newest);
    const what = `${count} event${count === 1 ? '' : 's'} from seq ${from} ${count === 1 ? 'is' : 'are'} not sealed`;
    const fix = 'run "mss journal seal", or start the platform, which seals them';
    if (graceMs === null) {
      problems.push({ seq: from, kind: 'unsealed', message: `${what} (the oldest written at ${oldest.toISOString()}) and no platform is running to seal them: every command seals before it exits, so they were left by a crash or written into the database by hand; check them ("mss journal list") before sealing them ("mss journal seal")` });
    } else if (now.getTime() - oldest.getTime() > graceMs) {
      problems.push({ seq: from, kind: 'unsealed', message: `${what}; the oldest was written at ${oldest.toISOString()}, longer ago than a running platform takes to seal (${graceMs / 1000} s): ${fix}` });
    } else if (newest.getTime() - now.getTime() > graceMs) {
      problems.push({ seq: from, kind: 'unsealed', message: `${what} and dated in the future (${newest.toISOString()}): their times were changed` });
    }
  }
}

const splitLeaves = (b: Buffer): Buffer[] => Array.from({ length: b.length / 32 }, (_, i) => b.subarray(i * 32, (i + 1) * 32));

export interface Problem {
  seq: number;
  /**
   * missing / chain / altered / tail: the rows themselves; forged: an event no longer the
   * one its seal committed to (or a sealed event gone); rehashed: later events whose hashes
   * were recomputed to hide a forgery; cut: sealed events removed with their seals (seen
   * from the anchor); unsealed: events left unsealed too long; seal: a seal itself.
   */
  kind: 'missing' | 'chain' | 'altered' | 'tail' | 'forged' | 'rehashed' | 'cut' | 'unsealed' | 'seal';
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  seals: number;
  unsealed: number;
  tokensChecked: boolean;
  problems: Problem[];
  firstBad?: number;
}

export interface EventProof {
  event: JournalEvent;
  hashedText: string;
  merkle: { index: number; leaves: number; path: ProofStep[]; root: string };
  seal: { firstSeq: number; lastSeq: number; genTime: Date; prevSeal: string };
  stamped: Buffer;
  token: Buffer;
}

/** Checks the proof's own arithmetic: event text → hash → Merkle path → root in the stamped bytes. */
export function checkProof(p: EventProof): string | null {
  if (eventHash(p.event.prevHash, p.event) !== p.event.hash) return 'the event does not match its hash';
  if (rootFromProof(Buffer.from(p.event.hash, 'hex'), p.merkle.path).toString('hex') !== p.merkle.root) return 'the Merkle path does not lead to the sealed root';
  if (!p.stamped.toString('utf8').includes(`\nroot=${p.merkle.root}\n`)) return 'the stamped text does not carry the Merkle root';
  return null;
}

interface RowShape extends HashedFields {
  prev_hash: string;
  hash: string;
}

interface SealRow {
  id: number;
  first_seq: number;
  last_seq: number;
  root: string;
  prev_seal: string;
  stamped: Buffer;
  token: Buffer;
  gen_time: Date;
  /** The batch's event hashes, 32 bytes each (migration 0010); null on older seals. */
  leaves: Buffer | null;
}

const toEvent = (r: RowShape): JournalEvent => ({
  seq: r.seq,
  at: new Date(r.at),
  type: r.type,
  actor: r.actor,
  subject: r.subject,
  details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details,
  prevHash: r.prev_hash,
  hash: r.hash,
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The bytes the TSA timestamps for a seal: plain text, so a person can read what was signed. */
export function sealText(s: { first: number; last: number; count: number; root: string; prev: string }): Buffer {
  return Buffer.from(`MSS-JOURNAL-SEAL/1\nfirst=${s.first}\nlast=${s.last}\ncount=${s.count}\nroot=${s.root}\nprev=${s.prev}\n`, 'utf8');
}
