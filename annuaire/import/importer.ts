// One extraction file → one transaction: stream the file through the line splitter, COPY
// its rows (into the final tables when they are empty, else into staging tables), apply
// the difference with set-based SQL, queue the changes for the LDAP directory, journal
// them, record the file. A crash or an error anywhere before COMMIT leaves the previous
// state exactly as it was; a dry run is the same path ending in ROLLBACK. On PGlite, whose
// one connection a transaction holds for the whole platform, a sync does the same work in
// bounded transactions instead, crash-safe and resumable (runs.ts).
//
// Node and PostgreSQL work at the same time: the splitter runs on the bytes while COPY
// consumes the rows it produced, every table's in one connection: a run of one table's
// chunks is one COPY, and the next table's chunk ends it and starts that table's COPY
// (interleaveCopies). So PostgreSQL loads persons and structures while the file is still
// being read, instead of after it; memory stays flat (a few chunks in flight).
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { queueLdapChanges, requireLdapRebuild } from '../ldap/index.js';
import type { Db, Queryable } from '../../core/db/index.js';
import { MssError, isMssError } from '../../core/errors.js';
import type { Journal } from '../../core/journal/index.js';
import { applyPlan, changeBatches, changeListOfRun, diffCounts, diffPlan, dropStaging, ldapKeys, loadGate, prepare, sampleChanges, stageProtected, tableCounts, tablesFilled, type ApplyContext, type Change, type Plan, type Step, type TableCounts } from './apply.js';
import { BadLine, BlockDecoder, forEachLine, type Encoding, type Segment } from './decode.js';
import { HeaderError, extractionDateFromName, parseHeader, type FileKind } from './formats.js';
import { silentProgress, type Progress } from './progress.js';
import type { RejectSink } from './report.js';
import { DigestGate, LineSplitter, OutBuf, TABLES, cleanBlock, gateRows, type TableName } from './rows.js';
import { applyRun, DEFAULT_BATCH, dropUnfrozen, freezeRun, pendingRuns, purgeRuns, serialImports, type RunRecord } from './runs.js';
import { DEFAULT_ZIP_LIMITS, openInput, type Source, type ZipLimits } from './source.js';

/** What the importer needs of core/journal: appends inside our transaction. */
export type ImportJournal = Pick<Journal, 'appendIn' | 'appendManyIn'>;

export interface ImportOptions {
  db: Db;
  /** Required unless dryRun: every applied change is journalled. */
  journal?: ImportJournal;
  /** Who runs the import, for the journal (`cli:<user>`, an admin account…). */
  actor: string;
  report: RejectSink;
  dryRun?: boolean;
  /** Apply an extraction older than the latest one imported. */
  force?: boolean;
  /** Extraction date when the file name carries none (or to override it). */
  date?: Date;
  progress?: Progress;
  /** Dry run: how many changes to list per table and kind of change. */
  sample?: number;
  /** Keys per `annuaire.changes` journal event. */
  journalBatch?: number;
  zipLimits?: ZipLimits;
  /**
   * What the report, the journal and the answer call a file instead of its path (one path
   * only): the admin API's uploads wait under a temporary name, and are known by their own.
   */
  shownAs?: string;
  /**
   * The running LDAP directory (Directory from annuaire/ldap), when the caller has one. A
   * file loaded into an empty table (a first import) queues nothing for the directory —
   * hundreds of thousands of keys, each looked up and written over LDAP, would take the
   * feeder minutes where a rebuild (slapadd into a fresh database, swapped in) takes
   * seconds. So such a file records, in its transaction, that the directory must be rebuilt
   * (requireLdapRebuild), and after it commits `rebuild` is called here; without a directory
   * (the CLI runs in its own process) the platform sees the record and rebuilds — at its
   * next start, or at once when it runs on the same PostgreSQL (startDirectory).
   * Incremental files queue their changed keys (queueLdapChanges) in their transaction.
   */
  ldap?: { rebuild(actor?: string): Promise<unknown> };
  /**
   * Called between the steps of a file inside its transaction (`staged`, `table:persons`,
   * …, `journalled`). Throwing aborts the file and rolls it back: progress display and
   * failure-injection tests both hook here.
   */
  onStep?: (step: string, file: string) => Promise<void> | void;
  /**
   * PGlite, a sync: changes applied per transaction (runs.ts; default DEFAULT_BATCH). 0: the
   * whole file in one transaction, as on PostgreSQL — whose pool serves the platform beside
   * it, and which keeps that (faster) path.
   */
  batch?: number;
}

export interface FileResult {
  /** `path` or `archive.zip!entry.txt` */
  file: string;
  kind: FileKind;
  encoding: Encoding | 'ASCII';
  extractionDate: Date;
  sha256: string;
  /** Data lines read (the header excluded). */
  lines: number;
  rejected: number;
  tables: Record<string, TableCounts>;
  applied: boolean;
  dryRun: boolean;
  forced: boolean;
  notes: string[];
  /** Dry run: the first changes of each kind. */
  changes?: Change[];
  /** Seq of the `annuaire.import` journal event. */
  journalSeq?: number;
  /**
   * What the LDAP directory needs: nothing (no published entry changed), `queued` (keys
   * queued for the feeder), or `rebuild` (a bulk load: see ImportOptions.ldap).
   */
  ldap: { action: 'none' | 'queued' | 'rebuild'; keys: number };
}

export interface ImportOutcome {
  results: FileResult[];
  /** Files (or archive entries) not applied, with the reason. */
  failures: Array<{ file: string; error: MssError }>;
  /** Archive entries deliberately not read (other extractions of the same ZIP). */
  skipped: string[];
}

// Serialises imports across processes: two imports of the same kind must not interleave.
const IMPORT_LOCK = 0x4d53_5310;
/** Rejected lines whose keys we remember to protect their entries from deactivation. */
const MAX_PROTECTED = 100_000;
/** Rows parsed ahead of COPY (see readAhead); in a sync, while the digests are read. */
const READ_AHEAD_BYTES = 32 << 20;
const SYNC_READ_AHEAD_BYTES = 96 << 20;
/** How far ahead an extraction date may be (names carry Paris time, clocks drift): a day. */
const FUTURE_TOLERANCE_MS = 86_400_000;
/**
 * PGlite, a sync: staged rows read ahead of the transaction, at most this many bytes (the
 * rest is read inside it); the digests are read in slices of this many table pages (2 MB:
 * each slice is one statement, during which PGlite holds the platform's event loop — at 2,048
 * pages bench/mixed saw logins and the MX's 250s wait up to 400 ms behind one).
 */
const PREREAD_BYTES = 128 << 20;
const GATE_BLOCKS = 256;
/** Change events handed to the journal per multi-row INSERT. */
const EVENTS_PER_WRITE = 100;

class DryRunDone {
  constructor(readonly result: FileResult) {}
}

/** Imports each path (a .txt extraction or a .zip of them), one transaction per file, in order. */
export async function importFiles(paths: string[], o: ImportOptions): Promise<ImportOutcome> {
  const out: ImportOutcome = { results: [], failures: [], skipped: [] };
  for (const path of paths) {
    const shown = o.shownAs && paths.length === 1 ? o.shownAs : path;
    let opened;
    try {
      opened = await openInput(path, o.zipLimits ?? DEFAULT_ZIP_LIMITS);
    } catch (e) {
      out.failures.push(await failed(o, shown, e));
      continue;
    }
    out.skipped.push(...opened.skipped);
    try {
      for (const src of opened.sources.map((x) => ({ ...x, label: shown + x.label.slice(path.length) }))) {
        try {
          out.results.push(await importSource(src, o));
        } catch (e) {
          // Inside a ZIP, the other extractions of the same archive (savoir-faire,
          // diplômes…) are not ours to read: skip them, do not fail.
          if (src.container && isMssError(e) && e.code === 'ANNUAIRE_UNKNOWN_FILE') out.skipped.push(`${src.label}: ${e.details.reason}`);
          else out.failures.push(await failed(o, src.label, e));
        }
      }
    } finally {
      opened.close();
    }
  }
  return out;
}

/**
 * A file not applied — unreadable, not an extraction, older than the one in place, or any
 * error on the way (the transaction rolled back) — is journalled with its reason and the
 * report, like every refusal, dry runs included. Written in a transaction of its own: the
 * file's own rolled back. If even that cannot be written (the database is gone) the import
 * throws: no refusal goes unrecorded without the caller knowing.
 */
async function failed(o: ImportOptions, file: string, e: unknown): Promise<{ file: string; error: MssError }> {
  const error = asMssError(e, file);
  if (o.journal) {
    const ev = { type: 'annuaire.import.failed', actor: o.actor, subject: file, details: { file, code: error.code, reason: error.message, report: o.report.path ?? null, dryRun: o.dryRun === true } };
    await o.db.transaction((tx) => o.journal!.appendIn(tx, ev));
  }
  return { file, error };
}

function asMssError(e: unknown, file: string): MssError {
  if (isMssError(e)) return e;
  return new MssError('ANNUAIRE_READ_FAILED', { file, reason: (e as Error)?.message ?? String(e) }, { cause: e });
}

/** Extraction date of the last file of this kind applied (by order of application), if any. */
async function lastApplied(q: Queryable, kind: FileKind): Promise<Date | undefined> {
  const { rows } = await q.query<{ d: Date }>('SELECT extraction_date AS d FROM annuaire_import_files WHERE kind = $1 ORDER BY id DESC LIMIT 1', [kind]);
  return rows[0] ? new Date(rows[0].d) : undefined;
}

/** Latest extraction date applied for this kind, if any. */
async function latestDate(q: Queryable, kind: FileKind): Promise<Date | undefined> {
  const { rows } = await q.query<{ d: Date | null }>('SELECT max(extraction_date) AS d FROM annuaire_import_files WHERE kind = $1', [kind]);
  return rows[0]?.d ? new Date(rows[0].d) : undefined;
}

const iso = (d: Date) => d.toISOString().replace(/:00\.000Z$/, 'Z').replace('T00:00Z', '');

export async function importSource(src: Source, o: ImportOptions): Promise<FileResult> {
  if (!o.dryRun && !o.journal) throw new Error('importSource: a journal is required to apply changes');
  // On PGlite a sync is staged in the one session's temporary tables, across transactions:
  // imports take turns, and a sync a crash interrupted is finished before anything else.
  if (o.db.kind !== 'pglite') return importOne(src, o);
  return serialImports(async () => {
    await finishPending(o.db, o.journal, o.batch);
    return importOne(src, o);
  });
}

async function importOne(src: Source, o: ImportOptions): Promise<FileResult> {
  const progress = o.progress ?? silentProgress;
  const stream: Readable = await src.open();
  const reader = new FileReader(stream, src.label);
  try {
    // The header says what the file is; nothing touches the database before that.
    const first = await reader.headerLine();
    if (first === undefined || first instanceof BadLine) throw new MssError('ANNUAIRE_UNKNOWN_FILE', { file: src.label, reason: first ? first.reason : 'it is empty' });
    let header;
    try {
      header = parseHeader(first);
    } catch (e) {
      if (e instanceof HeaderError) throw new MssError('ANNUAIRE_UNKNOWN_FILE', { file: src.label, reason: e.message });
      throw e;
    }
    const date = o.date ?? extractionDateFromName(src.name) ?? (src.container ? extractionDateFromName(src.container) : undefined);
    if (!date) throw new MssError('ANNUAIRE_NO_DATE', { file: src.label });
    // A date in the future would stay "the latest" and refuse every real file after it.
    if (date.getTime() > Date.now() + FUTURE_TOLERANCE_MS) throw new MssError('ANNUAIRE_FUTURE_EXTRACTION', { file: src.label, date: iso(date) });
    const refuseIfOlder = async (q: Queryable) => {
      const latest = await latestDate(q, header.kind);
      if (latest && date < latest && !o.force) throw new MssError('ANNUAIRE_OLDER_EXTRACTION', { file: src.label, date: iso(date), latest: iso(latest) });
      return latest !== undefined && date < latest;
    };
    // Checked before reading the file (fast refusal) and again under the lock (authoritative).
    await refuseIfOlder(o.db);

    const notes: string[] = [];
    if (header.missing.length) notes.push(`older layout without ${header.missing.map((c) => `"${c}"`).join(', ')} (left empty)`);
    if (header.unknown.length) notes.push(`ignored unknown column(s) ${header.unknown.map((c) => `"${c}"`).join(', ')}`);
    const keep: Array<[string, string]> = [];
    let tooManyRejects = false;
    let lines = 0;
    let lineNo = 1;
    let rejected = 0;
    progress.start(src.label, src.size);

    // Each table's rows go to COPY as the file is read, in the order their chunks fill: the
    // main table's (one row per line) in 1 MB chunks, the others' in larger ones, so that
    // a switch between tables (one COPY ending, another starting) comes every few MB.
    const ready: Chunk[] = [];
    const main: TableName = header.kind === 'activity' ? 'activities' : 'addresses';
    const outs: Partial<Record<TableName, OutBuf>> = {};
    for (const t of TABLES[header.kind]) outs[t] = new OutBuf((data) => ready.push({ table: t, data }), t === main ? 1 << 20 : 8 << 20, true);
    const splitter = new LineSplitter(header, outs);

    const reject = (n: number, reason: string, text: string) => {
      rejected++;
      o.report.reject(src.label, n, reason, text);
      const k = splitter.protectedKeys(text);
      if (keep.length + 2 > MAX_PROTECTED) tooManyRejects = true;
      else for (const [kind, key] of Object.entries(k)) if (key) keep.push([kind, key]);
    };

    /** The COPY input of every table: the file, split as it is read. */
    async function* rowChunks(): AsyncGenerator<Chunk> {
      for (;;) {
        const seg = await reader.next();
        if (seg === undefined) break;
        if (seg instanceof BadLine) {
          lineNo++;
          lines++;
          reject(lineNo, seg.reason, seg.lenient);
        } else {
          const clean = cleanBlock(seg);
          forEachLine(seg, (s, e) => {
            lineNo++;
            if (s === e) return; // blank line (e.g. at the end of the file): not a record
            lines++;
            const why = splitter.line(seg, s, e, clean);
            if (why !== undefined) reject(lineNo, why, seg.toString('utf8', s, e));
          });
        }
        progress.update(reader.bytes, lines);
        while (ready.length) yield ready.shift()!;
      }
      splitter.finish();
      for (const out of Object.values(outs)) out.flush();
      while (ready.length) yield ready.shift()!;
    }

    // PGlite has one connection, which a transaction holds until it ends: reading the file
    // inside it would stop the platform's own queries (mail spooling, logins) for as long.
    // A sync is read ahead of the transaction instead: the digests first (in slices), then
    // the file, keeping only the rows they do not know (a few MB a month). The transaction
    // then checks that no import was applied meanwhile, and loads and applies those rows.
    // PostgreSQL serves others beside a transaction: the file is read inside it, as it comes.
    let ahead: { generation: string | null; gates: Partial<Record<TableName, DigestGate>>; chunks: Chunk[]; rest: AsyncGenerator<Chunk> } | undefined;
    const generation = async (q: Queryable) =>
      (await q.query<{ id: string | null }>('SELECT max(id)::text AS id FROM annuaire_import_files WHERE kind = $1', [header.kind])).rows[0]?.id ?? null;
    if (o.db.kind === 'pglite' && (await tablesFilled(o.db, header.kind)).every(Boolean)) {
      const gen = await generation(o.db);
      const gates: Partial<Record<TableName, DigestGate>> = {};
      for (const t of TABLES[header.kind]) outs[t]!.gate = gates[t] = await loadGate(o.db, t, GATE_BLOCKS);
      const rest = gated(rowChunks(), gates);
      const chunks: Chunk[] = [];
      for (let bytes = 0; bytes < PREREAD_BYTES; ) {
        const r = await rest.next();
        if (r.done) break;
        chunks.push(r.value);
        bytes += r.value.data.length;
      }
      ahead = { generation: gen, gates, chunks, rest };
    }
    const staged = async function* (a: NonNullable<typeof ahead>): AsyncGenerator<Chunk> {
      yield* a.chunks.splice(0);
      yield* a.rest;
    };

    /** The start of either path, in a transaction: checks under the lock, then the plans. */
    const begin = async (tx: Queryable, session: boolean) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [IMPORT_LOCK]);
      const forced = await refuseIfOlder(tx);
      if (ahead && (await generation(tx)) !== ahead.generation) {
        throw new MssError('ANNUAIRE_READ_FAILED', { file: src.label, reason: 'another import of the same kind was applied while it was being read: run it again' });
      }
      const previous = await lastApplied(tx, header.kind);
      if (o.db.kind === 'pg') {
        // Sorts (index builds, the joins of a sync) in memory rather than in temp files.
        await tx.query("SET LOCAL work_mem = '256MB'");
        await tx.query("SET LOCAL maintenance_work_mem = '512MB'");
        // Each statement here runs once over a whole file: compiling it to machine code
        // (JIT) costs more than it saves.
        await tx.query('SET LOCAL jit = off');
        // The tables were just read or written: an index probe costs about a sequential page
        // read, not four. Without this, applying 10,000 changes to a million-row table
        // scanned all of it (and all of its staging) once per statement.
        await tx.query('SET LOCAL random_page_cost = 1.1');
        // Staging lives in temp tables: with the default 8 MB of temp buffers every pass
        // over them goes through the kernel. PostgreSQL only accepts this before the
        // session's first temp table, hence the savepoint.
        await tx.query('SAVEPOINT temp_buffers');
        try {
          await tx.query("SET LOCAL temp_buffers = '1GB'");
          await tx.query('RELEASE SAVEPOINT temp_buffers');
        } catch {
          await tx.query('ROLLBACK TO SAVEPOINT temp_buffers');
        }
      }
      const plans = await prepare(tx, header.kind, splitter.columns, date, src.name, ahead?.gates, session);
      if (ahead && plans.some((p) => p.mode !== 'staged')) {
        throw new MssError('ANNUAIRE_READ_FAILED', { file: src.label, reason: 'the national tables were emptied while it was being read: run it again' });
      }
      if (!tx.copyFrom) throw new Error('this database connection cannot bulk-load (no copyFrom)');
      return { forced, previous, plans };
    };
    const copySql = (plans: Plan[]) => (t: TableName) => plans.find((p) => p.entity.name === t)!.copySql;
    const loaded = async () => {
      progress.phase(`${lines.toLocaleString('en-US')} lines read, ${rejected} rejected; ${o.dryRun ? 'computing the difference (dry run: nothing is applied)' : 'applying the difference'}`);
      await o.onStep?.('staged', src.label);
      // Without a single good line, "everything vanished" is far likelier a broken file.
      if (splitter.good === 0) {
        notes.push('no valid line: nothing deactivated');
        return false;
      }
      if (tooManyRejects) {
        notes.push(`more than ${MAX_PROTECTED} rejected lines: vanished entries cannot be told from rejected ones, nothing deactivated`);
        return false;
      }
      return true;
    };
    const applyContext = (previous: Date | undefined, deactivate: boolean, copied: Map<TableName, number>, p: Plan): ApplyContext => ({
      at: date,
      sourceFile: src.name,
      previous,
      deactivate,
      goodLines: splitter.good,
      copied: copied.get(p.entity.name) ?? 0,
    });
    const fileResult = (tables: Record<string, TableCounts>, forced: boolean): FileResult => ({
      file: src.label,
      kind: header.kind,
      encoding: reader.encoding ?? 'ASCII',
      extractionDate: date,
      sha256: reader.sha256(),
      lines,
      rejected,
      tables,
      applied: !o.dryRun,
      dryRun: o.dryRun === true,
      forced,
      notes,
      ldap: { action: 'none', keys: 0 },
    });

    const run = async (tx: Queryable): Promise<FileResult> => {
      const { forced, previous, plans } = await begin(tx, false);
      // A sync: the rows already in a table, as they are, are not staged (DigestGate). The
      // parser runs further ahead meanwhile: its rows wait while the digests are read.
      const gates = Object.fromEntries(plans.filter((p) => p.gate).map((p) => [p.entity.name, p.gate!]));
      // The splitter drops those rows itself from the moment each table's digests are in.
      for (const p of plans) void p.gate?.then((g) => (outs[p.entity.name]!.gate = g), () => {});
      const rows = ahead ? staged(ahead) : readAhead(rowChunks(), Object.keys(gates).length ? SYNC_READ_AHEAD_BYTES : READ_AHEAD_BYTES);
      const copied = await interleaveCopies(tx, ahead ? rows : gated(rows, gates), copySql(plans));
      await stageProtected(tx, keep);
      const deactivate = await loaded();
      const tables: Record<string, TableCounts> = {};
      for (const p of plans) {
        await o.onStep?.(`table:${p.entity.name}`, src.label);
        tables[p.entity.name] = await applyPlan(tx, p, applyContext(previous, deactivate, copied, p));
      }
      const result = fileResult(tables, forced);
      if (o.dryRun) {
        result.changes = await sampleChanges(tx, plans, o.sample ?? 10);
        throw new DryRunDone(result);
      }
      await o.onStep?.('applied', src.label);
      result.ldap = await feedDirectory(tx, header.kind, plans, tables);
      result.journalSeq = await journalFile(tx, o.journal!, o, src, result, plans);
      await recordFile(tx, result, o.actor);
      await o.onStep?.('journalled', src.label);
      return result;
    };

    /**
     * PGlite, a sync read ahead: the same work in steps (runs.ts) — staged and compared in
     * short transactions, frozen as a run, applied in batches, finished in one transaction.
     */
    const stepped = async (a: NonNullable<typeof ahead>, batch: number): Promise<FileResult> => {
      const db = o.db;
      const step: Step = (fn) => db.transaction(fn);
      try {
        const { forced, previous, plans } = await step((tx) => begin(tx, true));
        // Each COPY slice is a statement of its own: the platform's go between them.
        const copied = await interleaveCopies(db, staged(a), copySql(plans));
        await step((tx) => stageProtected(tx, keep));
        const deactivate = await loaded();
        const tables: Record<string, TableCounts> = {};
        for (const p of plans) {
          await o.onStep?.(`table:${p.entity.name}`, src.label);
          const c = applyContext(previous, deactivate, copied, p);
          const seen = await diffPlan(step, p, c, true);
          tables[p.entity.name] = tableCounts(p, c, await diffCounts(db, p, seen));
        }
        const result = fileResult(tables, forced);
        const finish: Finish = { actor: o.actor, name: src.name, journalBatch: o.journalBatch, result: { ...result, extractionDate: date.toISOString() } };
        const frozen = await freezeRun(step, header.kind, plans, { at: date, sourceFile: src.name, previous }, finish);
        await dropStaging(db, header.kind);
        return await finishRun(db, o.journal!, frozen, batch, (s) => o.onStep?.(s, src.label));
      } finally {
        // After a failure: the staging, and a run not frozen yet (nothing of it was applied).
        await dropStaging(db, header.kind).catch(() => {});
        await dropUnfrozen(db).catch(() => {});
      }
    };

    let result: FileResult;
    const batch = o.batch ?? DEFAULT_BATCH;
    try {
      result = ahead && !o.dryRun && batch > 0 ? await stepped(ahead, batch) : await o.db.transaction(run);
    } catch (e) {
      if (e instanceof DryRunDone) return e.result;
      throw e;
    } finally {
      progress.done();
    }
    if (result.ldap.action === 'rebuild') {
      if (o.ldap) {
        try {
          await o.ldap.rebuild(o.actor);
        } catch (e) {
          notes.push(`the LDAP directory could not be rebuilt (${(e as Error).message}): run \`mss annuaire rebuild-ldap\``);
        }
      } else notes.push('bulk load: the LDAP directory is rebuilt from the database by the platform (within seconds if it runs on this database, else at its next start)');
    }
    return result;
  } finally {
    stream.destroy();
  }
}

/**
 * After a file is applied: a table loaded in bulk asks for a rebuild of the directory when
 * it holds published entries (any national address; persons only matter through them),
 * else the changed keys are queued, in this transaction.
 */
async function feedDirectory(tx: Queryable, kind: FileKind, plans: Plan[], tables: Record<string, TableCounts>): Promise<FileResult['ldap']> {
  const bulk = plans.filter((p) => p.mode === 'direct' && tables[p.entity.name].inserted > 0);
  if (bulk.length) {
    const published = kind === 'mssante' || (await tx.query('SELECT 1 FROM annuaire_mss_addresses LIMIT 1')).rows.length > 0;
    if (published) {
      await requireLdapRebuild(tx);
      return { action: 'rebuild', keys: 0 };
    }
  }
  const keys = await ldapKeys(tx, kind);
  const n = await queueLdapChanges(tx, keys);
  return { action: n ? 'queued' : 'none', keys: n };
}

/** Records an applied file (the last write of its transaction). */
async function recordFile(tx: Queryable, r: FileResult, actor: string): Promise<void> {
  await tx.query(
    `INSERT INTO annuaire_import_files (kind, file_name, sha256, extraction_date, encoding, forced, lines, rejected, counts, actor, journal_seq)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)`,
    [r.kind, r.file, r.sha256, r.extractionDate, r.encoding, r.forced, r.lines, r.rejected, JSON.stringify(r.tables), actor, r.journalSeq],
  );
}

/** What a run's last step needs of its file (kept with the run: see runs.ts). */
interface Finish {
  actor: string;
  /** The file's name (the journal's subject). */
  name: string;
  journalBatch?: number;
  result: Omit<FileResult, 'extractionDate'> & { extractionDate: string };
}

/**
 * Applies a frozen run's remaining changes in batches, then, in one transaction, what the
 * file's single transaction ends with on the other path: the directory's queue, the
 * journal, the file's record — and the run is marked done, then deleted in slices.
 */
async function finishRun(db: Db, journal: ImportJournal, run: RunRecord<Finish>, batch: number, onStep?: (step: string) => Promise<void> | void): Promise<FileResult> {
  await applyRun(db, run, batch, onStep);
  await onStep?.('applied');
  const f = run.context.finish;
  const result: FileResult = { ...f.result, extractionDate: new Date(f.result.extractionDate) };
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [IMPORT_LOCK]);
    await changeListOfRun(tx, run.id);
    result.ldap = await feedDirectory(tx, run.kind, [], result.tables);
    result.journalSeq = await journalFile(tx, journal, f, { name: f.name, label: result.file }, result, []);
    await recordFile(tx, result, f.actor);
    await tx.query('UPDATE annuaire_import_runs SET done = true WHERE id = $1', [run.id]);
    await onStep?.('journalled');
  });
  await purgeRuns(db);
  return result;
}

/** Finishes the syncs a crash interrupted (runs.ts), oldest first. */
async function finishPending(db: Db, journal: ImportJournal | undefined, batch?: number): Promise<FileResult[]> {
  await dropUnfrozen(db);
  await purgeRuns(db);
  const runs = await pendingRuns<Finish>(db);
  if (runs.length && !journal) throw new MssError('ANNUAIRE_READ_FAILED', { file: runs[0].context.finish.result.file, reason: 'its import was interrupted and must be finished first (start the platform, or run an import)' });
  const out: FileResult[] = [];
  for (const run of runs) {
    const r = await finishRun(db, journal!, run, batch || DEFAULT_BATCH);
    r.notes = [...r.notes, 'applied after an interruption'];
    out.push(r);
  }
  return out;
}

/**
 * The platform, at start: finishes the syncs a crash interrupted on the embedded database
 * (a sync applied in steps: runs.ts), before the directory is fed.
 */
export function resumeImports(db: Db, journal: ImportJournal, batch?: number): Promise<FileResult[]> {
  return serialImports(() => finishPending(db, journal, batch));
}

/** Whole rows of one table, in COPY format. */
interface Chunk {
  table: TableName;
  data: Buffer;
}

/**
 * Loads the chunks, in the order they come, over the transaction's one connection: each run
 * of one table's chunks is one COPY statement (a table may get several; FREEZE allows that
 * within the transaction that truncated it). Returns the rows loaded per table.
 */
async function interleaveCopies(tx: Queryable, chunks: AsyncIterator<Chunk>, copySql: (t: TableName) => string): Promise<Map<TableName, number>> {
  const copied = new Map<TableName, number>();
  let head = await chunks.next();
  while (!head.done) {
    const table = head.value.table;
    async function* run(): AsyncGenerator<Buffer> {
      while (!head.done && head.value.table === table) {
        yield head.value.data;
        head = await chunks.next();
      }
    }
    copied.set(table, (copied.get(table) ?? 0) + (await tx.copyFrom!(copySql(table), run())));
  }
  return copied;
}

/**
 * The chunks without the rows the tables hold as they are (a sync: gateRows). Nothing
 * passes before every table's digests are in: until then they are being read on the
 * transaction's connection, which serves one statement at a time.
 */
async function* gated(src: AsyncGenerator<Chunk>, gates: Partial<Record<TableName, DigestGate | Promise<DigestGate>>>): AsyncGenerator<Chunk> {
  // Asked first: the parser (readAhead's) starts now, and reads on while the digests come.
  const first = src.next();
  first.catch(() => {}); // awaited below
  try {
    const ready = Object.fromEntries(await Promise.all(Object.entries(gates).map(async ([t, g]) => [t, await g] as const))) as Partial<Record<TableName, DigestGate>>;
    for (let r = await first; !r.done; r = await src.next()) {
      const g = ready[r.value.table];
      const data = g ? gateRows(r.value.data, g) : r.value.data;
      if (data.length) yield { table: r.value.table, data };
    }
  } finally {
    await src.return(undefined);
  }
}

/**
 * Runs the parser ahead of COPY, up to `maxBytes` of rows waiting. Pulled only when COPY
 * asks, the parser stood idle whenever PostgreSQL drained a table's COPY before the next
 * table's started — 30-odd times a file — and PostgreSQL idled while the parser caught up:
 * neither core was busy more than three quarters of the time. Both share the event loop,
 * one segment of the file at a time, so COPY's writes go out between two segments.
 */
async function* readAhead(src: AsyncGenerator<Chunk>, maxBytes: number): AsyncGenerator<Chunk> {
  const queue: Chunk[] = [];
  let bytes = 0;
  let done = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  const wake = (w: (() => void) | undefined) => w?.();
  const producer = (async () => {
    try {
      for (;;) {
        while (bytes >= maxBytes && !stopped) await new Promise<void>((r) => (wakeProducer = r));
        if (stopped) break;
        const r = await src.next();
        if (r.done) break;
        queue.push(r.value);
        bytes += r.value.data.length;
        wake(wakeConsumer);
        wakeConsumer = undefined;
      }
    } catch (error) {
      failure = { error };
    } finally {
      done = true;
      wake(wakeConsumer);
      wakeConsumer = undefined;
    }
  })();
  try {
    for (;;) {
      const c = queue.shift();
      if (c) {
        bytes -= c.data.length;
        wake(wakeProducer);
        wakeProducer = undefined;
        yield c;
      } else if (done) {
        if (failure) throw failure.error;
        return;
      } else await new Promise<void>((r) => (wakeConsumer = r));
    }
  } finally {
    // The consumer stopped (COPY failed) or finished: stop the parser and close the file.
    stopped = true;
    wake(wakeProducer);
    wakeProducer = undefined;
    await producer;
    await src.return(undefined);
  }
}

/**
 * Journalling an import. One event per changed entry would double the cost of a first
 * import (≈1.8 M entries for a 1 M-line activity file) and copy the whole directory into
 * the journal; the file alone is not enough either: the journal must say what changed.
 * So, per file:
 * - `annuaire.changes` events, each covering up to `journalBatch` changes of one table
 *   and one kind, in key order. Updated and deactivated entries — what an auditor chases
 *   (a box that vanished, a name that changed) — are listed key by key (`keys`, joined
 *   with "\n"). Inserted entries are committed to by `count`, `first`..`last` key and the
 *   SHA-256 of their keys joined with "\n" (`sha256`): each one is covered, verifiable
 *   against the tables (rows first_seen at this extraction) and the file, at a few hundred
 *   bytes per thousand entries instead of ~30 KB;
 * - then one `annuaire.import` event: file, its SHA-256, extraction date, counts, and the
 *   seq range of its change events — the file's hash ties the journal to the exact input.
 * All are written inside the import transaction: journal and data commit together.
 */
async function journalFile(tx: Queryable, journal: ImportJournal, o: Pick<ImportOptions, 'actor' | 'journalBatch'>, src: Pick<Source, 'name' | 'label'>, r: FileResult, plans: Plan[]): Promise<number> {
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let pending: Parameters<ImportJournal['appendManyIn']>[1] = [];
  const write = async () => {
    if (!pending.length) return;
    const done = await journal.appendManyIn(tx, pending);
    firstSeq ??= done[0].seq;
    lastSeq = done[done.length - 1].seq;
    pending = [];
  };
  for await (const b of changeBatches(tx, plans, o.journalBatch ?? 1000)) {
    pending.push({ type: 'annuaire.changes', actor: o.actor, subject: src.name, details: { file: src.label, table: b.table, change: b.kind, count: b.count, first: b.first, last: b.last, ...(b.keys !== undefined ? { keys: b.keys } : { sha256: b.sha256 }) } });
    if (pending.length >= EVENTS_PER_WRITE) await write();
  }
  await write();
  const ev = await journal.appendIn(tx, {
    type: 'annuaire.import',
    actor: o.actor,
    subject: src.name,
    details: {
      file: src.label,
      kind: r.kind,
      sha256: r.sha256,
      extractionDate: r.extractionDate.toISOString(),
      encoding: r.encoding,
      forced: r.forced,
      lines: r.lines,
      rejected: r.rejected,
      counts: r.tables,
      changeEvents: firstSeq === undefined ? null : { first: firstSeq, last: lastSeq },
      ldap: r.ldap,
    },
  });
  return ev.seq;
}

/** Pulls UTF-8 segments of whole lines from a byte stream, hashing the bytes as they pass. */
class FileReader {
  private decoder = new BlockDecoder();
  private queue: Segment[] = [];
  private at = 0;
  private ended = false;
  private hash = createHash('sha256');
  private it: AsyncIterator<Buffer>;
  bytes = 0;

  constructor(
    stream: Readable,
    private readonly label: string,
  ) {
    this.it = stream[Symbol.asyncIterator]();
  }

  get encoding(): Encoding | undefined {
    return this.decoder.encoding;
  }

  sha256(): string {
    return this.hash.copy().digest('hex');
  }

  /** The first line as text (the header); the rest stays queued. */
  async headerLine(): Promise<string | BadLine | undefined> {
    const seg = await this.next();
    if (seg === undefined || seg instanceof BadLine) return seg;
    const nl = seg.indexOf(0x0a);
    const end = nl > 0 && seg[nl - 1] === 0x0d ? nl - 1 : nl;
    if (nl + 1 < seg.length) this.queue[--this.at] = seg.subarray(nl + 1);
    return seg.toString('utf8', 0, end);
  }

  async next(): Promise<Segment | undefined> {
    while (this.at >= this.queue.length) {
      if (this.ended) return undefined;
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it.next();
      } catch (e) {
        throw new MssError('ANNUAIRE_READ_FAILED', { file: this.label, reason: (e as Error).message }, { cause: e });
      }
      this.at = 0;
      if (r.done) {
        this.ended = true;
        this.queue = this.decoder.end();
      } else {
        this.hash.update(r.value);
        this.bytes += r.value.length;
        this.queue = this.decoder.push(r.value);
      }
    }
    return this.queue[this.at++];
  }
}
