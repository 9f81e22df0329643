import { submissionCases } from './cases/submission.js';
import { runCorpus } from './harness.js';
import { startHostileOperator } from './platform.js';
import { smtpCtx, submissionServes } from './smtp.js';

// The submission corpus against one whole platform: after each case jeanne still logs in
// and sends to paul; at the end every accepted message is in paul's box.
runCorpus('submission', submissionCases, async () => {
  const h = await startHostileOperator();
  const x = smtpCtx(h);
  return { ctx: x, serves: () => submissionServes(x), nothingLost: () => h.nothingLost(), rss: () => process.memoryUsage().rss, stop: () => h.stop() };
});
