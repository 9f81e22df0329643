import { whitelistCases } from './cases/whitelist.js';
import { runCorpus } from './harness.js';
import { whitelistCtx } from './whitelist.js';

// The liste blanche corpus against importWhitelist on its own database: after each case a
// newer list with one more domain still applies; at the end every domain the normal lists
// added is whitelisted, and none of a hostile list's.
runCorpus('whitelist XML', whitelistCases, async () => {
  const x = await whitelistCtx();
  return { ctx: x, serves: () => x.serves(), nothingLost: () => x.nothingLost(), rss: () => process.memoryUsage().rss, stop: () => x.close() };
});
