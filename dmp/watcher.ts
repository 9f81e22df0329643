// Per-BAL DMP rules: "every result arriving in this box goes to the patient's DMP". The
// watcher reads the ruled boxes in Dovecot (as the box, through the master user, the way the
// IMAP proxy does) and hands each new message carrying a document to the DMP. Where it got
// to is a UID high-water mark per box and UIDVALIDITY (table dmp_watch), advanced only after
// the message's outcome is recorded, so a crash re-examines a message rather than skip it;
// the hand-off itself records one outcome per attempt (dmp_submissions), success or not. A
// DMP out of reach (connection refused, timeout) is recorded but leaves the mark where it is:
// the message is tried again on a later pass; a refusal by the DMP is final.
//
// Every front node runs a watcher (issue 17): a box is claimed for the length of its pass by
// a transaction-scoped advisory lock in PostgreSQL, taken without waiting — the node that
// holds it reads the mark and hands off, another node skips the box until its next pass and
// then reads the mark the first one moved. The lock goes with its connection: a node that
// dies frees its boxes at once (no lease to expire while a slow hand-off is still running).
import { ImapFlow, type MailboxObject, type MessageStructureObject } from 'imapflow';
import type { Db } from '../core/db/index.js';
import type { Logger } from '../core/logger.js';
import type { Masking } from './types.js';

/** The advisory locks' first key (two-key form, "DMPW"): the box's claim, apart from the platform's other locks. */
const CLAIM_SPACE = 0x444d5057;

/** Failures of the way to the DMP, not of the documents: worth another try. */
const RETRIED = new Set(['DMP_UNREACHABLE', 'DMP_TIMEOUT']);

export interface DmpRule {
  bal: string;
  masking: Masking;
}

export interface WatcherDeps {
  db: Db;
  rules(): Promise<DmpRule[]>;
  imap: {
    host: string;
    port: number;
    master: { user: string; password: string };
    /** A shared store (mailstore.cluster): the box's back ends in order, reached over TLS checked against `ca`. */
    route?: (bal: string) => Promise<Array<{ host: string; port: number }>>;
    ca?: string;
  };
  handoff(req: { actor: string; bal: string; folder: string; uid: number; messageId?: string; raw: Buffer; masking?: Masking }): Promise<{ outcome: string; submissions: Array<{ errors: Array<{ code: string }> }> }>;
  intervalMs: number;
  log: Logger;
}

export interface DmpWatcher {
  /** One pass over every ruled box (the timer calls it; tests may too). */
  tick(): Promise<number>;
  stop(): Promise<void>;
}

/** Does this body structure carry something the DMP takes: an IHE_XDM.zip or a CDA (XML) document? */
export function carriesDocument(node: MessageStructureObject | undefined): boolean {
  if (!node) return false;
  if (node.childNodes?.some(carriesDocument)) return true;
  const name = String(node.dispositionParameters?.filename ?? node.parameters?.name ?? '').toLowerCase();
  return name === 'ihe_xdm.zip' || (/\.xml$/.test(name) && /^(text|application)\/xml$/.test(node.type ?? ''));
}

export function startDmpWatcher(deps: WatcherDeps): DmpWatcher {
  let running: Promise<number> | null = null;
  let stopped = false;

  // One connection per ruled box, kept between passes with INBOX selected: a pass is a NOOP
  // (new mail shows in UIDNEXT), not a login — Dovecot logs a line per login.
  const open = new Map<string, ImapFlow>();
  async function connection(bal: string): Promise<ImapFlow> {
    const known = open.get(bal);
    if (known?.usable) {
      await known.noop();
      return known;
    }
    known?.close();
    const auth = { user: `${bal}*${deps.imap.master.user}`, pass: deps.imap.master.password };
    const at = deps.imap.route ? await deps.imap.route(bal) : [{ host: deps.imap.host, port: deps.imap.port }];
    let client!: ImapFlow;
    for (let i = 0; i < at.length; i++) {
      client = new ImapFlow({ host: at[i].host, port: at[i].port, secure: !!deps.imap.route, ...(deps.imap.ca ? { tls: { ca: [deps.imap.ca] } } : {}), auth, logger: false });
      client.on('error', () => open.delete(bal));
      try {
        await client.connect();
        break;
      } catch (e) {
        // The box's back end is away: its pair holds the replica.
        if (i + 1 >= at.length) throw e;
      }
    }
    await client.mailboxOpen('INBOX', { readOnly: true });
    open.set(bal, client);
    return client;
  }

  /**
   * fn under the box's claim; undefined when another node holds it. `held()` fails when the
   * claim's connection was lost (the lock with it): checked before each hand-off.
   * PGlite is one process, hence one node, whose single connection could not serve the
   * hand-off's own writes while a transaction held it: no claim there.
   */
  async function claimed(bal: string, fn: (held: () => Promise<void>) => Promise<number>): Promise<number | undefined> {
    if (deps.db.kind !== 'pg') return fn(async () => {});
    return deps.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS got', [CLAIM_SPACE, bal]);
      if (!rows[0].got) return undefined;
      return fn(async () => void (await tx.query('SELECT 1')));
    });
  }

  async function watchBox(rule: DmpRule, held: () => Promise<void>): Promise<number> {
    const client = await connection(rule.bal);
    let handed = 0;
    try {
      const box = client.mailbox as MailboxObject;
      const validity = String(box.uidValidity);
      const { rows } = await deps.db.query<{ last_uid: number }>('SELECT last_uid FROM dmp_watch WHERE bal = $1 AND uidvalidity = $2', [rule.bal, validity]);
      let last = rows.length ? Number(rows[0].last_uid) : 0;
      // UIDNEXT is not refreshed by NOOP (EXISTS is): ask for what follows the mark instead;
      // "last+1:*" also returns the newest message when none is newer, hence the filter.
      if (!box.exists) return 0;
      const fresh: Array<{ uid: number; messageId?: string; doc: boolean }> = [];
      for await (const m of client.fetch(`${last + 1}:*`, { uid: true, envelope: true, bodyStructure: true }, { uid: true })) {
        if (m.uid > last) fresh.push({ uid: m.uid, messageId: m.envelope?.messageId, doc: carriesDocument(m.bodyStructure) });
      }
      for (const m of fresh.sort((a, b) => a.uid - b.uid)) {
        if (stopped) break;
        if (m.doc) {
          await held();
          const dl = await client.download(String(m.uid), undefined, { uid: true });
          const chunks: Buffer[] = [];
          for await (const c of dl.content ?? []) chunks.push(c as Buffer);
          const r = await deps.handoff({ actor: `dmp-rule:${rule.bal}`, bal: rule.bal, folder: 'INBOX', uid: m.uid, messageId: m.messageId, raw: Buffer.concat(chunks), masking: rule.masking });
          if (r.submissions.some((x) => x.errors.some((e) => RETRIED.has(e.code)))) {
            deps.log.warn({ bal: rule.bal, uid: m.uid }, 'dmp rule: the DMP is out of reach; the message will be tried again');
            break;
          }
          deps.log.info({ bal: rule.bal, uid: m.uid, outcome: r.outcome }, 'dmp rule: message handed off');
          handed++;
        }
        last = m.uid;
        await deps.db.query(
          `INSERT INTO dmp_watch (bal, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (bal) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity, last_uid = EXCLUDED.last_uid, updated_at = now()`,
          [rule.bal, validity, last],
        );
      }
    } catch (e) {
      open.delete(rule.bal);
      client.close();
      throw e;
    }
    return handed;
  }

  async function pass(): Promise<number> {
    let handed = 0;
    const rules = await deps.rules();
    for (const [bal, c] of open) if (!rules.some((r) => r.bal === bal)) {
      open.delete(bal);
      void c.logout().catch(() => c.close());
    }
    for (const rule of rules) {
      if (stopped) break;
      try {
        const n = await claimed(rule.bal, (held) => watchBox(rule, held));
        if (n === undefined) deps.log.debug({ bal: rule.bal }, 'dmp rule: another node is on this box; left to it');
        handed += n ?? 0;
      } catch (e) {
        deps.log.warn({ err: e, bal: rule.bal }, 'dmp rule: could not read the box; will try again');
      }
    }
    return handed;
  }

  const tick = () => (running ??= pass().finally(() => (running = null)));
  const timer = setInterval(() => void tick().catch((e) => deps.log.error({ err: e }, 'dmp rule pass failed')), deps.intervalMs);
  timer.unref();
  return {
    tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
      await Promise.all([...open.values()].map((c) => c.logout().catch(() => c.close())));
      open.clear();
    },
  };
}
