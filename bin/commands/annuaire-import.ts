import { userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { TableCounts } from '../../annuaire/import/apply.js';
import { parseCompactDate } from '../../annuaire/import/formats.js';
import { importFiles, type FileResult } from '../../annuaire/import/importer.js';
import { stderrProgress } from '../../annuaire/import/progress.js';
import { RejectReport, defaultReportName } from '../../annuaire/import/report.js';
import { action, configFrom, withConfigOptions, withJournal } from '../cli.js';

interface Opts {
  dryRun?: boolean;
  report?: string;
  force?: boolean;
  date?: Date;
  sample?: number;
  progress: boolean;
  config?: string;
  dataDir?: string;
}

const n = (x: number) => x.toLocaleString('en-US');

/** `mss annuaire …` is shared with the directory commands: join the group if it exists. */
function annuaireGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'annuaire') ?? program.command('annuaire').description('the national directory and the operator\'s mailboxes');
}

export function registerAnnuaireImport(program: Command) {
  withConfigOptions(
    annuaireGroup(program)
      .command('import')
      .description(
        'import or sync national extractions: PS_LibreAcces_Personne_activite_*.txt and Extraction_Correspondance_MSSante_*.txt, or a .zip of them. ' +
          'Each file is applied in one transaction: new entries inserted, changed ones updated, vanished ones deactivated. Rejected lines go to a report.',
      )
      .argument('<files...>', 'extraction files (.txt) or archives (.zip)')
      .option('-n, --dry-run', 'compute and print the difference, apply nothing')
      .option('-r, --report <file>', 'reject report (default: <dataDir>/reports/annuaire-import-<date>.tsv)')
      .option('-f, --force', 'apply an extraction older than the latest one imported')
      .option('--date <date>', 'extraction date of every file given, instead of the one in its name (needed when the name has none): AAAAMMJJ[hhmm] or 2024-03-01[T08:00]', (v) => {
        const d = parseCompactDate(v);
        if (!d) throw new InvalidArgumentError('expected AAAAMMJJ, AAAAMMJJhhmm or an ISO date such as 2024-03-01');
        return d;
      })
      .option('--sample <n>', 'dry run: changes listed per table and kind', (v) => {
        if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number');
        return Number(v);
      })
      .option('--no-progress', 'no progress display on stderr'),
  ).action(
    action(async (files: string[], opts: Opts) => {
      const c = configFrom(opts);
      const reportDir = isAbsolute(c.annuaire.import.reportDir) ? c.annuaire.import.reportDir : join(c.dataDir, c.annuaire.import.reportDir);
      const reportPath = opts.report ? resolve(opts.report) : join(reportDir, defaultReportName());
      const report = new RejectReport(reportPath);
      try {
        return await withJournal(opts, async (db, _c, journal) => {
          const outcome = await importFiles(files, {
            db,
            journal,
            actor: `cli:${userInfo().username}`,
            report,
            dryRun: opts.dryRun,
            force: opts.force,
            date: opts.date,
            sample: opts.sample ?? c.annuaire.import.dryRunSample,
            journalBatch: c.annuaire.import.journalBatch,
            zipLimits: { maxEntrySize: c.annuaire.import.maxZipEntrySize, maxEntries: 1000 },
            progress: opts.progress ? stderrProgress() : undefined,
          });
          for (const r of outcome.results) {
            const text = describe(r);
            process.stdout.write(text);
            report.note(text);
          }
          for (const s of outcome.skipped) process.stdout.write(`skipped ${s}\n`);
          for (const f of outcome.failures) {
            process.stderr.write(`mss: ${f.error.message}\n`);
            report.note(`FAILED ${f.error.message}`);
          }
          const rejected = outcome.results.reduce((a, r) => a + r.rejected, 0);
          process.stdout.write(`report: ${reportPath}${rejected ? ` (${n(rejected)} rejected line(s))` : ''}\n`);
          return outcome.failures.length ? 1 : 0;
        });
      } finally {
        report.close();
      }
    }),
  );
}

function describe(r: FileResult): string {
  const date = r.extractionDate.toISOString().slice(0, 16).replace('T', ' ');
  const state = r.dryRun ? 'dry run, nothing applied' : r.forced ? 'applied (forced over a newer extraction)' : 'applied';
  // A dry run speaks in the conditional: nothing of it reads as done.
  const [ins, upd, deact] = r.dryRun ? ['would insert', 'would update', 'would deactivate'] : ['inserted', 'updated', 'deactivated'];
  let out = `${r.file}\n  ${r.kind === 'activity' ? 'activity' : 'MSSanté'} extraction of ${date} UTC, ${r.encoding}, ${state}\n`;
  out += `  read ${n(r.lines)} lines, rejected ${n(r.rejected)}\n`;
  for (const [table, t] of Object.entries(r.tables) as Array<[string, TableCounts]>) {
    out += `  ${table.padEnd(11)} ${ins} ${n(t.inserted)}  ${upd} ${n(t.updated)}  unchanged ${n(t.unchanged)}  ${deact} ${n(t.deactivated)}`;
    out += t.merged ? `  (${n(t.merged)} repeated line(s) merged)\n` : '\n';
  }
  for (const note of r.notes) out += `  note: ${note}\n`;
  if (r.changes?.length) {
    out += `  first changes it would make:\n`; // listed by dry runs only
    const sign = { inserted: '+', updated: '~', deactivated: '-' } as const;
    for (const ch of r.changes) out += `    ${sign[ch.kind]} ${ch.table.padEnd(11)} ${ch.key}\n`;
  }
  return out;
}
