// Failed DMP hand-offs (dmp_submissions, written by handoff.ts), for the operator console's
// dashboard: a reader only. `bals` narrows to those boxes (a regional admin's scope); null: all.
import type { Queryable } from '../core/db/index.js';

export interface DmpFailures {
  count: number;
  /** The latest failure: its box, when, and the registry's first error (or why nothing was sent). */
  latest: { bal: string; at: Date; error: string | null } | null;
}

export async function dmpFailures(q: Queryable, f: { since: Date; bals: readonly string[] | null }): Promise<DmpFailures> {
  const p = [f.since, f.bals ? [...f.bals] : null];
  const where = `status = 'failure' AND submitted_at >= $1 AND ($2::text[] IS NULL OR bal = ANY($2))`;
  const n = (await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM dmp_submissions WHERE ${where}`, p)).rows[0].n;
  if (!n) return { count: 0, latest: null };
  const { rows } = await q.query<{ bal: string; submitted_at: Date; errors: Array<{ code?: string; context?: string }> | string }>(
    `SELECT bal, submitted_at, errors FROM dmp_submissions WHERE ${where} ORDER BY submitted_at DESC, id DESC LIMIT 1`,
    p,
  );
  const r = rows[0];
  const errors = typeof r.errors === 'string' ? (JSON.parse(r.errors) as Array<{ code?: string; context?: string }>) : r.errors;
  const e = errors[0];
  return { count: n, latest: { bal: r.bal, at: new Date(r.submitted_at), error: e ? [e.code, e.context].filter(Boolean).join(': ') : null } };
}
