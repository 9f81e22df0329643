import { mxCases } from './cases/mx.js';
import { runCorpus } from './harness.js';
import { startHostileOperator } from './platform.js';
import { mxServes, smtpCtx } from './smtp.js';

// The MX corpus against one whole platform: after each case a normal message from the peer
// operator is accepted on the same MX; at the end every accepted message is in Dovecot.
runCorpus('MX', mxCases, async () => {
  const h = await startHostileOperator({}, { lists: 101 });
  const x = smtpCtx(h);
  return { ctx: x, serves: () => mxServes(x), nothingLost: () => h.nothingLost(), rss: () => process.memoryUsage().rss, stop: () => h.stop() };
});
