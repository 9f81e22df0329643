// Reading the directory's side of the database: the annuaire_ldap_* views (migration 0130),
// streamed through a cursor so that a million rows never sit in memory at once.

import type { Queryable } from '../../core/db/index.js';
import { ENTRY_KINDS, entryFor, skeleton, type EntryKind, type LdapEntry } from './entries.js';

export const VIEWS: Record<EntryKind, string> = {
  bal: 'annuaire_ldap_bal',
  person: 'annuaire_ldap_persons',
  structure: 'annuaire_ldap_structures',
  routage: 'annuaire_ldap_routage',
};

type Row = Record<string, string | null>;

let cursorSeq = 0;

/**
 * The rows of one view, `batch` at a time, inside the caller's transaction (a cursor lives
 * as long as its transaction). Sorted by key in byte order when asked.
 */
export async function* viewRows(tx: Queryable, kind: EntryKind, opts: { batch?: number; sorted?: boolean } = {}): AsyncGenerator<Row[]> {
  const name = `mss_ldap_${kind}_${++cursorSeq}`;
  await tx.query(`DECLARE ${name} NO SCROLL CURSOR FOR SELECT * FROM ${VIEWS[kind]}${opts.sorted ? ' ORDER BY key COLLATE "C"' : ''}`);
  try {
    for (;;) {
      const { rows } = await tx.query<Row>(`FETCH FORWARD ${opts.batch ?? 2000} FROM ${name}`);
      if (!rows.length) return;
      yield rows;
    }
  } finally {
    await tx.query(`CLOSE ${name}`).catch(() => {});
  }
}

/** Every entry the directory should hold, parents first (the skeleton), in batches. */
export async function* allEntries(tx: Queryable, base: string, batch = 2000): AsyncGenerator<Array<{ kind: EntryKind | 'skeleton'; key: string; entry: LdapEntry }>> {
  yield skeleton(base).map((entry) => ({ kind: 'skeleton' as const, key: entry.dn.toLowerCase(), entry }));
  for (const kind of ENTRY_KINDS) {
    for await (const rows of viewRows(tx, kind, { batch })) yield rows.map((r) => ({ kind, key: String(r.key), entry: entryFor(kind, r, base) }));
  }
}

/** The current rows of these keys (absent keys: no longer published). */
export async function rowsByKeys(q: Queryable, kind: EntryKind, keys: string[]): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  for (let i = 0; i < keys.length; i += 5000) {
    const { rows } = await q.query<Row>(`SELECT * FROM ${VIEWS[kind]} WHERE key = ANY($1::text[])`, [keys.slice(i, i + 5000)]);
    for (const r of rows) out.set(String(r.key), r);
  }
  return out;
}
