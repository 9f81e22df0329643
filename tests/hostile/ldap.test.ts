import { expect } from 'vitest';
import { ldapCases } from './cases/ldap.js';
import { procRss, runCorpus } from './harness.js';
import { ldapCtx, ldapServes } from './ldap.js';
import { startHostileOperator } from './platform.js';

// The LDAP corpus against the platform's own slapd: after each case anyone still finds
// jeanne's entry; at the end the directory still holds exactly what the database says
// (the platform's own check), as many entries as before the corpus. RSS: slapd's and the
// platform's, together.
runCorpus('LDAP', ldapCases, async () => {
  const h = await startHostileOperator();
  const x = ldapCtx(h);
  const dir = h.op.platform.directory!;
  const before = await dir.check();
  const slapd = () => h.op.platform.supervisor.status('slapd')[0]?.pid;
  return {
    ctx: x,
    serves: () => ldapServes(x),
    async nothingLost() {
      const after = await dir.check();
      expect({ ...after, samples: undefined }).toEqual({ ...before, samples: undefined });
      expect(after).toMatchObject({ missing: 0, extra: 0, different: 0 });
    },
    rss: () => process.memoryUsage().rss + procRss(slapd()),
    stop: () => h.stop(),
  };
});
