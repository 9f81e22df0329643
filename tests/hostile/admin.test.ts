import { adminCases } from './cases/admin.js';
import { adminCtx, adminNothingLost, adminServes, revokedApplicationCertificate } from './admin.js';
import { runCorpus } from './harness.js';
import { startHostileOperator } from './platform.js';
import { testPki } from '../helpers/pki.js';

// The admin API corpus against one whole platform: after each case the national account
// still creates a mailbox; at the end every mailbox it created is there.
runCorpus('admin HTTP', adminCases, async () => {
  const revoked = await revokedApplicationCertificate(await testPki());
  const h = await startHostileOperator();
  const x = await adminCtx(h, revoked);
  return { ctx: x, serves: () => adminServes(x), nothingLost: () => adminNothingLost(x), rss: () => process.memoryUsage().rss, stop: () => h.stop() };
});
