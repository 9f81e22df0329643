// National extractions sent to the admin API: the upload streamed to disk under a size cap,
// then the import (annuaire/import) — answered when done for a plain API call, or as a job
// whose progress the operator console reads as it runs (a stream of the job fed from memory,
// or GET …/jobs/:id), with its first rejected lines and the report to download at the end. Jobs live in this process's memory (the
// admin API is one process of the platform); what an import did is in the journal and the
// report file, which outlive them.
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Db } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { importFiles, type ImportJournal, type ImportOptions, type ImportOutcome } from '../import/importer.js';
import type { Progress } from '../import/progress.js';
import { RejectReport, defaultReportName, type RejectSink } from '../import/report.js';

export interface ExtractionDeps {
  db: Db;
  journal: ImportJournal;
  /** Where uploaded files wait while they are imported. */
  uploadDir: string;
  /** Where the reject reports are written. */
  reportDir: string;
  /** The largest upload accepted (annuaire.import.maxUploadSize). */
  maxBytes: number;
  log?: Logger;
  /** importFiles' onStep: tests hold an import at a step to see its progress there. */
  onStep?: ImportOptions['onStep'];
}

export interface ExtractionRequest {
  /** The file name as published (validated by the route: it carries the extraction date). */
  name: string;
  dryRun: boolean;
  force: boolean;
  actor: string;
}

/** Rejected lines kept in the job for the console; the report file has them all. */
const SHOWN_REJECTS = 100;
/** Finished jobs kept for their page; the oldest go first. */
const KEPT_JOBS = 50;

/**
 * Streams the body to `<uploadDir>/<random>/<name>`, refusing more than maxBytes: at once
 * when Content-Length says so, else when the count passes it (nothing of it is kept).
 */
export async function receiveUpload(deps: ExtractionDeps, body: unknown, name: string, declaredLength: number | undefined): Promise<{ file: string; dir: string; bytes: number }> {
  if (!body || typeof (body as Readable).pipe !== 'function') throw new MssError('BAD_REQUEST', { reason: 'the extraction file is the body (application/octet-stream, application/zip or text/plain), and it is missing' });
  const tooLarge = () => new MssError('HTTP_BODY_TOO_LARGE', { limit: deps.maxBytes });
  if (declaredLength !== undefined && declaredLength > deps.maxBytes) {
    (body as Readable).resume(); // read and dropped, so the refusal reaches the client
    throw tooLarge();
  }
  await mkdir(deps.uploadDir, { recursive: true, mode: 0o700 });
  const dir = join(deps.uploadDir, randomBytes(8).toString('hex'));
  await mkdir(dir, { mode: 0o700 });
  const file = join(dir, basename(name));
  let bytes = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(bytes > deps.maxBytes ? tooLarge() : null, chunk);
    },
  });
  try {
    await pipeline(body as Readable, cap, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { file, dir, bytes };
}

/** The report, and its first rejects kept for the console. */
class ShownReport implements RejectSink {
  readonly shown: Array<{ file: string; line: number; reason: string; text: string }> = [];
  constructor(private readonly inner: RejectReport) {}
  get path() {
    return this.inner.path;
  }
  get rejected() {
    return this.inner.rejected;
  }
  reject(file: string, line: number, reason: string, text: string) {
    this.inner.reject(file, line, reason, text);
    if (this.shown.length < SHOWN_REJECTS) this.shown.push({ file, line, reason, text: text.length > 300 ? text.slice(0, 300) + '…' : text });
  }
  note(text: string) {
    this.inner.note(text);
  }
  close() {
    this.inner.close();
  }
}

/** What the API answers for an import: the file is known by its name (shownAs); a path in a message is cut to it too. */
function answerOf(out: ImportOutcome, dir: string) {
  const strip = (s: string) => s.replaceAll(dir + '/', '');
  return {
    results: out.results,
    failures: out.failures.map((f) => ({ file: f.file, code: f.error.code, detail: strip(f.error.message) })),
    skipped: out.skipped.map(strip),
  };
}

/** Imports a received file with this report and progress; the upload's directory is removed after. */
async function importReceived(deps: ExtractionDeps, r: ExtractionRequest, up: { file: string; dir: string }, report: ShownReport, progress?: Progress) {
  try {
    const out = await importFiles([up.file], { db: deps.db.background(), journal: deps.journal, actor: r.actor, report, dryRun: r.dryRun, force: r.force, progress, onStep: deps.onStep, shownAs: r.name });
    return answerOf(out, up.dir);
  } finally {
    report.close();
    await rm(up.dir, { recursive: true, force: true });
  }
}

const reportPath = (deps: ExtractionDeps, id: string) => join(deps.reportDir, defaultReportName().replace(/\.tsv$/, `-${id.slice(0, 8)}.tsv`));

/** POST /imports/extractions: upload and import, the answer once both are done. */
export async function importUpload(deps: ExtractionDeps, r: ExtractionRequest, body: unknown, declaredLength: number | undefined) {
  const up = await receiveUpload(deps, body, r.name, declaredLength);
  const path = reportPath(deps, randomBytes(8).toString('hex'));
  const answer = await importReceived(deps, r, up, new ShownReport(new RejectReport(path)));
  return { report: path, ...answer };
}

export type JobState = 'running' | 'done' | 'failed';

export interface ExtractionJob {
  id: string;
  name: string;
  actor: string;
  dryRun: boolean;
  state: JobState;
  /** What the importer is doing: reading the file, then applying the difference. */
  phase: 'reading' | 'applying' | 'finished';
  startedAt: Date;
  finishedAt: Date | null;
  /** Bytes of the file read so far, of `total`. */
  bytes: number;
  total: number;
  lines: number;
  rejected: number;
  rejects: ShownReport['shown'];
  /** The import's answer, once done. */
  outcome: ReturnType<typeof answerOf> | null;
  /** Why the job failed (an error outside the import's own failures, e.g. the database). */
  error: { code: string; detail: string } | null;
  reportPath: string;
}

/** The jobs of this admin API: start one on a received upload, read it while it runs. */
export class ExtractionJobs {
  private readonly jobs = new Map<string, ExtractionJob>();
  private readonly watchers = new Map<string, Set<(j: ExtractionJob) => void>>();
  constructor(private readonly deps: ExtractionDeps) {}

  /**
   * Calls `fn` with the job at each step worth showing — each further percent of the file
   * read, the start of the apply, the end — from memory: on PGlite a first import holds the
   * one database connection for its whole transaction, and a watcher must not need it.
   * Returns the unsubscription.
   */
  watch(id: string, fn: (j: ExtractionJob) => void): () => void {
    const set = this.watchers.get(id) ?? new Set();
    this.watchers.set(id, set.add(fn));
    return () => void set.delete(fn);
  }

  private notify(job: ExtractionJob) {
    for (const fn of this.watchers.get(job.id) ?? []) fn(job);
    if (job.state !== 'running') this.watchers.delete(job.id);
  }

  /** Receives the upload, then starts its import and answers at once: the job to poll. */
  async start(r: ExtractionRequest, body: unknown, declaredLength: number | undefined): Promise<ExtractionJob> {
    const up = await receiveUpload(this.deps, body, r.name, declaredLength);
    const id = randomBytes(16).toString('hex');
    const job: ExtractionJob = {
      id,
      name: r.name,
      actor: r.actor,
      dryRun: r.dryRun,
      state: 'running',
      phase: 'reading',
      startedAt: new Date(),
      finishedAt: null,
      bytes: 0,
      total: up.bytes,
      lines: 0,
      rejected: 0,
      rejects: [],
      outcome: null,
      error: null,
      reportPath: reportPath(this.deps, id),
    };
    const report = new ShownReport(new RejectReport(job.reportPath));
    job.rejects = report.shown;
    // A ZIP's entries are read one after the other: the bar follows the entry being read.
    let shownPercent = -1;
    const progress: Progress = {
      start: (_label, total) => {
        job.total = total;
        job.bytes = 0;
        job.phase = 'reading';
      },
      update: (bytes, lines) => {
        job.bytes = bytes;
        job.lines = lines;
        job.rejected = report.rejected;
        const p = percentOf(job);
        if (p !== shownPercent) {
          shownPercent = p;
          this.notify(job);
        }
      },
      phase: () => {
        job.bytes = job.total;
        job.rejected = report.rejected;
        job.phase = 'applying';
        this.notify(job);
      },
      done() {},
    };
    this.keep(job);
    void (async () => {
      try {
        job.outcome = await importReceived(this.deps, r, up, report, progress);
        job.lines = job.outcome.results.reduce((s, x) => s + x.lines, 0);
        job.state = 'done';
      } catch (e) {
        // importFiles records each file's refusal itself; what reaches here is the platform's fault (the database gone).
        this.deps.log?.error({ err: e, job: id }, 'extraction import job failed');
        job.error = e instanceof MssError ? { code: e.code, detail: e.message } : { code: 'INTERNAL', detail: 'the import stopped on an internal error; see the platform log' };
        job.state = 'failed';
      } finally {
        job.rejected = report.rejected;
        job.phase = 'finished';
        job.finishedAt = new Date();
        this.notify(job);
      }
    })();
    return job;
  }

  get(id: string): ExtractionJob | undefined {
    return this.jobs.get(id);
  }

  private keep(job: ExtractionJob) {
    this.jobs.set(job.id, job);
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= KEPT_JOBS) break;
      if (j.state !== 'running') this.jobs.delete(id);
    }
  }
}

const percentOf = (j: ExtractionJob) => (j.total > 0 ? Math.min(100, Math.floor((j.bytes / j.total) * 100)) : 0);

/** A job as the API shows it. */
export function jobView(j: ExtractionJob) {
  const { reportPath: _path, ...rest } = j;
  return { ...rest, percent: percentOf(j) };
}
