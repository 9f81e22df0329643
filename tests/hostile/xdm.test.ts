import { xdmCases } from './cases/xdm.js';
import { runCorpus } from './harness.js';
import { xdmCtx } from './xdm.js';

// The IHE_XDM / CDA corpus against the dmp readers: after each case the good package and
// the good CDA document still read back byte for byte.
runCorpus('XDM and CDA', xdmCases, async () => {
  const x = await xdmCtx();
  return { ctx: x, serves: () => x.serves(), nothingLost: () => x.nothingLost(), rss: () => process.memoryUsage().rss, stop: async () => {} };
});
