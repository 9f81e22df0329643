// Incremental feeding of the directory. Writers of the annuaire (the import, the admin API,
// the mailbox functions) call queueLdapChanges() with the keys they touched, inside the
// transaction of their change: the intent commits or rolls back with the change itself.
// The platform drains the queue (Directory.sync, every ldap.syncInterval): for each key it
// reads what the views say now and makes the directory say the same — add, modify, delete
// or nothing. Applying a key twice is harmless, so a crash anywhere (after the commit,
// halfway through the LDAP writes, before the queue rows are deleted) is repaired by the
// next drain.

import { Attribute, Change, type Client } from 'ldapts';
import type { Db, Queryable } from '../../core/db/index.js';
import { entryAttributes, escapeFilterValue } from './client.js';
import { firstRdnValue, LAYOUT, normalise, entryFor, type EntryKind, type LdapEntry } from './entries.js';
import { rowsByKeys } from './source.js';

/** Keys of what changed. Whether it was added, modified or deactivated does not matter: the current state is read. */
export interface LdapChanges {
  /** Mailbox addresses (any case). */
  addresses?: Iterable<string>;
  /** Professionals' national ids (idnps). */
  persons?: Iterable<string>;
  /** Structure ids as the mailboxes name them (1+FINESS, 3+SIRET). */
  structures?: Iterable<string>;
}

export interface ApplyReport {
  added: number;
  modified: number;
  deleted: number;
  unchanged: number;
}

const KIND_OF: Record<keyof LdapChanges, EntryKind> = { addresses: 'bal', persons: 'person', structures: 'structure' };

/** Keys are compared case-insensitively, as slapd compares these attributes. */
const norm = (k: string) => k.toLowerCase();

/**
 * Records, inside the caller's transaction, that these entries must be brought up to date
 * in the directory. Returns the number of keys queued.
 */
export async function queueLdapChanges(tx: Queryable, changes: LdapChanges): Promise<number> {
  let n = 0;
  for (const [field, kind] of Object.entries(KIND_OF) as Array<[keyof LdapChanges, EntryKind]>) {
    const keys = [...new Set([...(changes[field] ?? [])].map((k) => (kind === 'bal' ? norm(k) : k.trim())).filter(Boolean))];
    for (let i = 0; i < keys.length; i += 10_000) {
      const slice = keys.slice(i, i + 10_000);
      await tx.query('INSERT INTO annuaire_ldap_pending (kind, key) SELECT $1, unnest($2::text[])', [kind, slice]);
      n += slice.length;
    }
  }
  return n;
}

export function emptyReport(): ApplyReport {
  return { added: 0, modified: 0, deleted: 0, unchanged: 0 };
}

/** What the directory holds now for these keys of one kind (one search per 100 keys). */
async function currentEntries(client: Client, kind: EntryKind, keys: string[], base: string): Promise<Map<string, LdapEntry>> {
  const { ou, rdn } = LAYOUT[kind];
  const out = new Map<string, LdapEntry>();
  for (let i = 0; i < keys.length; i += 100) {
    const filter = `(|${keys.slice(i, i + 100).map((k) => `(${rdn}=${escapeFilterValue(k)})`).join('')})`;
    const { searchEntries } = await client.search(`ou=${ou},${base}`, { scope: 'one', filter, attributes: ['*'] });
    for (const e of searchEntries) {
      const key = firstRdnValue(e.dn, rdn);
      if (key !== undefined) out.set(norm(key), { dn: e.dn, attributes: entryAttributes(e) });
    }
  }
  return out;
}

/** The modifications that turn `have` into `want` (objectClass aside), or undefined when equal. */
export function changesFor(want: LdapEntry, have: LdapEntry): Change[] | 'recreate' | undefined {
  const w = new Map(normalise(want.attributes));
  const h = new Map(normalise(have.attributes));
  if (JSON.stringify(w.get('objectclass')) !== JSON.stringify(h.get('objectclass'))) return 'recreate';
  const spelled = new Map<string, string>();
  for (const k of [...Object.keys(have.attributes), ...Object.keys(want.attributes)]) spelled.set(k.toLowerCase(), k);
  const out: Change[] = [];
  for (const name of new Set([...w.keys(), ...h.keys()])) {
    if (name === 'objectclass') continue;
    const wv = w.get(name);
    if (JSON.stringify(wv) === JSON.stringify(h.get(name))) continue;
    const type = spelled.get(name)!;
    out.push(
      wv
        ? new Change({ operation: 'replace', modification: new Attribute({ type, values: want.attributes[type] ?? wv }) })
        : new Change({ operation: 'delete', modification: new Attribute({ type, values: [] }) }),
    );
  }
  return out.length ? out : undefined;
}

/** Runs fns with at most `limit` in flight (LDAP pipelines requests on one connection). */
async function pool<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]);
  });
  await Promise.all(workers);
}

async function reconcile(client: Client, kind: EntryKind, want: Map<string, LdapEntry>, have: Map<string, LdapEntry>, keys: string[], report: ApplyReport, concurrency: number) {
  await pool(keys, concurrency, async (key) => {
    const w = want.get(key);
    const h = have.get(key);
    if (!w && !h) return void report.unchanged++;
    if (!w) {
      await client.del(h!.dn);
      return void report.deleted++;
    }
    if (!h) {
      await client.add(w.dn, w.attributes);
      return void report.added++;
    }
    const changes = changesFor(w, h);
    if (!changes) return void report.unchanged++;
    if (changes === 'recreate') {
      await client.del(h.dn);
      await client.add(w.dn, w.attributes);
    } else await client.modify(h.dn, changes);
    report.modified++;
  });
}

/**
 * Makes the directory agree with the database for these keys, over LDAP (bound as the
 * rootdn). A mailbox's holder and structure are brought along: their entries exist only
 * while a published mailbox names them.
 */
export async function applyLdapChanges(db: Queryable, client: Client, base: string, changes: LdapChanges, opts: { concurrency?: number } = {}): Promise<ApplyReport> {
  const report = emptyReport();
  const concurrency = opts.concurrency ?? 32;
  const keys = {
    bal: new Set([...(changes.addresses ?? [])].map(norm)),
    person: new Set([...(changes.persons ?? [])].map((k) => k.trim())),
    structure: new Set([...(changes.structures ?? [])].map((k) => k.trim())),
    // A changed address may change its routing entry too (closed, reopened, liste rouge).
    routage: new Set([...(changes.addresses ?? [])].map(norm)),
  };
  const round = async (kind: EntryKind) => {
    const list = [...keys[kind]].filter(Boolean);
    if (!list.length) return;
    const rows = await rowsByKeys(db, kind, list);
    const want = new Map<string, LdapEntry>();
    for (const [k, r] of rows) want.set(norm(k), entryFor(kind, r, base));
    const have = await currentEntries(client, kind, list, base);
    if (kind === 'bal') {
      // The holders and structures of these mailboxes, before and after.
      for (const e of [...want.values(), ...have.values()]) {
        for (const v of e.attributes.mssIdNps ?? []) keys.person.add(v);
        for (const v of e.attributes.mssStructureId ?? []) keys.structure.add(v);
      }
    }
    await reconcile(client, kind, want, have, [...new Set(list.map(norm))], report, concurrency);
  };
  await round('bal');
  await round('person');
  await round('structure');
  await round('routage');
  return report;
}


/** Advisory lock shared by drains and taken exclusively by a rebuild (see rebuild.ts). */
export const LDAP_FEED_LOCK = 0x4d53_5330;

export interface DrainReport extends ApplyReport {
  /** Queue rows consumed. */
  queued: number;
  /** True when a rebuild held the feed: nothing was done, try again later. */
  skipped: boolean;
}

/**
 * Applies everything queued, `batch` rows at a time, and deletes the rows it applied (by
 * id: a row committed late with a lower id is never deleted unseen).
 */
export async function drainPending(db: Db, client: Client, base: string, opts: { batch?: number; concurrency?: number } = {}): Promise<DrainReport> {
  const total: DrainReport = { ...emptyReport(), queued: 0, skipped: false };
  const once = async (q: Queryable): Promise<boolean> => {
    const { rows } = await q.query<{ id: string; kind: EntryKind; key: string }>('SELECT id, kind, key FROM annuaire_ldap_pending ORDER BY id LIMIT $1', [opts.batch ?? 5000]);
    if (!rows.length) return false;
    const changes = { addresses: [] as string[], persons: [] as string[], structures: [] as string[] };
    for (const r of rows) (r.kind === 'bal' ? changes.addresses : r.kind === 'person' ? changes.persons : changes.structures).push(r.key);
    const rep = await applyLdapChanges(q, client, base, changes, opts);
    await q.query('DELETE FROM annuaire_ldap_pending WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
    total.added += rep.added;
    total.modified += rep.modified;
    total.deleted += rep.deleted;
    total.unchanged += rep.unchanged;
    total.queued += rows.length;
    return true;
  };
  for (;;) {
    let more: boolean;
    if (db.kind === 'pg') {
      const r = await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock_shared($1) AS ok', [LDAP_FEED_LOCK]);
        return rows[0].ok ? once(tx) : undefined;
      });
      if (r === undefined) return { ...total, skipped: true };
      more = r;
    } else more = await once(db);
    if (!more) return total;
  }
}
