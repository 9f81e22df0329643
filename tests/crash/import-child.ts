// A process that imports extraction files into a PGlite data directory, one after the other,
// in steps of `batch` changes (annuaire/import/runs.ts) — and, when the import reaches the
// step named by MSS_TEST_STOP_AT in the last file, tells its parent and waits there to be killed.
//   node --import tsx tests/crash/import-child.ts <data-dir> <batch> <file>…
import { join } from 'node:path';
import { importFiles } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { migrate, openPglite } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';

const [dataDir, batch, ...files] = process.argv.slice(2);
const stopAt = process.env.MSS_TEST_STOP_AT;
const db = await openPglite(join(dataDir, 'db'));
await migrate(db);
const journal = new Journal(db);
const report = new RejectReport(join(dataDir, 'report.tsv'));
for (const file of files) {
  const out = await importFiles([file], {
    db: db.background(),
    journal,
    actor: 'test',
    report,
    batch: Number(batch),
    onStep: async (step) => {
      if (step !== stopAt || file !== files[files.length - 1]) return;
      process.send!({ at: step });
      await new Promise(() => {}); // until the parent's SIGKILL
    },
  });
  if (out.failures.length) throw out.failures[0].error;
}
report.close();
await db.close();
process.send!({ done: true });
