// The spool: the contract between the SMTP fronts (writers of new rows) and the delivery
// worker (the only one that moves a row on). A row exists, with its body, before the client
// is told 250; it is `queued` while local recipients remain, `done` once each was delivered
// or refused for good, `failed` when we gave up. Table: core/migrations/0200_smtp_spool.sql.
import type { Db, Queryable } from '../core/db/index.js';

export interface SpoolRecord {
  front: 'mx' | 'submission' | 'dsn';
  messageId?: string;
  envFrom: string;
  localRcpts: string[];
  body: Buffer;
  peer: Record<string, unknown>;
  dsn?: Record<string, unknown>;
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
  body: Buffer | null;
  peer: Record<string, unknown>;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
}

/** Writes the message durably; resolves once committed (then, and only then, 250). */
export async function spoolMessage(q: Queryable, r: SpoolRecord): Promise<number> {
  const { rows } = await q.query<{ id: number }>(
    `INSERT INTO smtp_spool (state, front, message_id, env_from, local_rcpts, size, body, peer, dsn)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb) RETURNING id`,
    [r.localRcpts.length ? 'queued' : 'done', r.front, r.messageId ?? null, r.envFrom, r.localRcpts, r.body.length, r.localRcpts.length ? r.body : null, JSON.stringify(r.peer), r.dsn ? JSON.stringify(r.dsn) : null],
  );
  return rows[0].id;
}

/**
 * Claims up to `limit` rows due for delivery: they are leased (next attempt pushed out) so
 * that another worker, or this one after a crash, takes them only once the lease ran out.
 * Rows listed in `bodiesHeld` come back with a null body: the caller has it in memory.
 */
export async function claimDue(db: Db, limit: number, leaseSeconds = 300, bodiesHeld: number[] = []): Promise<SpoolRow[]> {
  const { rows } = await db.query<SpoolRow>(
    `UPDATE smtp_spool SET next_attempt_at = now() + make_interval(secs => $2), attempts = attempts + 1
     WHERE id IN (SELECT id FROM smtp_spool WHERE state = 'queued' AND next_attempt_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING id, received_at, state, front, message_id, env_from, local_rcpts, delivered_rcpts, failed_rcpts, size,
       CASE WHEN id = ANY($3::int8[]) THEN NULL ELSE body END AS body, peer, dsn, attempts, next_attempt_at, last_error`,
    [limit, leaseSeconds, bodiesHeld],
  );
  return rows.sort((a, b) => a.id - b.id);
}

export interface DeliveryOutcome {
  delivered: string[];
  /** Refused for good (5xx): not retried; reported back to the sender. */
  failed: Array<{ rcpt: string; code: number; response: string }>;
  /** Still to try (4xx or connection failure), with the reason. */
  retry: string[];
  error?: string;
}

/** Records what the delivery attempt achieved; the row is done when nothing is left to try. */
export async function recordOutcome(q: Queryable, row: SpoolRow, o: DeliveryOutcome, backoffSeconds: number, maxAgeSeconds: number): Promise<'done' | 'queued' | 'failed'> {
  const expired = Date.now() - new Date(row.received_at).getTime() > maxAgeSeconds * 1000;
  const state = o.retry.length === 0 ? 'done' : expired ? 'failed' : 'queued';
  await q.query(
    `UPDATE smtp_spool SET state = $2, local_rcpts = $3, delivered_rcpts = delivered_rcpts || $4::text[],
       failed_rcpts = failed_rcpts || $5::jsonb, last_error = $6,
       next_attempt_at = now() + make_interval(secs => $7), body = CASE WHEN $2 = 'queued' THEN body ELSE NULL END
     WHERE id = $1`,
    [row.id, state, o.retry, o.delivered, JSON.stringify(o.failed), o.error ?? null, backoffSeconds],
  );
  return state;
}

export async function listSpool(q: Queryable, f: { state?: string; limit?: number } = {}): Promise<Omit<SpoolRow, 'body'>[]> {
  const { rows } = await q.query<SpoolRow>(
    `SELECT id, received_at, state, front, message_id, env_from, local_rcpts, delivered_rcpts, failed_rcpts, size, peer, attempts, next_attempt_at, last_error
     FROM smtp_spool ${f.state ? 'WHERE state = $2' : ''} ORDER BY id DESC LIMIT $1`,
    f.state ? [f.limit ?? 100, f.state] : [f.limit ?? 100],
  );
  return rows;
}
