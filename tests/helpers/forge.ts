import type { Db } from '../../core/db/index.js';
import { eventHash } from '../../core/journal/index.js';

/**
 * What a forger with write access and the format in hand does after editing the journal:
 * every hash from `from` on recomputed, each link to the one before, and the head moved to
 * the last row. Only the seals (and the anchor file) can still tell.
 */
export async function rechain(db: Db, from = 1): Promise<void> {
  const rows = (await db.query<{ seq: number; at: Date; type: string; actor: string; subject: string | null; details: Record<string, unknown>; prev_hash: string }>('SELECT seq, at, type, actor, subject, details, prev_hash FROM journal_events WHERE seq >= $1 ORDER BY seq', [from])).rows;
  let prev = from === 1 ? '0'.repeat(64) : (rows[0]?.prev_hash ?? '0'.repeat(64));
  for (const r of rows) {
    const h = eventHash(prev, { seq: Number(r.seq), at: new Date(r.at), type: r.type, actor: r.actor, subject: r.subject, details: r.details });
    await db.query('UPDATE journal_events SET prev_hash = $1, hash = $2 WHERE seq = $3', [prev, h, r.seq]);
    prev = h;
  }
  await db.query('UPDATE journal_head SET seq = $1, hash = $2', [rows.length ? Number(rows[rows.length - 1].seq) : from - 1, prev]);
}
