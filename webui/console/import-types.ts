// The admin API's import answers, as the console reads them (annuaire/admin/api.ts's import
// routes and annuaire/admin/extraction-jobs.ts are the reference). Types only.

/** POST /api/v1/imports/whitelist (a preview with dryRun=true, or the list applied). */
export interface WhitelistPreview {
  generatedAt: string;
  sha256: string;
  /** SHA-256 of the list in place it was compared with; null: none yet. */
  base: string | null;
  dryRun: boolean;
  domains: number;
  added: string[];
  removed: string[];
  changed: string[];
  changes: Array<{ domain: string; fields: Array<{ field: string; before: string | null; after: string | null }> }>;
  rejected: Array<{ name: string; reason: string }>;
  unchanged: boolean;
}

export interface TableCounts {
  seen: number;
  inserted: number;
  updated: number;
  unchanged: number;
  deactivated: number;
  merged: number;
}

/** One line of POST /api/v1/imports/extractions/jobs's stream, or GET …/jobs/{id}. */
export interface ExtractionJob {
  id: string;
  name: string;
  actor: string;
  dryRun: boolean;
  state: 'running' | 'done' | 'failed';
  phase: 'reading' | 'applying' | 'finished';
  startedAt: string;
  finishedAt: string | null;
  bytes: number;
  total: number;
  percent: number;
  lines: number;
  rejected: number;
  rejects: Array<{ file: string; line: number; reason: string; text: string }>;
  outcome: {
    results: Array<{ file: string; kind: 'activity' | 'mssante'; extractionDate: string; lines: number; rejected: number; applied: boolean; dryRun: boolean; forced: boolean; tables: Record<string, TableCounts>; journalSeq?: number }>;
    failures: Array<{ file: string; code: string; detail: string }>;
    skipped: string[];
  } | null;
  error: { code: string; detail: string } | null;
}
