// The national extractions applied (annuaire_import_files, written by importer.ts), newest
// first per kind: what the console's dashboard shows as the last import and its report.
import { basename } from 'node:path';
import type { Queryable } from '../../core/db/index.js';

export interface AppliedImport {
  kind: 'activity' | 'mssante';
  file: string;
  extractionDate: Date;
  importedAt: Date;
  lines: number;
  rejected: number;
  /** Per table: what the file changed (inserted, updated, deactivated, …). */
  counts: Record<string, unknown>;
  actor: string;
  forced: boolean;
  journalSeq: number | null;
}

/** The last file applied of each kind, the most recent first. */
export async function lastImports(q: Queryable): Promise<AppliedImport[]> {
  const { rows } = await q.query<{ kind: AppliedImport['kind']; file_name: string; extraction_date: Date; imported_at: Date; lines: string | number; rejected: string | number; counts: Record<string, unknown> | string; actor: string; forced: boolean; journal_seq: string | number | null }>(
    `SELECT DISTINCT ON (kind) kind, file_name, extraction_date, imported_at, lines, rejected, counts, actor, forced, journal_seq
       FROM annuaire_import_files ORDER BY kind, id DESC`,
  );
  return rows
    .map((r) => ({
      kind: r.kind,
      // The name as published (it carries the date), not where the server kept it while importing.
      file: basename(r.file_name),
      extractionDate: new Date(r.extraction_date),
      importedAt: new Date(r.imported_at),
      lines: Number(r.lines),
      rejected: Number(r.rejected),
      counts: typeof r.counts === 'string' ? JSON.parse(r.counts) : r.counts,
      actor: r.actor,
      forced: r.forced,
      journalSeq: r.journal_seq === null ? null : Number(r.journal_seq),
    }))
    .sort((a, b) => b.importedAt.getTime() - a.importedAt.getTime());
}
