// What the spool and the outbound queue (spool.ts, outbound.ts) say about the traffic, for the
// operator console's dashboard: a reader only, over the documented states. `addresses`
// narrows every figure to the mail of those boxes (a regional admin's scope); null: all.
import type { Queryable } from '../core/db/index.js';

export interface TrafficFigures {
  /** Messages accepted from other operators (MX) since `since`. */
  received: number;
  /** Messages accepted from the operator's users (submission) since `since`. */
  sent: number;
  /** Messages not yet delivered: spooled for Dovecot, or queued for another operator. */
  queued: number;
  /** When the oldest of them arrived. */
  oldest: Date | null;
  /** Of them, those whose delivery was already tried and put off. */
  deferred: number;
  oldestDeferred: Date | null;
}

export async function trafficFigures(q: Queryable, f: { since: Date; addresses: readonly string[] | null }): Promise<TrafficFigures> {
  const p: unknown[] = [f.since, f.addresses ? [...f.addresses] : null];
  // A spool row is about a box when it came from it or went to it; an outbound row when it came from it.
  const spoolMine = `($2::text[] IS NULL OR lower(env_from) = ANY($2) OR local_rcpts && $2 OR delivered_rcpts && $2)`;
  const { rows } = await q.query<{ received: number; sent: number; queued: number; oldest: Date | null; deferred: number; oldest_deferred: Date | null }>(
    `WITH s AS (SELECT front, state, received_at AS at, last_error IS NOT NULL AS tried FROM smtp_spool WHERE ${spoolMine} AND (received_at >= $1 OR state = 'queued')),
          -- Deferred: a delivery failed and will be retried — also while that retry is under way.
          o AS (SELECT state = 'deferred' OR (state = 'sending' AND last_reply IS NOT NULL) AS later, created_at AS at FROM smtp_outbound WHERE ($2::text[] IS NULL OR lower(env_from) = ANY($2)) AND state IN ('queued', 'sending', 'deferred'))
     SELECT (SELECT count(*) FROM s WHERE at >= $1 AND front = 'mx')::int AS received,
            (SELECT count(*) FROM s WHERE at >= $1 AND front = 'submission')::int AS sent,
            ((SELECT count(*) FROM s WHERE state = 'queued') + (SELECT count(*) FROM o))::int AS queued,
            LEAST((SELECT min(at) FROM s WHERE state = 'queued'), (SELECT min(at) FROM o)) AS oldest,
            ((SELECT count(*) FROM s WHERE state = 'queued' AND tried) + (SELECT count(*) FROM o WHERE later))::int AS deferred,
            LEAST((SELECT min(at) FROM s WHERE state = 'queued' AND tried), (SELECT min(at) FROM o WHERE later)) AS oldest_deferred`,
    p,
  );
  const r = rows[0];
  const date = (d: Date | null) => (d ? new Date(d) : null);
  return { received: r.received, sent: r.sent, queued: r.queued, oldest: date(r.oldest), deferred: r.deferred, oldestDeferred: date(r.oldest_deferred) };
}
