// The spool: the contract between the SMTP fronts (writers of new rows) and the delivery
// worker (the only one that moves a row on). A row exists, with its body, before the client
// is told 250; it is `queued` while local recipients remain, `done` once each was delivered
// or refused for good, `failed` when we gave up. Table: core/migrations/0200_smtp_spool.sql.
import type { Db, Queryable } from '../core/db/index.js';
import { drawIds, openBody, storedBody, type BodyCipher, type IdBlocks } from './body-cipher.js';

export interface SpoolRecord {
  front: 'mx' | 'submission' | 'dsn';
  messageId?: string;
  envFrom: string;
  localRcpts: string[];
  body: Buffer;
  peer: Record<string, unknown>;
  dsn?: Record<string, unknown>;
  /**
   * The delivery worker that delivers it as soon as it is committed: the row is written
   * already leased to it, as its first attempt, so no claim has to take it.
   */
  leasedBy?: string;
}

export interface SpoolRow {
  id: number;
  received_at: Date;
  state: 'queued' | 'done' | 'failed';
  front: string;
  message_id: string | null;
  env_from: string;
  local_rcpts: string[];
  delivered_rcpts: string[];
  failed_rcpts: Array<{ rcpt: string; code: number; response: string }>;
  size: number;
  /** In clear: claimDue and readSpoolBody open what was sealed. */
  body: Buffer | null;
  peer: Record<string, unknown>;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
}

/** Writes the message durably; resolves once committed (then, and only then, 250). */
export async function spoolMessage(q: Queryable, r: SpoolRecord, cipher?: BodyCipher): Promise<number> {
  return (await spoolMessages(q, [r], cipher))[0];
}

/**
 * Writes several messages with one INSERT (atomic on its own, or part of the caller's
 * transaction); resolves with their ids, in the order given.
 */
export async function spoolMessages(q: Queryable, rs: SpoolRecord[], cipher?: BodyCipher, idBlocks?: IdBlocks): Promise<number[]> {
  // The ids come first: a sealed body binds its row's id.
  const ids = idBlocks ? await idBlocks.take(q, rs.length) : await drawIds(q, 'smtp_spool', rs.length);
  const params: unknown[] = [];
  const values = rs.map((r, i) => {
    const n = params.length;
    const leasedBy = r.localRcpts.length ? (r.leasedBy ?? null) : null;
    const body = r.localRcpts.length ? storedBody('smtp_spool', ids[i], r.body, cipher) : { data: null, key: null };
    params.push(ids[i], r.localRcpts.length ? 'queued' : 'done', r.front, r.messageId ?? null, r.envFrom, r.localRcpts, r.body.length, body.data, body.key, JSON.stringify(r.peer), r.dsn ? JSON.stringify(r.dsn) : null, leasedBy, leasedBy ? 1 : 0);
    return `($${n + 1}::int8, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, $${n + 6}, $${n + 7}, $${n + 8}, $${n + 9}, $${n + 10}::jsonb, $${n + 11}::jsonb, $${n + 12}, $${n + 13}::int)`;
  });
  await q.query(`INSERT INTO smtp_spool (id, state, front, message_id, env_from, local_rcpts, size, body, body_key, peer, dsn, leased_by, attempts) VALUES ${values.join(', ')}`, params);
  return ids;
}

/** A row's body in clear (the delivery worker's, when it did not get it from memory or a claim). */
export async function readSpoolBody(q: Queryable, id: number, cipher?: BodyCipher): Promise<Buffer | null> {
  const r = (await q.query<{ body: Buffer | null; body_key: string | null }>('SELECT body, body_key FROM smtp_spool WHERE id = $1', [id])).rows[0];
  return r ? openBody('smtp_spool', id, r.body, r.body_key, cipher) : null;
}

/**
 * A lease counts while its worker refreshed its smtp_workers row this recently (it does so
 * every WORKER_HEARTBEAT_SECONDS): a crashed worker's rows are taken over after this long
 * at most — at once on PGlite, whose single process removes the rows of its predecessors.
 */
export const WORKER_STALE_SECONDS = 30;
export const WORKER_HEARTBEAT_SECONDS = 10;

/**
 * Announces a delivery worker. `exclusive`: no other process can be using this database
 * (PGlite), so the workers listed there are dead predecessors and their leases void now.
 */
export async function registerWorker(db: Db, id: string, exclusive: boolean): Promise<void> {
  await db.transaction(async (tx) => {
    if (exclusive) await tx.query('DELETE FROM smtp_workers WHERE id <> $1', [id]);
    // Long-gone workers (their rows are not needed to judge any lease any more).
    else await tx.query("DELETE FROM smtp_workers WHERE seen_at < now() - interval '1 day'");
    await heartbeatWorker(tx, id);
  });
}

/** The worker is alive: its leases keep counting (WORKER_STALE_SECONDS). */
export async function heartbeatWorker(q: Queryable, id: string): Promise<void> {
  await q.query('INSERT INTO smtp_workers (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET seen_at = now()', [id]);
}

/** A worker stopping cleanly: whatever it still held (nothing, once drained) is free at once. */
export async function retireWorker(q: Queryable, id: string): Promise<void> {
  await q.query('UPDATE smtp_spool SET leased_by = NULL WHERE leased_by = $1', [id]);
  await q.query('DELETE FROM smtp_workers WHERE id = $1', [id]);
}

/**
 * Claims up to `limit` rows due for delivery for worker `workerId`: leased to it, so that no
 * other worker takes them while it is alive; a crashed worker's rows are due again as soon
 * as it stops refreshing its heartbeat. (A message just spooled by this process is written
 * already leased and never claimed: see DeliveryWorker.deliverNow.)
 */
export async function claimDue(db: Db, limit: number, workerId: string, cipher?: BodyCipher): Promise<SpoolRow[]> {
  const { rows } = await db.query<SpoolRow & { body_key: string | null }>(
    `UPDATE smtp_spool SET leased_by = $2, attempts = attempts + 1
     WHERE id IN (
       SELECT s.id FROM smtp_spool s
       WHERE s.state = 'queued' AND s.next_attempt_at <= now()
         AND (s.leased_by IS NULL OR NOT EXISTS (SELECT 1 FROM smtp_workers w WHERE w.id = s.leased_by AND w.seen_at > now() - make_interval(secs => $3)))
       ORDER BY s.id LIMIT $1 FOR UPDATE OF s SKIP LOCKED)
     RETURNING id, received_at, state, front, message_id, env_from, local_rcpts, delivered_rcpts, failed_rcpts, size,
       body, body_key, peer, dsn, attempts, next_attempt_at, last_error`,
    [limit, workerId, WORKER_STALE_SECONDS],
  );
  const out = await Promise.all(
    rows.map(async ({ body_key, ...r }) => {
      try {
        return { ...r, body: await openBody('smtp_spool', r.id, r.body, body_key, cipher) };
      } catch {
        // Left to the delivery of this one row (readSpoolBody), which fails with the reason.
        return { ...r, body: null };
      }
    }),
  );
  return out.sort((a, b) => a.id - b.id);
}

export interface DeliveryOutcome {
  delivered: string[];
  /** Refused for good (5xx): not retried; reported back to the sender. */
  failed: Array<{ rcpt: string; code: number; response: string }>;
  /** Still to try (4xx or connection failure), with the reason. */
  retry: string[];
  error?: string;
}

/** What a delivery attempt leaves the row in: done when nothing is left to try. */
export function outcomeState(row: Pick<SpoolRow, 'received_at'>, o: DeliveryOutcome, maxAgeSeconds: number): 'done' | 'queued' | 'failed' {
  const expired = Date.now() - new Date(row.received_at).getTime() > maxAgeSeconds * 1000;
  return o.retry.length === 0 ? 'done' : expired ? 'failed' : 'queued';
}

export interface RecordedOutcome {
  id: number;
  state: 'done' | 'queued' | 'failed';
  outcome: DeliveryOutcome;
  /** Next attempt in this many seconds, when the row stays queued. */
  backoffSeconds: number;
}

/** Records what delivery attempts achieved, several rows in one statement; a finished row drops its body. */
export async function recordOutcomes(q: Queryable, rs: RecordedOutcome[]): Promise<void> {
  if (!rs.length) return;
  const rows = rs.map((r) => ({ id: r.id, state: r.state, retry: r.outcome.retry, delivered: r.outcome.delivered, failed: r.outcome.failed, error: r.outcome.error ?? null, backoff: r.backoffSeconds }));
  await q.query(
    `UPDATE smtp_spool s SET state = u.state, local_rcpts = u.retry, delivered_rcpts = s.delivered_rcpts || u.delivered,
       failed_rcpts = s.failed_rcpts || u.failed, last_error = u.error, leased_by = NULL,
       next_attempt_at = now() + make_interval(secs => u.backoff), body = CASE WHEN u.state = 'queued' THEN s.body ELSE NULL END
     FROM jsonb_to_recordset($1::jsonb) AS u(id int8, state text, retry text[], delivered text[], failed jsonb, error text, backoff int)
     WHERE s.id = u.id AND s.id = ANY($2::int8[])`,
    // The id list lets the planner see how few rows change (it guesses 100 for a function
    // scan, and then hash-joins a sequential scan of the whole spool).
    [JSON.stringify(rows), rows.map((r) => r.id)],
  );
}

export async function listSpool(q: Queryable, f: { state?: string; limit?: number } = {}): Promise<Omit<SpoolRow, 'body'>[]> {
  const { rows } = await q.query<SpoolRow>(
    `SELECT id, received_at, state, front, message_id, env_from, local_rcpts, delivered_rcpts, failed_rcpts, size, peer, attempts, next_attempt_at, last_error
     FROM smtp_spool ${f.state ? 'WHERE state = $2' : ''} ORDER BY id DESC LIMIT $1`,
    f.state ? [f.limit ?? 100, f.state] : [f.limit ?? 100],
  );
  return rows;
}
