import { importCases } from './cases/import.js';
import { runCorpus } from './harness.js';
import { importCtx } from './import.js';

// The extraction corpus against the importer on its own database: after each case a good
// extraction adding one more box still applies; at the end every box of every good file
// is in the annuaire, and none of a refused file's.
runCorpus('import files', importCases, async () => {
  const x = await importCtx();
  return { ctx: x, serves: () => x.serves(), nothingLost: () => x.nothingLost(), rss: () => process.memoryUsage().rss, stop: () => x.close() };
});
