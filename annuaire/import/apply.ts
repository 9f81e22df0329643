// Set-based application of one file to the national tables. Everything here runs inside
// the caller's transaction: a failure anywhere rolls the whole file back, leaving the
// previous state intact (DDL included: PostgreSQL's is transactional).
//
// Each table of the file's kind gets a plan before the file is read:
// - direct: the table is empty (a first import). Its indexes are dropped, the file's rows
//   are COPY'd straight into it, and the indexes are rebuilt from the loaded rows — the
//   rows are written once, by COPY, with no staging table and no INSERT … SELECT;
// - staged (a sync): every row carries the digest of its fields (0110). The digests of the
//   table's active rows are read first; a row of the file whose digest is among them is
//   that very row again, and is neither staged nor written (rows.ts, DigestGate). Only
//   the others go to a narrow temporary table, with the table's own row for any of their
//   keys that a skipped line also named (so that repeats merge as before); then three
//   set-based statements apply the difference: changed (or reappearing) rows updated, new
//   ones inserted, and active rows whose digest no line matched, absent from the staging,
//   deactivated. Unchanged rows cost no write at all: their "last seen" is the extraction
//   date of the last file applied (annuaire_last_seen, 0101).
// Lines repeating a key were merged by the splitter where that is cheap; the unique index
// (built on the staging table, or rebuilt on the final one) finds any repeat left, and
// `dedupe` keeps one row per key by DEDUPE_ORDER, whatever the line order was.
import type { Queryable } from '../../core/db/index.js';
import type { FileKind } from './formats.js';
import { COPY_OPTIONS, DigestGate, TABLES, type TableName } from './rows.js';

export { TABLES, type TableName };
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
  /** The key as an expression on a row of the table or of its staging (alias a). */
  key: (a: string) => string;
  /** The column the key is made of. */
  keyColumn: string;
  /** Merge rule: these columns first, then every column; byte order, NULLs last. */
  first: string[];
  /** stg_keep kind and the column (alias t) it protects from deactivation. */
  protect: Array<[kind: string, column: string]>;
  /** Report merged lines (persons and structures repeat by design: one line per activity). */
  reportMerged: boolean;
}

const ENTITIES: Record<TableName, Entity> = {
  persons: { name: 'persons', table: 'annuaire_persons', key: (a) => `${a}.idnps`, keyColumn: 'idnps', first: ['profession_code', 'savoir_faire_code'], protect: [['persons', 't.idnps']], reportMerged: false },
  structures: { name: 'structures', table: 'annuaire_structures', key: (a) => `${a}.structure_id`, keyColumn: 'structure_id', first: [], protect: [['structures', 't.structure_id']], reportMerged: false },
  // A rejected line of a person may have carried any of their activities.
  activities: { name: 'activities', table: 'annuaire_activities', key: (a) => `${a}.activity_key`, keyColumn: 'activity_key', first: [], protect: [['persons', 't.idnps']], reportMerged: true },
  addresses: { name: 'addresses', table: 'annuaire_mss_addresses', key: (a) => `lower(${a}.address)`, keyColumn: 'address', first: [], protect: [['addresses', 'lower(t.address)']], reportMerged: true },
};

/** Key columns compare bytewise, as in the final tables (0100). */
const C_COLUMNS = new Set(['idnps', 'structure_id', 'activity_key', 'address']);

/** The order that picks the row kept for a repeated key (the splitter applies the same to a person's lines). */
export const DEDUPE_ORDER = (e: Entity, columns: string[], a: string) => [...e.first, ...columns].map((c) => `${a}.${c} COLLATE "C" NULLS LAST`).join(', ');

export interface Plan {
  entity: Entity;
  /** COPY columns, in the order of the splitter's rows. */
  columns: string[];
  mode: 'direct' | 'staged';
  /** Where the COPY goes: the final table (direct) or its staging table. */
  target: string;
  copySql: string;
  /** direct: the indexes dropped before the load, rebuilt after it. */
  indexes: Array<{ name: string; def: string; constraintDef: string | null; unique: boolean }>;
  /** staged: the digests of the table's active rows (read while the file is). */
  gate?: Promise<DigestGate>;
}

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * The staging's temporary tables live for the transaction (ON COMMIT DROP), or, when a sync
 * is staged in several short transactions on PGlite's one session (runs.ts), for the
 * session, dropped by dropStaging.
 */
const tempTables = (session: boolean) => (session ? '' : 'ON COMMIT DROP');

/** Drops a session's staging tables (before staging, after applying, after a failure). */
export async function dropStaging(q: Queryable, kind: FileKind): Promise<void> {
  const names = ['stg_keep', 'stg_chg', ...TABLES[kind].flatMap((t) => [`stg_${t}`, `stg_gone_${t}`, `stg_d_${t}`])];
  await q.exec(names.map((n) => `DROP TABLE IF EXISTS pg_temp.${n}`).join('; '));
}

/** Runs fn in one transaction of the staging: the caller's one, or a short one of its own (runs.ts). */
export type Step = <T>(fn: (q: Queryable) => Promise<T>) => Promise<T>;

/**
 * Decides, for each table of this kind, whether the file loads straight into it (it is
 * empty) or through a staging table, and prepares either. Also creates the temporary
 * tables every file uses: stg_keep (keys named by rejected lines) and stg_chg (the keys
 * each staged statement changed, for the journal, the dry-run listing and the directory).
 */
export async function prepare(tx: Queryable, kind: FileKind, columns: Partial<Record<TableName, string[]>>, at: Date, sourceFile: string, gates?: Partial<Record<TableName, DigestGate>>, session = false): Promise<Plan[]> {
  const temp = tempTables(session);
  if (session) await dropStaging(tx, kind);
  await tx.exec(`
    CREATE TEMP TABLE stg_keep (kind text NOT NULL, k text NOT NULL) ${temp};
    CREATE TEMP TABLE stg_chg (tbl text NOT NULL, kind text NOT NULL, k text COLLATE "C" NOT NULL) ${temp};`);
  const plans: Plan[] = [];
  for (const name of TABLES[kind]) {
    const e = ENTITIES[name];
    const cols = columns[name]!;
    const empty = (await tx.query(`SELECT 1 FROM ${e.table} LIMIT 1`)).rows.length === 0;
    if (empty) {
      const { rows } = await tx.query<{ name: string; def: string; constraint_def: string | null; unique: boolean }>(
        `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def, pg_get_constraintdef(c.oid) AS constraint_def, x.indisunique AS unique
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
         WHERE x.indrelid = $1::regclass ORDER BY x.indisunique DESC, i.relname`,
        [e.table],
      );
      for (const r of rows) await tx.exec(r.constraint_def ? `ALTER TABLE ${e.table} DROP CONSTRAINT "${r.name}"` : `DROP INDEX "${r.name}"`);
      // Empty already; truncated so that COPY may FREEZE: rows written frozen and
      // all-visible, so nothing rewrites their pages later to set hint bits, and the index
      // builds and the journal's key scan read them without visibility checks. (With
      // wal_level = minimal, PostgreSQL also skips WAL for them.)
      await tx.exec(`TRUNCATE ${e.table}`);
      // What every row of this file gets, as column defaults for the duration of the load:
      // the rows themselves carry only the file's fields.
      const date = literal(at.toISOString());
      await tx.exec(`ALTER TABLE ${e.table} ALTER COLUMN first_seen SET DEFAULT ${date}, ALTER COLUMN last_seen SET DEFAULT ${date}, ALTER COLUMN source_file SET DEFAULT ${literal(sourceFile)}`);
      plans.push({ entity: e, columns: cols, mode: 'direct', target: e.table, copySql: `COPY ${e.table} (${cols.join(', ')}, digest) FROM STDIN ${COPY_OPTIONS.replace(/\)$/, ', FREEZE)')}`, indexes: rows.map((r) => ({ name: r.name, def: r.def, constraintDef: r.constraint_def, unique: r.unique })) });
    } else {
      const target = `stg_${name}`;
      await tx.exec(`CREATE TEMP TABLE ${target} (${cols.map((c) => `${c} text${C_COLUMNS.has(c) ? ' COLLATE "C"' : ''}`).join(', ')}, digest bytea) ${temp};
        CREATE TEMP TABLE stg_gone_${name} (tid tid) ${temp}`);
      // Where each row lies (its ctid) stays true until this transaction writes the table
      // itself: nobody else may write it meanwhile (readers go on). The vanished rows are
      // then reached by their ctid, without another pass over the table. (A session's
      // staging spans several transactions: there the importer's own lock keeps writers
      // out, and only imports write these tables — see runs.ts.)
      if (!session) await tx.exec(`LOCK TABLE ${e.table} IN SHARE ROW EXCLUSIVE MODE`);
      plans.push({ entity: e, columns: cols, mode: 'staged', target, copySql: `COPY ${target} (${cols.join(', ')}, digest) FROM STDIN ${COPY_OPTIONS}`, indexes: [] });
    }
  }
  // The digests are read last, one table after the other, not awaited: PostgreSQL reads
  // them while the importer reads the file (its rows wait in memory meanwhile; nothing is
  // sent on the connection until all are read: see gated in importer.ts). Each table's are
  // asked for as soon as the last table's have come, before those are made into a gate:
  // the importer's thread, busy splitting the file, left 0.4 s between two otherwise.
  let chain: Promise<unknown> = Promise.resolve();
  for (const p of plans) {
    if (p.mode !== 'staged') continue;
    const given = gates?.[p.entity.name];
    const name = p.entity.name;
    let gate: Promise<DigestGate>;
    if (given) gate = Promise.resolve(given);
    else if (tx.copyTo) {
      const bytes = chain.then(() => tx.copyTo!(gateCopy(name)));
      chain = bytes;
      gate = bytes.then(gateOfCopy);
    } else chain = gate = chain.then(() => loadGate(tx, name));
    gate.catch(() => {}); // awaited later; a failure surfaces there
    p.gate = gate;
  }
  return plans;
}

/** Whether each table of this kind holds rows (a sync) or not (a first import). */
export async function tablesFilled(q: Queryable, kind: FileKind): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const name of TABLES[kind]) out.push((await q.query(`SELECT 1 FROM ${ENTITIES[name].table} LIMIT 1`)).rows.length > 0);
  return out;
}

/**
 * The digest and ctid of every active row of a table (DigestGate): 14 bytes a row, 14 MB
 * for a million, in one pass — or, given `blocks`, in slices of that many table pages, one
 * statement each (TID range scans), so that on PGlite's one connection the platform's own
 * queries run between them. Nothing else writes these tables: the slices add up to the
 * same rows (the importer checks that no other import was applied meanwhile).
 */
export async function loadGate(q: Queryable, name: TableName, blocks?: number): Promise<DigestGate> {
  const t = ENTITIES[name].table;
  // In one pass (a connection without copyTo: see gateCopy) the bytes come as base64: bytea's
  // hex output is twice their size, and pg decoded it at three times the cost (500,000
  // rows: 240 → 70 ms of the importer's CPU, 830 → 510 ms to get them). In slices (PGlite)
  // they come as bytea: PGlite hands those over as bytes, no text in between.
  const agg = (x: string) => (blocks ? x : `encode(${x}, 'base64')`);
  const sql = (where: string) =>
    `SELECT ${agg(`string_agg(digest || tidsend(ctid), ''::bytea) FILTER (WHERE digest IS NOT NULL)`)} AS d,
            ${agg(`string_agg(tidsend(ctid), ''::bytea) FILTER (WHERE digest IS NULL)`)} AS n
     FROM ${t} WHERE active ${where}`;
  type Part = { d: Uint8Array | string | null; n: Uint8Array | string | null };
  const parts: Part[] = [];
  if (!blocks) parts.push((await q.query<Part>(sql(''))).rows[0]);
  else {
    const { rows } = await q.query<{ n: number }>(`SELECT (pg_relation_size('${t}') / current_setting('block_size')::int)::int AS n`);
    for (let b = 0; b < rows[0].n; b += blocks) parts.push((await q.query<Part>(sql(`AND ctid >= '(${b},0)'::tid AND ctid < '(${b + blocks},0)'::tid`))).rows[0]);
  }
  // Node's base64 decoder skips the line breaks PostgreSQL puts every 76 characters.
  const bytes = (x: Uint8Array | string) => (typeof x === 'string' ? Buffer.from(x, 'base64') : x);
  const join = (xs: Array<Uint8Array | string | null>) => Buffer.concat(xs.filter((x) => x !== null).map(bytes));
  return new DigestGate(join(parts.map((p) => p.d)), join(parts.map((p) => p.n)));
}

/**
 * PostgreSQL (prepare, a connection with copyTo): COPY's binary output, 26 bytes a row —
 * half the server's time of loadGate's one aggregated base64 value (500,000 rows: 0.2
 * against 0.37–0.5 s), and no text for the importer to decode.
 */
const gateCopy = (name: TableName) => `COPY (SELECT digest, ctid FROM ${ENTITIES[name].table} WHERE active) TO STDOUT (FORMAT binary)`;

/**
 * A DigestGate from gateCopy's output. After the header, each row is a 16-bit field count
 * (-1 ends the data), then each field's 32-bit length (-1: NULL) and bytes: an 8-byte
 * digest or NULL, then tidsend's 6 bytes. Anything else is refused: a gate missing rows
 * would leave them active whatever the file says.
 */
function gateOfCopy(b: Buffer): DigestGate {
  if (b.length < 19 || b.toString('latin1', 0, 11) !== 'PGCOPY\n\xff\r\n\0') throw new Error('the digests: not a binary COPY output');
  const d = Buffer.allocUnsafe(b.length);
  const u = Buffer.allocUnsafe(b.length);
  let dn = 0;
  let un = 0;
  for (let p = 19 + b.readUInt32BE(15); ; ) {
    const fields = b.readInt16BE(p);
    if (fields === -1) break;
    if (fields !== 2) throw new Error(`the digests: a row of ${fields} fields`);
    const len = b.readInt32BE(p + 2);
    const digest = p + 6;
    p = digest + Math.max(len, 0);
    const tid = p + 4;
    p = tid + 6;
    if (len === 8) {
      b.copy(d, dn, digest, digest + 8);
      b.copy(d, dn + 8, tid, tid + 6);
      dn += 14;
    } else {
      b.copy(u, un, tid, tid + 6);
      un += 6;
    }
  }
  return new DigestGate(d.subarray(0, dn), u.subarray(0, un));
}

/** Keys named by rejected lines: those entries keep their state (see applyPlan). */
export async function stageProtected(tx: Queryable, keep: Array<[string, string]>): Promise<void> {
  for (let i = 0; i < keep.length; i += 10_000) {
    const part = keep.slice(i, i + 10_000);
    await tx.query('INSERT INTO stg_keep (kind, k) SELECT * FROM unnest($1::text[], $2::text[])', [part.map((p) => p[0]), part.map((p) => p[1])]);
  }
}

/** Deletes all but one row of each repeated key (the first by DEDUPE_ORDER); returns how many went. */
async function dedupe(tx: Queryable, p: Plan): Promise<number> {
  const e = p.entity;
  const r = await tx.query(
    `DELETE FROM ${p.target} WHERE ctid = ANY(ARRAY(
       SELECT id FROM (SELECT x.ctid AS id, row_number() OVER (PARTITION BY ${e.key('x')} ORDER BY ${DEDUPE_ORDER(e, p.columns, 'x')}) AS r
                       FROM ${p.target} x WHERE ${e.key('x')} IN (SELECT ${e.key('y')} FROM ${p.target} y GROUP BY 1 HAVING count(*) > 1)) d
       WHERE r > 1))`,
  );
  return r.rowCount;
}

/**
 * Builds a unique index; when repeated keys make it fail, merges them and builds it again.
 * Repeats are rare (an address listed twice, a person's lines apart in the file), so the
 * usual file pays nothing to look for them. Returns the rows merged away.
 */
async function uniqueWithMerge(tx: Queryable, p: Plan, build: string): Promise<number> {
  await tx.query('SAVEPOINT mss_unique');
  try {
    await tx.exec(build);
    await tx.query('RELEASE SAVEPOINT mss_unique');
    return 0;
  } catch (err) {
    await tx.query('ROLLBACK TO SAVEPOINT mss_unique');
    const merged = await dedupe(tx, p);
    if (!merged) throw err;
    await tx.exec(build);
    await tx.query('RELEASE SAVEPOINT mss_unique');
    return merged;
  }
}

export interface ApplyContext {
  at: Date;
  sourceFile: string;
  /** Extraction date of the last file of this kind applied before this one: a deactivated row was last seen there. */
  previous: Date | undefined;
  /** False: nothing is deactivated (no valid line, or too many rejected to tell). */
  deactivate: boolean;
  /** Lines the splitter turned into rows. */
  goodLines: number;
  /** Rows COPY'd into the plan's target. */
  copied: number;
}

export async function applyPlan(tx: Queryable, p: Plan, c: ApplyContext): Promise<TableCounts> {
  if (p.mode === 'direct') return loadedDirect(tx, p, c);
  const seen = await diffPlan((fn) => fn(tx), p, c, false);
  return applyDiff(tx, p, c, seen);
}

/** A table loaded directly (it was empty): its indexes rebuilt; every row is an insertion. */
async function loadedDirect(tx: Queryable, p: Plan, c: ApplyContext): Promise<TableCounts> {
  const e = p.entity;
  let merged = 0;
  for (const ix of p.indexes) {
    const build = ix.constraintDef ? `ALTER TABLE ${e.table} ADD CONSTRAINT "${ix.name}" ${ix.constraintDef}` : ix.def;
    if (ix.unique) merged += await uniqueWithMerge(tx, p, build);
    else await tx.exec(build);
  }
  await tx.exec(`ALTER TABLE ${e.table} ALTER COLUMN first_seen DROP DEFAULT, ALTER COLUMN last_seen DROP DEFAULT, ALTER COLUMN source_file DROP DEFAULT`);
  const inserted = c.copied - merged;
  return { seen: inserted, inserted, updated: 0, unchanged: 0, deactivated: 0, merged: e.reportMerged ? c.goodLines - inserted : 0 };
}

/** A table's difference: distinct keys of the file, and the changes by kind. */
export interface Diff {
  seen: number;
  inserted: number;
  updated: number;
  deactivated: number;
}

/**
 * A staged table's difference, computed into the temporary table stg_d_<table> (key, kind
 * of change) without writing the table itself; returns the distinct keys of the file.
 * `step` runs each part in a transaction: the caller's, or (a session's staging on PGlite)
 * a short one each, so that the platform's own statements run between them.
 */
export async function diffPlan(step: Step, p: Plan, c: ApplyContext, session: boolean): Promise<number> {
  const e = p.entity;
  const cols = p.columns;
  const s = p.target;
  const k = e.key;
  const gone = `stg_gone_${e.name}`;
  const gate = await p.gate!;
  // Where the active rows that no line of the file matched lie: changed or vanished.
  await step(async (tx) => {
    await tx.copyFrom!(`COPY ${gone} (tid) FROM STDIN (FORMAT csv)`, gate.unmatched());
    await tx.exec(`ANALYZE ${gone}`);
  });
  // What the planner needs of the staging: its size and its key's spread (the statistics
  // of every column took longer to sample than the joins they inform). Staged rows are
  // few: their keys are looked up through the table's unique index, not by scanning it.
  await step((tx) => tx.exec(`ANALYZE ${s} (${e.keyColumn})`));
  // A staged key that a skipped line also named (a key repeated in the file with other
  // content): that line was the table's row, as it is — staged again, so that the merge
  // rule chooses among all of the key's lines, as if every line had been staged. (OFFSET 0:
  // the keys are looked up first, through the table's index; with the ctid test among
  // them, PostgreSQL would rather read the whole table.)
  await step((tx) =>
    tx.query(
      `INSERT INTO ${s} (${cols.join(', ')}, digest)
     SELECT ${cols.join(', ')}, digest FROM (
       SELECT t.*, t.ctid AS tid FROM ${e.table} t WHERE ${k('t')} IN (SELECT ${k('x')} FROM ${s} x) AND t.active OFFSET 0) t
     WHERE t.tid NOT IN (SELECT g.tid FROM ${gone} g)`,
    ),
  );
  const merged = await step((tx) => uniqueWithMerge(tx, p, `CREATE UNIQUE INDEX ON ${s} (${k('x').replace('x.', '')}); ANALYZE ${s} (${e.keyColumn})`));
  // Distinct keys of the file: one per matched digest (the skipped lines), plus those left
  // in the staging (copied + candidates − merged) that are not a candidate's.
  const seen = gate.matched + c.copied - merged;
  // The staged keys are looked up in the table through its unique index; the vanished
  // rows are read where they lie.
  const d = `stg_d_${e.name}`;
  const keep = e.protect.map(([kind, col]) => `AND NOT EXISTS (SELECT 1 FROM stg_keep p WHERE p.kind = '${kind}' AND p.k = ${col})`).join(' ');
  await step((tx) =>
    tx.exec(`CREATE TEMP TABLE ${d} ${tempTables(session)} AS
    SELECT ${k('s')} AS k, CASE WHEN t.ctid IS NULL THEN 'inserted' ELSE 'updated' END AS kind
    FROM ${s} s LEFT JOIN ${e.table} t ON ${k('t')} = ${k('s')}
    WHERE t.ctid IS NULL OR NOT t.active OR (${cols.map((x) => `t.${x}`).join(', ')}) IS DISTINCT FROM (${cols.map((x) => `s.${x}`).join(', ')})
    UNION ALL
    SELECT ${k('t')}, 'deactivated' FROM ${e.table} t
    WHERE ${c.deactivate ? '' : 'false AND'} t.ctid = ANY(ARRAY(SELECT g.tid FROM ${gone} g)) AND t.active
      AND NOT EXISTS (SELECT 1 FROM ${s} s WHERE ${k('s')} = ${k('t')}) ${keep};
    ANALYZE ${d}`),
  );
  return seen;
}

/** The changes diffPlan found, by kind (a sync in steps counts them before applying them). */
export async function diffCounts(q: Queryable, p: Plan, seen: number): Promise<Diff> {
  const { rows } = await q.query<{ kind: ChangeKind; n: number }>(`SELECT kind, count(*)::int AS n FROM stg_d_${p.entity.name} GROUP BY kind`);
  const n = (kind: ChangeKind) => rows.find((r) => r.kind === kind)?.n ?? 0;
  return { seen, inserted: n('inserted'), updated: n('updated'), deactivated: n('deactivated') };
}

/** Applies a table's difference (diffPlan) in the caller's transaction, noting each change in stg_chg. */
async function applyDiff(tx: Queryable, p: Plan, c: ApplyContext, seen: number): Promise<TableCounts> {
  const e = p.entity;
  const cols = p.columns;
  const s = p.target;
  const d = `stg_d_${e.name}`;
  const log = (change: ChangeKind, sql: string, params: unknown[]) =>
    tx.query(`WITH c AS (${sql} RETURNING ${e.key('t')} AS k) INSERT INTO stg_chg (tbl, kind, k) SELECT '${e.name}', '${change}', k FROM c`, params);
  const updated = await log(
    'updated',
    `UPDATE ${e.table} t SET (${cols.join(', ')}, digest, hash, active, deactivated_at, last_seen, source_file) =
       (${cols.map((x) => `s.${x}`).join(', ')}, s.digest, NULL, true, NULL, $1::timestamptz, $2::text)
     FROM ${d} d, ${s} s WHERE d.kind = 'updated' AND ${e.key('t')} = d.k AND ${e.key('s')} = d.k`,
    [c.at, c.sourceFile],
  );
  const inserted = await log(
    'inserted',
    `INSERT INTO ${e.table} AS t (${cols.join(', ')}, digest, active, first_seen, last_seen, source_file)
     SELECT ${cols.map((x) => `s.${x}`).join(', ')}, s.digest, true, $1::timestamptz, $1::timestamptz, $2::text FROM ${d} d JOIN ${s} s ON ${e.key('s')} = d.k
     WHERE d.kind = 'inserted'`,
    [c.at, c.sourceFile],
  );
  const deactivated = await log(
    'deactivated',
    `UPDATE ${e.table} t SET active = false, deactivated_at = $1::timestamptz, source_file = $2::text, last_seen = coalesce($3::timestamptz, t.last_seen)
     FROM ${d} d WHERE d.kind = 'deactivated' AND ${e.key('t')} = d.k`,
    [c.at, c.sourceFile, c.previous ?? null],
  );
  // A row that was the same but had another digest (none: written by other means, or
  // before 0110) takes the file's, so that the next sync skips it. Not a change.
  await tx.query(`UPDATE ${e.table} t SET digest = s.digest FROM ${s} s WHERE ${e.key('t')} = ${e.key('s')} AND t.digest IS DISTINCT FROM s.digest`);
  return tableCounts(p, c, { seen, inserted: inserted.rowCount, updated: updated.rowCount, deactivated: deactivated.rowCount });
}

export const tableCounts = (p: Plan, c: ApplyContext, d: Diff): TableCounts => ({
  seen: d.seen,
  inserted: d.inserted,
  updated: d.updated,
  unchanged: d.seen - d.inserted - d.updated,
  deactivated: d.deactivated,
  merged: p.entity.reportMerged ? c.goodLines - d.seen : 0,
});

export interface Change {
  table: TableName;
  kind: ChangeKind;
  key: string;
}

/** The first `perKind` changes of each (table, kind), for the dry-run listing. */
export async function sampleChanges(tx: Queryable, plans: Plan[], perKind: number): Promise<Change[]> {
  const out: Change[] = [];
  const { rows } = await tx.query<{ tbl: TableName; kind: ChangeKind; k: string }>(
    `SELECT tbl, kind, k FROM (SELECT tbl, kind, k, row_number() OVER (PARTITION BY tbl, kind) AS r FROM stg_chg) x WHERE r <= $1`,
    [perKind],
  );
  for (const p of plans) {
    if (p.mode === 'direct') {
      const { rows: keys } = await tx.query<{ k: string }>(`SELECT ${p.entity.key('t')} AS k FROM ${p.entity.table} t LIMIT $1`, [perKind]);
      out.push(...keys.map((r) => ({ table: p.entity.name, kind: 'inserted' as const, key: r.k })));
    }
    for (const kind of ['updated', 'inserted', 'deactivated'] as const) {
      out.push(...rows.filter((r) => r.tbl === p.entity.name && r.kind === kind).map((r) => ({ table: r.tbl, kind: r.kind, key: r.k })));
    }
  }
  return out;
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
 * The changes as pages of at most `batch` keys of one table and one kind of change.
 * PostgreSQL does the grouping, so the importer handles a few thousand rows rather than
 * millions; a cursor keeps memory bounded. A table loaded directly was empty: every row
 * is an insertion, paged in key order straight from the table — each page is the next
 * `batch` keys after the last one of the page before, read in order from the key's unique
 * index, which the load just built (no sort of the whole table). For the others, stg_chg —
 * a fresh temp table, scanned in the order it was written — is cut by its running row
 * number into full pages of each (table, kind) run. Inserted keys come as a digest, not a
 * list (see journalFile in importer.ts for why).
 */
export async function* changeBatches(tx: Queryable, plans: Plan[], batch: number): AsyncGenerator<ChangePage> {
  const size = Math.max(1, Math.floor(batch));
  // Pages per round trip: about 100,000 keys (listed keys, up to a few MB).
  const pages = (name: string, sql: string) => fetchAll(tx, name, sql, Math.max(1, Math.floor(100_000 / size)));
  for (const p of plans) {
    if (p.mode !== 'direct') continue;
    const k = p.entity.key('t');
    // string_agg takes the keys in the order the subquery gives them — its ORDER BY, with
    // nothing in between that could reorder them (PostgreSQL documents this form). An ORDER
    // BY inside the aggregate would sort each page again: a third of this query's time.
    const page = (after: string) =>
      `SELECT count(*)::int AS n, min(k) AS first, max(k) AS last, encode(sha256(convert_to(string_agg(k, E'\\n'), 'UTF8')), 'hex') AS digest
       FROM (SELECT ${k} AS k FROM ${p.entity.table} t ${after} ORDER BY ${k} LIMIT ${size}) x`;
    for await (const r of pages(
      'stg_direct_cursor',
      `WITH RECURSIVE page AS (
         SELECT * FROM (${page('')}) a
         UNION ALL
         SELECT b.* FROM page, LATERAL (${page(`WHERE ${k} > page.last`)}) b WHERE page.n = ${size}
       )
       SELECT '${p.entity.name}' AS tbl, 'inserted' AS kind, n, first, last, NULL AS keys, digest FROM page WHERE n > 0`,
    )) yield r;
  }
  yield* pages(
    'stg_chg_cursor',
    `SELECT tbl, kind, count(*)::int AS n, min(k) AS first, max(k) AS last,
       CASE WHEN kind <> 'inserted' THEN string_agg(k, E'\\n' ORDER BY k) END AS keys,
       CASE WHEN kind = 'inserted' THEN encode(sha256(convert_to(string_agg(k, E'\\n' ORDER BY k), 'UTF8')), 'hex') END AS digest
     FROM (SELECT tbl, kind, k, (row_number() OVER ()) - 1 AS r FROM stg_chg) x
     GROUP BY tbl, kind, r / ${size} ORDER BY min(r)`,
  );
}

async function* fetchAll(tx: Queryable, cursor: string, sql: string, perFetch: number): AsyncGenerator<ChangePage> {
  await tx.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`);
  try {
    for (;;) {
      const { rows } = await tx.query<{ tbl: TableName; kind: ChangeKind; n: number; first: string; last: string; keys: string | null; digest: string | null }>(`FETCH ${perFetch} FROM ${cursor}`);
      if (!rows.length) return;
      for (const r of rows) {
        const page: ChangePage = { table: r.tbl, kind: r.kind, count: r.n, first: r.first, last: r.last };
        if (r.keys !== null) page.keys = r.keys;
        if (r.digest !== null) page.sha256 = r.digest;
        yield page;
      }
    }
  } finally {
    await tx.query(`CLOSE ${cursor}`);
  }
}

/**
 * What the LDAP directory must re-read after a staged apply: the changed MSSanté addresses
 * with their holders and structures; the changed persons that hold an address, and every
 * published box (national or the operator's own, whose title comes from annuaire_persons)
 * that names them; the changed sites a national box names. Read from annuaire/ldap's views and the national tables, never bal_*.
 */
export async function ldapKeys(tx: Queryable, kind: FileKind): Promise<{ addresses: string[]; persons: string[]; structures: string[] }> {
  if (kind === 'mssante') {
    const { rows } = await tx.query<{ k: string; idnps: string | null; structure_id: string | null }>(
      `SELECT c.k, a.idnps, a.structure_id FROM stg_chg c LEFT JOIN annuaire_mss_addresses a ON lower(a.address) = c.k WHERE c.tbl = 'addresses'`,
    );
    return {
      addresses: rows.map((r) => r.k),
      persons: rows.flatMap((r) => (r.idnps ? [r.idnps] : [])),
      structures: rows.flatMap((r) => (r.structure_id ? [r.structure_id] : [])),
    };
  }
  const changed = `SELECT k FROM stg_chg WHERE tbl = 'persons'`;
  const { rows: persons } = await tx.query<{ k: string }>(`SELECT DISTINCT c.k FROM stg_chg c WHERE c.tbl = 'persons' AND EXISTS (SELECT 1 FROM annuaire_mss_addresses a WHERE a.idnps = c.k)`);
  const { rows: boxes } = await tx.query<{ key: string }>(`SELECT key FROM annuaire_ldap_bal WHERE idnps IN (${changed})`);
  // A site's name and address fill the entry of a structure its boxes leave unnamed (0155).
  const { rows: sites } = await tx.query<{ k: string }>(`SELECT DISTINCT c.k FROM stg_chg c WHERE c.tbl = 'structures' AND EXISTS (SELECT 1 FROM annuaire_mss_addresses a WHERE a.structure_id = c.k AND a.active)`);
  return { addresses: boxes.map((r) => r.key), persons: persons.map((r) => r.k), structures: sites.map((r) => r.k) };
}

/**
 * Freezes a staged table's difference (diffPlan's stg_d_<table>) into a run's changes
 * (0120) — the key, the digest, the file's fields as text — numbered from `seq` in the order they are applied and journalled: updated,
 * inserted, deactivated, then the rows that only take the file's digest; key order within
 * each. Returns the next free seq.
 */
export async function persistDiff(tx: Queryable, p: Plan, runId: number, seq: number): Promise<number> {
  const e = p.entity;
  const s = p.target;
  const d = `stg_d_${e.name}`;
  const r = await tx.query(
    `INSERT INTO annuaire_import_changes (run_id, seq, tbl, kind, k, digest, fields)
     SELECT $1, $2 + row_number() OVER (ORDER BY o, k) - 1, '${e.name}', kind, k, digest, fields FROM (
       SELECT d.k, d.kind, CASE d.kind WHEN 'updated' THEN 0 WHEN 'inserted' THEN 1 ELSE 2 END AS o, s.digest,
              CASE WHEN d.kind <> 'deactivated' THEN ARRAY[${p.columns.map((x) => `s.${x}`).join(', ')}] END AS fields
       FROM ${d} d LEFT JOIN ${s} s ON d.kind <> 'deactivated' AND ${e.key('s')} = d.k
       UNION ALL
       SELECT ${e.key('s')}, 'digest', 3, s.digest, NULL FROM ${s} s JOIN ${e.table} t ON ${e.key('t')} = ${e.key('s')}
       WHERE t.digest IS DISTINCT FROM s.digest AND NOT EXISTS (SELECT 1 FROM ${d} d WHERE d.k = ${e.key('s')})) x`,
    [runId, seq],
  );
  return seq + r.rowCount;
}

/** What applying a run's changes needs of its file (runs.ts keeps it with the run). */
export interface RunContext {
  at: Date;
  sourceFile: string;
  previous: Date | undefined;
}

/**
 * Applies the changes of a run from `from` on: at most `max` of them, all of one table and
 * one kind (the run of them that `from` starts), each looked up by key. Returns the last
 * seq applied, or undefined when none is left.
 */
export async function applyChanges(tx: Queryable, runId: number, columns: Partial<Record<TableName, string[]>>, from: number, max: number, c: RunContext): Promise<number | undefined> {
  const { rows } = await tx.query<{ tbl: TableName; kind: ChangeKind | 'digest'; last: number }>(
    `SELECT tbl, kind, max(seq)::int AS last FROM annuaire_import_changes WHERE run_id = $1 AND seq >= $2 AND seq < $2 + $3
     GROUP BY tbl, kind ORDER BY min(seq) LIMIT 1`,
    [runId, from, max],
  );
  if (!rows.length) return undefined;
  const { tbl, kind, last } = rows[0];
  const e = ENTITIES[tbl];
  const cols = columns[tbl]!;
  // The file's fields, as text (what the staging held), in the run's column order.
  const r = cols.map((_, i) => `c.fields[${i + 1}]`).join(', ');
  const these = `c.run_id = $1 AND c.seq BETWEEN $2 AND $3`;
  const params = [runId, from, last, c.at, c.sourceFile];
  if (kind === 'updated')
    await tx.query(
      `UPDATE ${e.table} t SET (${cols.join(', ')}, digest, hash, active, deactivated_at, last_seen, source_file) = (${r}, c.digest, NULL, true, NULL, $4::timestamptz, $5::text)
       FROM annuaire_import_changes c WHERE ${these} AND ${e.key('t')} = c.k`,
      params,
    );
  else if (kind === 'inserted')
    await tx.query(
      `INSERT INTO ${e.table} (${cols.join(', ')}, digest, active, first_seen, last_seen, source_file)
       SELECT ${r}, c.digest, true, $4::timestamptz, $4::timestamptz, $5::text FROM annuaire_import_changes c WHERE ${these} ORDER BY c.seq`,
      params,
    );
  else if (kind === 'deactivated')
    await tx.query(
      `UPDATE ${e.table} t SET active = false, deactivated_at = $4::timestamptz, source_file = $5::text, last_seen = coalesce($6::timestamptz, t.last_seen)
       FROM annuaire_import_changes c WHERE ${these} AND ${e.key('t')} = c.k`,
      [...params, c.previous ?? null],
    );
  else await tx.query(`UPDATE ${e.table} t SET digest = c.digest FROM annuaire_import_changes c WHERE ${these} AND ${e.key('t')} = c.k`, [runId, from, last]);
  return last;
}

/**
 * A run's changes (persistDiff) as stg_chg, for the last transaction of a sync applied in
 * steps: the journal (changeBatches) and the directory's keys (ldapKeys) read it there as
 * they read it after a sync in one transaction. Written in seq order, read in that order.
 */
export async function changeListOfRun(tx: Queryable, runId: number): Promise<void> {
  await tx.exec(`DROP TABLE IF EXISTS pg_temp.stg_chg; CREATE TEMP TABLE stg_chg (tbl text NOT NULL, kind text NOT NULL, k text COLLATE "C" NOT NULL) ON COMMIT DROP`);
  await tx.query(`INSERT INTO stg_chg (tbl, kind, k) SELECT tbl, kind, k FROM annuaire_import_changes WHERE run_id = $1 AND kind <> 'digest' ORDER BY seq`, [runId]);
}
