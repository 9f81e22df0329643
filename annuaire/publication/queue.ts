// The publication queue: an outbox filled in the transaction of each BAL change, and the
// sender that delivers it to the configured endpoint with retries and back-off.
import type { Db, Queryable } from '../../core/db/index.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import type { BalChange } from '../bal/index.js';
import { publicationFor, type Publication } from './payload.js';

/** In-transaction follower of BAL changes (annuaire/bal hooks): queues the change's payload. */
export async function enqueuePublication(tx: Queryable, change: BalChange): Promise<Publication | null> {
  const p = publicationFor(change);
  if (!p) return null;
  await tx.query('INSERT INTO publication_queue (address, bal_version, change, target, payload) VALUES ($1, $2, $3, $4, $5::jsonb)', [
    p.address,
    p.version,
    p.change,
    p.target,
    JSON.stringify(p.payload),
  ]);
  return p;
}

export interface QueuedPublication {
  id: number;
  address: string;
  balVersion: number;
  change: string;
  target: string;
  payload: Record<string, unknown>;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  responseStatus: number | null;
  createdAt: Date;
  sentAt: Date | null;
}

interface Row {
  id: number;
  address: string;
  bal_version: number;
  change: string;
  target: string;
  payload: Record<string, unknown> | string;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  response_status: number | null;
  created_at: Date;
  sent_at: Date | null;
}

const toQueued = (r: Row): QueuedPublication => ({
  id: r.id,
  address: r.address,
  balVersion: r.bal_version,
  change: r.change,
  target: r.target,
  payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: new Date(r.next_attempt_at),
  lastError: r.last_error,
  responseStatus: r.response_status,
  createdAt: new Date(r.created_at),
  sentAt: r.sent_at ? new Date(r.sent_at) : null,
});

export async function listPublications(q: Queryable, f: { address?: string; status?: QueuedPublication['status']; limit?: number } = {}): Promise<QueuedPublication[]> {
  const { rows } = await q.query<Row>(
    `SELECT * FROM publication_queue WHERE ($1::text IS NULL OR lower(address) = lower($1)) AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3`,
    [f.address ?? null, f.status ?? null, Math.min(f.limit ?? 100, 1000)],
  );
  return rows.map(toQueued);
}

export interface SenderOptions {
  /** The annuaire's publication endpoint; each publication is POSTed there. */
  url: string;
  token?: string;
  maxAttempts: number;
  /** First retry after this long, doubling each time (capped at an hour). */
  retryBaseMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
  log?: Logger;
}

export interface SendReport {
  sent: number;
  retried: number;
  failed: number;
}

const PUBLICATION_LOCK = 0x4d53_5350;

/**
 * The body POSTed for one publication: a FHIR `transaction` Bundle with one entry whose
 * request is the conditional PATCH and whose resource is the Patch `Parameters` — how a
 * FHIR server takes a PATCH through its base endpoint.
 */
export function transactionBundle(p: Pick<QueuedPublication, 'target' | 'payload'>): Record<string, unknown> {
  return { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: p.payload, request: { method: 'PATCH', url: p.target } }] };
}

/** Whether a failed answer is worth retrying: network errors, 5xx, 408 and 429 are; other 4xx are not. */
const retryable = (status: number | null) => status === null || status >= 500 || status === 408 || status === 429;

/**
 * Sends what is due: for each address, its oldest pending publication (later ones wait, so
 * an insert is never overtaken by its delete). One sender at a time across processes.
 */
export async function sendDuePublications(db: Db, journal: Pick<Journal, 'append'>, o: SenderOptions, now = new Date()): Promise<SendReport> {
  const report: SendReport = { sent: 0, retried: 0, failed: 0 };
  const doFetch = o.fetch ?? fetch;
  const rows = await db.transaction(async (tx) => {
    const lock = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [PUBLICATION_LOCK]);
    if (!lock.rows[0].ok) return [];
    return (
      await tx.query<Row>(
        `SELECT q.* FROM publication_queue q
          WHERE q.status = 'pending' AND q.next_attempt_at <= $1
            AND NOT EXISTS (SELECT 1 FROM publication_queue e WHERE lower(e.address) = lower(q.address) AND e.status = 'pending' AND e.id < q.id)
          ORDER BY q.id LIMIT 100`,
        [now],
      )
    ).rows;
  });
  for (const row of rows) {
    const p = toQueued(row);
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await doFetch(o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
        body: JSON.stringify(transactionBundle(p)),
        signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
      });
      status = res.status;
      const text = await res.text().catch(() => '');
      if (!res.ok) error = `HTTP ${res.status}${text ? `: ${text.slice(0, 500)}` : ''}`;
    } catch (e) {
      error = (e as Error).message;
    }
    const attempts = p.attempts + 1;
    if (!error) {
      await db.query("UPDATE publication_queue SET status = 'sent', attempts = $2, response_status = $3, sent_at = now(), last_error = NULL WHERE id = $1", [p.id, attempts, status]);
      await journal.append({ type: 'publication.sent', actor: 'system', subject: p.address, details: { id: p.id, change: p.change, version: p.balVersion, status, attempts } });
      report.sent++;
    } else if (attempts >= o.maxAttempts || !retryable(status)) {
      await db.query("UPDATE publication_queue SET status = 'failed', attempts = $2, response_status = $3, last_error = $4 WHERE id = $1", [p.id, attempts, status, error]);
      await journal.append({ type: 'publication.failed', actor: 'system', subject: p.address, details: { id: p.id, change: p.change, version: p.balVersion, status, attempts, error } });
      o.log?.warn({ address: p.address, id: p.id, error }, 'publication failed for good');
      report.failed++;
    } else {
      const delay = Math.min((o.retryBaseMs ?? 30_000) * 2 ** (attempts - 1), 3_600_000);
      await db.query('UPDATE publication_queue SET attempts = $2, response_status = $3, last_error = $4, next_attempt_at = $5 WHERE id = $1', [
        p.id,
        attempts,
        status,
        error,
        new Date(now.getTime() + delay),
      ]);
      report.retried++;
    }
  }
  return report;
}

/** Runs the sender every intervalMs until stopped. */
export function startPublicationSender(db: Db, journal: Pick<Journal, 'append'>, o: SenderOptions & { intervalMs: number }): { stop(): Promise<void>; runNow(): Promise<SendReport> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const runNow = () => {
    const r = running.then(() => sendDuePublications(db, journal, o));
    running = r.catch((e) => o.log?.error({ err: e }, 'publication sender failed; will retry'));
    return r;
  };
  const tick = () => {
    void runNow().finally(() => {
      if (!stopped) timer = setTimeout(tick, o.intervalMs).unref();
    });
  };
  timer = setTimeout(tick, o.intervalMs).unref();
  return {
    runNow,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
