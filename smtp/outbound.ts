// The outbound queue: messages for other operators of the espace de confiance. One row per
// (message, destination domain); the worker is the only one that moves a row on:
// queued → sending → sent | deferred (→ sending …) | bounced. A row left `sending` by a
// crash is taken again once its lease runs out (at least once, never zero times).
import { promises as dns } from 'node:dns';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type { Db, Queryable } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { normaliseDomain, type Policy } from '../core/policy/index.js';
import { drawIds, openBody, storedBody, type BodyCipher } from './body-cipher.js';
import { Poller } from './poller.js';
import { clientTlsOptions, peerIdentity, type TlsMaterial } from '../certs/tls.js';
import { eachLimit } from '../core/each.js';

export interface OutboundRow {
  id: number;
  spool_id: number | null;
  created_at: Date;
  state: 'queued' | 'sending' | 'deferred' | 'sent' | 'bounced';
  domain: string;
  env_from: string;
  rcpts: string[];
  message_id: string | null;
  body: Buffer | null;
  attempts: number;
  next_attempt_at: Date;
  expires_at: Date;
  last_reply: string | null;
}

const domainOf = (a: string) => normaliseDomain(a.slice(a.lastIndexOf('@') + 1));

/** Writes one row per destination domain, inside the caller's transaction (the spool's). */
export async function enqueueOutbound(q: Queryable, m: { spoolId: number | null; envFrom: string; rcpts: string[]; body: Buffer; messageId?: string }, maxAgeMs: number, cipher?: BodyCipher): Promise<number[]> {
  const byDomain = new Map<string, string[]>();
  for (const r of m.rcpts) byDomain.set(domainOf(r), [...(byDomain.get(domainOf(r)) ?? []), r]);
  // The ids come first: a sealed body binds its row's id (smtp/body-cipher.ts).
  const ids = await drawIds(q, 'smtp_outbound', byDomain.size);
  let i = 0;
  for (const [domain, rcpts] of byDomain) {
    const id = ids[i++];
    const body = storedBody('smtp_outbound', id, m.body, cipher);
    await q.query(
      `INSERT INTO smtp_outbound (id, spool_id, state, domain, env_from, rcpts, message_id, body, body_key, expires_at)
       VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))`,
      [id, m.spoolId, domain, m.envFrom, rcpts, m.messageId ?? null, body.data, body.key, maxAgeMs / 1000],
    );
  }
  return ids;
}

export async function listOutbound(q: Queryable, f: { state?: string; limit?: number } = {}) {
  const { rows } = await q.query<Omit<OutboundRow, 'body'>>(
    `SELECT id, spool_id, created_at, state, domain, env_from, rcpts, message_id, attempts, next_attempt_at, expires_at, last_reply
     FROM smtp_outbound ${f.state ? 'WHERE state = $2' : ''} ORDER BY id DESC LIMIT $1`,
    f.state ? [f.limit ?? 100, f.state] : [f.limit ?? 100],
  );
  return rows;
}

/** `mss queue retry`: due now. */
export async function retryOutbound(q: Queryable, id?: number): Promise<number> {
  const r = await q.query(`UPDATE smtp_outbound SET next_attempt_at = now() WHERE state IN ('queued', 'deferred') ${id ? 'AND id = $1' : ''}`, id ? [id] : []);
  return r.rowCount;
}

/** `mss queue delete`: gives up on a message without a bounce (the operator decided). */
export async function deleteOutbound(q: Queryable, id: number): Promise<boolean> {
  const r = await q.query(`UPDATE smtp_outbound SET state = 'bounced', body = NULL, last_reply = 'deleted by the operator', done_at = now() WHERE id = $1 AND state IN ('queued', 'deferred', 'sending')`, [id]);
  return r.rowCount > 0;
}

export interface Route {
  host: string;
  port: number;
}

export interface OutboundOptions {
  tls: TlsMaterial;
  policy: Policy;
  hostname: string;
  /** domain → host:port; anything else goes by DNS MX. */
  routes: string[];
  concurrency?: number;
  retryBaseMs?: number;
  pollMs?: number;
  timeoutMs?: number;
  /** Writes the DSN for recipients refused for good (or expired). */
  bounce: (row: OutboundRow, failed: Array<{ rcpt: string; code: number; response: string; remoteMta?: string }>) => Promise<void>;
  /** Opens the bodies sealed in the queue (crypt.spool; smtp/body-cipher.ts). */
  cipher?: BodyCipher;
}

type Attempt = { accepted: string[]; failed: Array<{ rcpt: string; code: number; response: string }>; retry: string[]; reply: string; remoteMta?: string };

export class OutboundWorker extends Poller {
  private readonly routes = new Map<string, Route>();

  constructor(
    private readonly db: Db,
    private readonly journal: Journal,
    log: Logger,
    private readonly o: OutboundOptions,
  ) {
    super(log, 'outbound', o.pollMs ?? 2000);
    for (const r of o.routes) {
      const m = /^([^=]+)=([^:]+|\[[^\]]+\]):(\d+)$/.exec(r.trim());
      if (!m) throw new Error(`smtp.routes: "${r}" is not domain=host:port`);
      this.routes.set(normaliseDomain(m[1]), { host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) });
    }
  }

  protected async round() {
    const n = this.o.concurrency ?? 8;
    for (;;) {
      const { rows } = await this.db.query<OutboundRow & { body_key: string | null }>(
        `UPDATE smtp_outbound SET state = 'sending', attempts = attempts + 1, next_attempt_at = now() + interval '10 minutes'
         WHERE id IN (SELECT id FROM smtp_outbound WHERE state IN ('queued', 'deferred', 'sending') AND next_attempt_at <= now()
                      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [n * 4],
      );
      if (!rows.length) return;
      await eachLimit(rows, n, async ({ body_key, ...r }) => {
        let body: Buffer | null;
        try {
          body = await openBody('smtp_outbound', r.id, r.body, body_key, this.o.cipher);
        } catch (e) {
          // Fail closed: nothing is sent; the row is tried again once its claim runs out.
          return this.log.error({ err: e, outbound: r.id }, 'cannot open the stored body of an outbound message');
        }
        await this.sendOne({ ...r, body });
      });
    }
  }

  async route(domain: string): Promise<Route[]> {
    const fixed = this.routes.get(domain);
    if (fixed) return [fixed];
    try {
      const mx = await dns.resolveMx(domain);
      if (mx.length) return mx.sort((a, b) => a.priority - b.priority).map((m) => ({ host: m.exchange, port: 25 }));
    } catch {
      /* no MX: RFC 5321 §5.1 falls back to the domain itself */
    }
    return [{ host: domain, port: 25 }];
  }

  private async sendOne(row: OutboundRow) {
    let attempt: Attempt | undefined;
    let lastError = 'no route';
    for (const r of await this.route(row.domain)) {
      try {
        attempt = await this.attempt(row, r);
        break;
      } catch (e) {
        lastError = `${r.host}:${r.port}: ${(e as Error).message}`;
      }
    }
    attempt ??= { accepted: [], failed: [], retry: row.rcpts, reply: lastError };
    const expired = new Date(row.expires_at).getTime() <= Date.now();
    const retry = expired ? [] : attempt.retry;
    const failed = [...attempt.failed, ...(expired ? attempt.retry.map((rcpt) => ({ rcpt, code: 451, response: `gave up after ${row.attempts} attempts: ${attempt!.reply}` })) : [])];
    const state = retry.length ? 'deferred' : attempt.accepted.length ? 'sent' : 'bounced';
    const delay = Math.min((this.o.retryBaseMs ?? 60_000) * 2 ** Math.max(0, row.attempts - 1), 3_600_000);
    await this.db.query(
      `UPDATE smtp_outbound SET state = $2, rcpts = $3, last_reply = $4, next_attempt_at = now() + make_interval(secs => $5),
         body = CASE WHEN $2 = 'deferred' THEN body ELSE NULL END, done_at = CASE WHEN $2 = 'deferred' THEN NULL ELSE now() END
       WHERE id = $1`,
      [row.id, state, retry.length ? retry : row.rcpts, attempt.reply, delay / 1000],
    );
    const base = { outbound: row.id, spool: row.spool_id, domain: row.domain, remoteMta: attempt.remoteMta, reply: attempt.reply, attempts: row.attempts };
    const subject = row.message_id ?? `outbound:${row.id}`;
    if (attempt.accepted.length) await this.journal.append({ type: 'smtp.outbound.sent', actor: 'system', subject, details: { ...base, rcpts: attempt.accepted } });
    if (retry.length) await this.journal.append({ type: 'smtp.outbound.deferred', actor: 'system', subject, details: { ...base, rcpts: retry, nextInSeconds: delay / 1000 } });
    if (failed.length) {
      await this.journal.append({ type: 'smtp.outbound.bounced', actor: 'system', subject, details: { ...base, failed } });
      await this.o.bounce(row, failed.map((f) => ({ ...f, remoteMta: attempt!.remoteMta }))).catch((e) => this.log.error({ err: e }, 'could not write the DSN'));
    }
    this.log.info({ ...base, sent: attempt.accepted.length, retry: retry.length, failed: failed.length }, 'outbound attempt');
  }

  /** One SMTP transaction with one MX: mutual TLS, peer checked against the liste blanche. */
  private attempt(row: OutboundRow, r: Route): Promise<Attempt> {
    return new Promise((resolve, reject) => {
      let peerCert: PeerCertificate | undefined;
      const conn = new SMTPConnection({
        host: r.host,
        port: r.port,
        name: this.o.hostname,
        secure: false,
        requireTLS: true,
        tls: {
          ...clientTlsOptions(this.o.tls, { servername: /^[\d.:]+$/.test(r.host) ? undefined : r.host }),
          // Keep the certificate for the liste blanche check; the name check stays Node's.
          checkServerIdentity: (host, cert) => {
            peerCert = cert;
            return /^[\d.:]+$/.test(host) || host === 'localhost' ? undefined : checkServerIdentity(host, cert);
          },
        },
        connectionTimeout: this.o.timeoutMs ?? 30_000,
        greetingTimeout: this.o.timeoutMs ?? 30_000,
        socketTimeout: 300_000,
      });
      let settled = false;
      const done = (err: Error | null, a?: Attempt) => {
        if (settled) return;
        settled = true;
        conn.quit();
        if (err) reject(err);
        else resolve(a!);
      };
      conn.once('error', (e: Error & { responseCode?: number; response?: string }) => {
        // A 5xx to MAIL FROM refuses every recipient for good; anything else is temporary.
        if (e.responseCode && e.responseCode >= 500) done(null, { accepted: [], failed: row.rcpts.map((rcpt) => ({ rcpt, code: e.responseCode!, response: e.response ?? e.message })), retry: [], reply: e.response ?? e.message, remoteMta: r.host });
        else done(e);
      });
      conn.connect(() => {
        void (async () => {
          const peer = peerCert ? peerIdentity(peerCert as never, this.o.tls) : undefined;
          const names = peer?.domains.filter((d) => d !== 'localhost' && !/^[\d.:]+$/.test(d)) ?? [];
          let v = await this.o.policy.mayPeerConnect({ kind: 'peer', domain: names[0] ?? row.domain, subject: peer ? Object.entries(peer.subject).map(([k, x]) => `${k}=${x}`).join(', ') : '' }, { front: 'smtp-outbound', remote: r.host });
          for (const d of names.slice(1)) if (!v.ok) v = await this.o.policy.mayPeerConnect({ kind: 'peer', domain: d, subject: '' }, { front: 'smtp-outbound', remote: r.host });
          if (!v.ok) return done(new Error(`peer refused: ${v.reason}`));
          conn.send({ from: row.env_from, to: row.rcpts }, Buffer.from(row.body!), (err, info) => {
            const errInfo = err as (Error & { responseCode?: number; response?: string; rejectedErrors?: any[] }) | null;
            if (err && !errInfo?.rejectedErrors?.length) {
              const code = errInfo?.responseCode ?? 0;
              if (code >= 500) return done(null, { accepted: [], failed: row.rcpts.map((rcpt) => ({ rcpt, code, response: errInfo!.response ?? err.message })), retry: [], reply: errInfo!.response ?? err.message, remoteMta: r.host });
              return done(err);
            }
            const rejected: any[] = (info as any)?.rejectedErrors ?? errInfo?.rejectedErrors ?? [];
            const failed = rejected.filter((e) => Number(e.responseCode) >= 500).map((e) => ({ rcpt: e.recipient, code: Number(e.responseCode), response: String(e.response ?? e.message) }));
            const retry = rejected.filter((e) => !(Number(e.responseCode) >= 500)).map((e) => e.recipient as string);
            const accepted = (info as any)?.accepted ?? [];
            done(null, { accepted, failed, retry, reply: String((info as any)?.response ?? errInfo?.response ?? ''), remoteMta: r.host });
          });
        })().catch((e) => done(e));
      });
    });
  }
}
