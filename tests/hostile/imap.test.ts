import { imapCases } from './cases/imap.js';
import { runCorpus } from './harness.js';
import { imapCtx, imapServes } from './imap.js';
import { startHostileOperator } from './platform.js';

// The IMAP corpus against one whole platform: after each case jeanne still logs in through
// the proxy and appends a message; at the end every appended message is in her box.
runCorpus('IMAP', imapCases, async () => {
  const h = await startHostileOperator();
  const x = imapCtx(h);
  return { ctx: x, serves: () => imapServes(x), nothingLost: () => h.nothingLost(), rss: () => process.memoryUsage().rss, stop: () => h.stop() };
});
