// `mss annuaire check-ldap`: does the directory say what the database says? Both sides are
// reduced to (kind, key, digest of the entry) and streamed into two temporary tables —
// the directory through a paged search, the database through a cursor over the views —
// then PostgreSQL joins them. Node holds one page at a time whatever the size; the
// comparison of a million entries is PostgreSQL's sort, spilling to disk if it must.

import type { Client } from 'ldapts';
import type { Db, Queryable } from '../../core/db/index.js';
import { entryAttributes } from './client.js';
import { attributeDiff, digest, firstRdnValue, LAYOUT, skeleton, ENTRY_KINDS, entryFor, type EntryKind } from './entries.js';
import { allEntries, rowsByKeys } from './source.js';

export type Problem = 'missing' | 'extra' | 'different';

export interface Difference {
  kind: EntryKind | 'skeleton' | 'unexpected';
  key: string;
  problem: Problem;
  /** For `different`: the attributes that differ. */
  attributes?: string[];
}

export interface CheckReport {
  database: number;
  directory: number;
  missing: number;
  extra: number;
  different: number;
  /** The first differences, for a person to read. */
  samples: Difference[];
  /** Changes still queued when the check ran: differences may be just those. */
  pending: number;
}

type Seen = { kind: string; key: string; digest: string };

async function insertSeen(tx: Queryable, table: string, rows: Seen[]) {
  if (!rows.length) return;
  await tx.query(`INSERT INTO ${table} (kind, key, digest) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`, [rows.map((r) => r.kind), rows.map((r) => r.key), rows.map((r) => r.digest)]);
}

/** Where an entry of the directory belongs, from its DN. */
function classify(dn: string, base: string): { kind: Difference['kind']; key: string } {
  const lower = dn.toLowerCase().replace(/\s*,\s*/g, ',');
  const b = base.toLowerCase().replace(/\s*,\s*/g, ',');
  if (skeleton(base).some((e) => e.dn.toLowerCase() === lower)) return { kind: 'skeleton', key: lower };
  for (const kind of ENTRY_KINDS) {
    const { ou, rdn } = LAYOUT[kind];
    const key = firstRdnValue(dn, rdn);
    if (key !== undefined && lower.endsWith(`,ou=${ou},${b}`) && lower.split(',').length === b.split(',').length + 2) return { kind, key: key.toLowerCase() };
  }
  return { kind: 'unexpected', key: lower };
}

export async function checkDirectory(db: Db, client: Client, base: string, opts: { samples?: number; pageSize?: number } = {}): Promise<CheckReport> {
  const maxSamples = opts.samples ?? 20;
  return db.transaction(async (tx) => {
    await tx.exec(`CREATE TEMP TABLE mss_ldap_db (kind text, key text, digest text) ON COMMIT DROP;
                   CREATE TEMP TABLE mss_ldap_dir (kind text, key text, digest text) ON COMMIT DROP`);
    let database = 0;
    for await (const batch of allEntries(tx, base)) {
      database += batch.length;
      await insertSeen(tx, 'mss_ldap_db', batch.map((e) => ({ kind: e.kind, key: e.key.toLowerCase(), digest: digest(e.entry.attributes) })));
    }
    let directory = 0;
    const pages = client.searchPaginated(base, { scope: 'sub', filter: '(objectClass=*)', attributes: ['*'], paged: { pageSize: opts.pageSize ?? 1000 } });
    for await (const page of pages) {
      directory += page.searchEntries.length;
      await insertSeen(
        tx,
        'mss_ldap_dir',
        page.searchEntries.map((e) => ({ ...classify(e.dn, base), digest: digest(entryAttributes(e)) })),
      );
    }
    await tx.exec('CREATE INDEX ON mss_ldap_db (kind, key); CREATE INDEX ON mss_ldap_dir (kind, key); ANALYZE mss_ldap_db; ANALYZE mss_ldap_dir');
    const { rows: counts } = await tx.query<{ problem: Problem; n: number }>(
      `SELECT CASE WHEN d.key IS NULL THEN 'extra' WHEN l.key IS NULL THEN 'missing' ELSE 'different' END AS problem, count(*)::int AS n
       FROM mss_ldap_db d FULL JOIN mss_ldap_dir l ON l.kind = d.kind AND l.key = d.key
       WHERE d.digest IS DISTINCT FROM l.digest GROUP BY 1`,
    );
    const { rows: first } = await tx.query<{ kind: Difference['kind']; key: string; problem: Problem }>(
      `SELECT coalesce(d.kind, l.kind) AS kind, coalesce(d.key, l.key) AS key,
              CASE WHEN d.key IS NULL THEN 'extra' WHEN l.key IS NULL THEN 'missing' ELSE 'different' END AS problem
       FROM mss_ldap_db d FULL JOIN mss_ldap_dir l ON l.kind = d.kind AND l.key = d.key
       WHERE d.digest IS DISTINCT FROM l.digest ORDER BY 1, 2 LIMIT $1`,
      [maxSamples],
    );
    const samples: Difference[] = [];
    for (const s of first) samples.push(s.problem === 'different' && s.kind !== 'skeleton' && s.kind !== 'unexpected' ? { ...s, attributes: await differingAttributes(tx, client, base, s.kind, s.key) } : s);
    const { rows: pend } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_ldap_pending');
    const n = (p: Problem) => counts.find((c) => c.problem === p)?.n ?? 0;
    return { database, directory, missing: n('missing'), extra: n('extra'), different: n('different'), samples, pending: pend[0].n };
  });
}

/** For a person reading the report: which attributes of this entry disagree. */
async function differingAttributes(tx: Queryable, client: Client, base: string, kind: EntryKind, key: string): Promise<string[]> {
  const rows = await rowsByKeys(tx, kind, [key]);
  const row = [...rows.values()][0];
  if (!row) return [];
  const want = entryFor(kind, row, base);
  const { searchEntries } = await client.search(want.dn, { scope: 'base', attributes: ['*'] }).catch(() => ({ searchEntries: [] }));
  return searchEntries[0] ? attributeDiff(want.attributes, entryAttributes(searchEntries[0])) : [];
}
