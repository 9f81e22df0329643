import { journalCases } from './cases/journal.js';
import { runCorpus } from './harness.js';
import { journalCtx } from './journal.js';

// The journal corpus with the real `mss` CLI, the platform stopped: each forgery on its own
// copy of the data directory; after each case the untouched directory still verifies,
// with every event it had. RSS: the peak of that `mss journal verify` process (the test
// process itself opens the embedded database to forge, which is not what is measured).
runCorpus('journal', journalCases, async () => {
  const x = await journalCtx();
  return { ctx: x, serves: () => x.serves(), nothingLost: () => x.nothingLost(), rss: () => x.rss(), stop: async () => {} };
});
