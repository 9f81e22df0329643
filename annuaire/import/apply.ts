// Set-based application of one staged file to the national tables. Everything here runs
// inside the caller's transaction: the staging tables are temporary (ON COMMIT DROP), and
// a failure anywhere rolls the whole file back, leaving the previous state intact.
import type { Queryable } from '../../core/db/index.js';
import type { FileKind } from './formats.js';
import { ACTIVITY_COLUMNS, MSSANTE_COLUMNS, PERSON_COLUMNS, STAGING_COLUMNS, STRUCTURE_COLUMNS } from './rows.js';

export type TableName = 'persons' | 'structures' | 'activities' | 'addresses';
export type ChangeKind = 'inserted' | 'updated' | 'deactivated';

export interface TableCounts {
  /** Distinct entries in the file (after merging lines that repeat a key). */
  seen: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deactivated: number;
  /** Lines merged into another line with the same key. */
  merged: number;
}

interface Entity {
  name: TableName;
  table: string;
  /** Key column in the final table unless it is one of `columns`, and the expression (alias t) matching the staged key. */
  key?: string;
  keyExpr: string;
  /** Key and hash in the staging table. */
  stagingKey: string;
  stagingHash: string;
  columns: string[];
  filter?: string;
  /** Tie-break between lines with the same key: deterministic whatever the line order. */
  order: string;
  /** stg_keep kind and the final-table expression (alias t) it protects from deactivation. */
  protect: Array<[kind: string, column: string]>;
  /** Report merged lines (persons repeat by design: one line per activity). */
  reportMerged: boolean;
}

const names = (m: ReadonlyArray<readonly [string, string]>) => m.map(([c]) => c);

const ENTITIES: Record<FileKind, Entity[]> = {
  activity: [
    {
      name: 'persons',
      table: 'annuaire_persons',
      key: 'idnps',
      keyExpr: 't.idnps',
      stagingKey: 'idnps',
      stagingHash: 'p_hash',
      columns: names(PERSON_COLUMNS).filter((c) => c !== 'idnps'),
      order: 'profession_code NULLS LAST, savoir_faire_code NULLS LAST, p_hash',
      protect: [['persons', 't.idnps']],
      reportMerged: false,
    },
    {
      name: 'structures',
      table: 'annuaire_structures',
      key: 'structure_id',
      keyExpr: 't.structure_id',
      stagingKey: 'structure_id',
      stagingHash: 's_hash',
      columns: names(STRUCTURE_COLUMNS).filter((c) => c !== 'structure_id'),
      filter: 'structure_id IS NOT NULL',
      order: 's_hash',
      protect: [['structures', 't.structure_id']],
      reportMerged: false,
    },
    {
      name: 'activities',
      table: 'annuaire_activities',
      key: 'activity_key',
      keyExpr: 't.activity_key',
      stagingKey: 'a_key',
      stagingHash: 'a_hash',
      columns: names(ACTIVITY_COLUMNS),
      order: 'a_hash',
      // A rejected line of a person may have carried any of their activities.
      protect: [['persons', 't.idnps']],
      reportMerged: true,
    },
  ],
  mssante: [
    {
      name: 'addresses',
      table: 'annuaire_mss_addresses',
      keyExpr: 'lower(t.address)',
      stagingKey: 'addr_key',
      stagingHash: 'hash',
      columns: names(MSSANTE_COLUMNS),
      order: 'hash',
      protect: [['addresses', 'lower(t.address)']],
      reportMerged: true,
    },
  ],
};

export const TABLES: Record<FileKind, TableName[]> = {
  activity: ENTITIES.activity.map((e) => e.name),
  mssante: ENTITIES.mssante.map((e) => e.name),
};

/** Temp tables for one file: the staged lines, the keys of rejected lines, the change log. */
export async function createStaging(tx: Queryable, kind: FileKind): Promise<string> {
  const cols = STAGING_COLUMNS[kind].map((c) => (c === 'line' ? 'line int NOT NULL' : `${c} text COLLATE "C"`));
  await tx.exec(`
    CREATE TEMP TABLE stg (${cols.join(', ')}) ON COMMIT DROP;
    CREATE TEMP TABLE stg_keep (kind text NOT NULL, k text NOT NULL) ON COMMIT DROP;
    CREATE TEMP TABLE stg_chg (tbl text NOT NULL, kind text NOT NULL, k text COLLATE "C" NOT NULL) ON COMMIT DROP;`);
  return `COPY stg (${STAGING_COLUMNS[kind].join(', ')}) FROM STDIN`;
}

/** Keys named by rejected lines: those entries keep their state (see applyStaged). */
export async function stageProtected(tx: Queryable, keep: Array<[string, string]>): Promise<void> {
  for (let i = 0; i < keep.length; i += 10_000) {
    const part = keep.slice(i, i + 10_000);
    await tx.query('INSERT INTO stg_keep (kind, k) SELECT * FROM unnest($1::text[], $2::text[])', [part.map((p) => p[0]), part.map((p) => p[1])]);
  }
}

/**
 * Applies the staged file to each table of its kind: changed and reappearing rows are
 * updated, unchanged ones only get last_seen, new ones inserted, and active rows absent
 * from the file deactivated — except rows a rejected line names (we cannot tell whether
 * they vanished) and, when `deactivate` is false, all of them. Every change's key goes to
 * stg_chg for the journal and the dry-run listing.
 */
export async function applyStaged(
  tx: Queryable,
  kind: FileKind,
  at: Date,
  sourceFile: string,
  deactivate: boolean,
  onTable?: (t: TableName) => Promise<void> | void,
): Promise<Record<string, TableCounts>> {
  const out: Record<string, TableCounts> = {};
  for (const e of ENTITIES[kind]) {
    await onTable?.(e.name);
    out[e.name] = await applyEntity(tx, e, at, sourceFile, deactivate);
  }
  return out;
}

async function applyEntity(tx: Queryable, e: Entity, at: Date, file: string, deactivate: boolean): Promise<TableCounts> {
  const cols = e.columns;
  const where = e.filter ? `WHERE ${e.filter}` : '';
  // One row per key; the staged line number is not part of the content.
  const distinct = `SELECT DISTINCT ON (${e.stagingKey}) ${e.stagingKey} AS k, ${e.stagingHash} AS hash, ${cols.join(', ')}
    FROM stg ${where} ORDER BY ${e.stagingKey}, ${e.order}`;
  const staged = (await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM stg ${where}`)).rows[0].n;
  const log = (change: ChangeKind, sql: string) =>
    tx.query(`WITH c AS (${sql} RETURNING ${e.keyExpr} AS k) INSERT INTO stg_chg (tbl, kind, k) SELECT '${e.name}', '${change}', k FROM c`, [at, file]);
  const insertCols = e.key ? [e.key, ...cols] : cols;
  const insertVals = e.key ? ['s.k', ...cols.map((c) => `s.${c}`)] : cols.map((c) => `s.${c}`);
  const insert = (source: string, onlyNew: boolean) =>
    log(
      'inserted',
      `INSERT INTO ${e.table} AS t (${insertCols.join(', ')}, hash, active, first_seen, last_seen, source_file)
       SELECT ${insertVals.join(', ')}, s.hash, true, $1, $1, $2 FROM ${source} s
       ${onlyNew ? `WHERE NOT EXISTS (SELECT 1 FROM ${e.table} t WHERE ${e.keyExpr} = s.k)` : ''}`,
    );

  // First import of this table: nothing to compare with, nothing to deactivate — insert
  // straight from the sorted staging, without materialising the deduplicated rows.
  const empty = (await tx.query(`SELECT 1 FROM ${e.table} LIMIT 1`)).rows.length === 0;
  if (empty) {
    const inserted = (await withIndexesRebuilt(tx, e.table, () => insert(`(${distinct})`, false))).rowCount;
    return { seen: inserted, inserted, updated: 0, unchanged: 0, deactivated: 0, merged: e.reportMerged ? staged - inserted : 0 };
  }

  const s = `s_${e.name}`;
  await tx.exec(`CREATE TEMP TABLE ${s} ON COMMIT DROP AS ${distinct}; ANALYZE ${s}`);
  const seen = (await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s}`)).rows[0].n;
  const matchKey = `${e.keyExpr} = s.k`;
  const updated = await log(
    'updated',
    `UPDATE ${e.table} t SET (${cols.join(', ')}, hash, active, deactivated_at, last_seen, source_file) =
       (${cols.map((c) => `s.${c}`).join(', ')}, s.hash, true, NULL, $1, $2)
     FROM ${s} s WHERE ${matchKey} AND (t.hash <> s.hash OR NOT t.active)`,
  );
  await tx.query(`UPDATE ${e.table} t SET last_seen = $1 FROM ${s} s WHERE ${matchKey} AND t.hash = s.hash AND t.active AND t.last_seen < $1`, [at]);
  const inserted = await insert(s, true);
  let deactivated = 0;
  if (deactivate) {
    const keep = e.protect.map(([k, col]) => `AND NOT EXISTS (SELECT 1 FROM stg_keep p WHERE p.kind = '${k}' AND p.k = ${col})`).join(' ');
    deactivated = (
      await log(
        'deactivated',
        `UPDATE ${e.table} t SET active = false, deactivated_at = $1, source_file = $2
         WHERE t.active AND NOT EXISTS (SELECT 1 FROM ${s} s WHERE ${matchKey}) ${keep}`,
      )
    ).rowCount;
  }
  return {
    seen,
    inserted: inserted.rowCount,
    updated: updated.rowCount,
    unchanged: seen - inserted.rowCount - updated.rowCount,
    deactivated,
    merged: e.reportMerged ? staged - seen : 0,
  };
}

/**
 * Runs a bulk load into an EMPTY table with its indexes dropped and rebuilt afterwards
 * in the same transaction: building a B-tree from sorted data costs a fraction of a
 * million one-by-one insertions (measured ~3x on the activities table). The table being
 * empty, nobody loses anything while its lock is held; a rollback restores the indexes.
 */
async function withIndexesRebuilt<T>(tx: Queryable, table: string, load: () => Promise<T>): Promise<T> {
  const { rows } = await tx.query<{ name: string; def: string; constraint_def: string | null }>(
    `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def, pg_get_constraintdef(c.oid) AS constraint_def
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
     WHERE x.indrelid = $1::regclass`,
    [table],
  );
  for (const r of rows) await tx.exec(r.constraint_def ? `ALTER TABLE ${table} DROP CONSTRAINT "${r.name}"` : `DROP INDEX "${r.name}"`);
  const out = await load();
  for (const r of rows) await tx.exec(r.constraint_def ? `ALTER TABLE ${table} ADD CONSTRAINT "${r.name}" ${r.constraint_def}` : r.def);
  return out;
}

export interface Change {
  table: TableName;
  kind: ChangeKind;
  key: string;
}

/** The first `perKind` changes of each (table, kind), for the dry-run listing. */
export async function sampleChanges(tx: Queryable, perKind: number): Promise<Change[]> {
  const { rows } = await tx.query<{ tbl: TableName; kind: ChangeKind; k: string }>(
    `SELECT tbl, kind, k FROM (SELECT tbl, kind, k, row_number() OVER (PARTITION BY tbl, kind) AS r FROM stg_chg) x WHERE r <= $1`,
    [perKind],
  );
  const order = (c: { tbl: string; kind: string }) => `${['persons', 'structures', 'activities', 'addresses'].indexOf(c.tbl)}${['updated', 'inserted', 'deactivated'].indexOf(c.kind)}`;
  return rows.sort((a, b) => order(a).localeCompare(order(b))).map((r) => ({ table: r.tbl, kind: r.kind, key: r.k }));
}

export interface ChangePage {
  table: TableName;
  kind: ChangeKind;
  count: number;
  /** First and last key of the page, in key order. */
  first: string;
  last: string;
  /** updated / deactivated: the keys, joined with "\n", in key order. */
  keys?: string;
  /** inserted: SHA-256 (hex) of the page's keys joined with "\n", in key order. */
  sha256?: string;
}

/**
 * The change log as pages of at most `batch` keys of one table and one kind of change.
 * PostgreSQL does the grouping, so the importer handles a few thousand rows rather than
 * millions; a cursor keeps memory bounded. A fresh temp table is scanned in the order it
 * was written, so the running row number cuts each (table, kind) run into full pages.
 * Inserted keys come as a digest, not a list (see journalFile in importer.ts for why).
 */
export async function* changeBatches(tx: Queryable, batch: number): AsyncGenerator<ChangePage> {
  const size = Math.max(1, Math.floor(batch));
  await tx.query(`DECLARE stg_chg_cursor NO SCROLL CURSOR FOR
    SELECT tbl, kind, count(*)::int AS n, min(k) AS first, max(k) AS last,
      CASE WHEN kind <> 'inserted' THEN string_agg(k, E'\n' ORDER BY k) END AS keys,
      CASE WHEN kind = 'inserted' THEN encode(sha256(convert_to(string_agg(k, E'\n' ORDER BY k), 'UTF8')), 'hex') END AS digest
    FROM (SELECT tbl, kind, k, (row_number() OVER ()) - 1 AS r FROM stg_chg) x
    GROUP BY tbl, kind, r / ${size} ORDER BY min(r)`);
  try {
    for (;;) {
      const { rows } = await tx.query<{ tbl: TableName; kind: ChangeKind; n: number; first: string; last: string; keys: string | null; digest: string | null }>(
        'FETCH 100 FROM stg_chg_cursor',
      );
      if (!rows.length) return;
      for (const r of rows) {
        const page: ChangePage = { table: r.tbl, kind: r.kind, count: r.n, first: r.first, last: r.last };
        if (r.keys !== null) page.keys = r.keys;
        if (r.digest !== null) page.sha256 = r.digest;
        yield page;
      }
    }
  } finally {
    await tx.query('CLOSE stg_chg_cursor');
  }
}
