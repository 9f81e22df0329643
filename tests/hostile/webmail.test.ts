import { webmailCases } from './cases/webmail.js';
import { runCorpus } from './harness.js';
import { startHostileOperator } from './platform.js';
import { webmailCtx, webmailServes } from './webmail.js';

// The webmail API corpus against one whole platform: after each case jeanne still sends
// paul a message through the API; at the end every message it accepted is in paul's box.
runCorpus('webmail HTTP', webmailCases, async () => {
  const h = await startHostileOperator({ webmail: { maxUpload: 300_000 } });
  const x = await webmailCtx(h);
  return { ctx: x, serves: () => webmailServes(x), nothingLost: () => h.nothingLost(), rss: () => process.memoryUsage().rss, stop: () => h.stop() };
});
