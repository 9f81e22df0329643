import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv } from '../helpers/pki.js';
import { seedPglite } from '../helpers/templates.js';

// `mss dmp` as an operator runs it (compiled), on the embedded database of a fresh data dir.
describe('mss dmp', { timeout: 600_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-dmp-cli-'));
  seedPglite(dataDir);
  let env: Record<string, string>;
  // Commands seal what they journal before exiting: the test PKI's TSA.
  beforeAll(async () => void (env = { MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(await testPki()) }));
  const mss = (...args: string[]) => runMss([...args, '--data-dir', dataDir], env);

  it('sets, lists and removes per-box rules; refuses unknown boxes and maskings; shows hand-offs', () => {
    expect(mss('bal', 'create', 'labo@mssante.localhost', '-t', 'APP', '-o', '12345678901234').code).toBe(0);
    expect(mss('dmp', 'rules').stdout).toBe('no DMP rule (mss dmp rule-set BAL)\n');
    expect(mss('dmp', 'rule-set', 'LABO@mssante.localhost', '--masking', 'masque-ps')).toMatchObject({ code: 0, stdout: 'rule set for labo@mssante.localhost: documents go to the DMP with masking "masque-ps"\n' });
    expect(mss('dmp', 'rules').stdout).toMatch(/^labo@mssante\.localhost {2}masking masque-ps {2}set by cli:\S+ on \d{4}-/);
    const unknown = mss('dmp', 'rule-set', 'nobody@mssante.localhost');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('there is no mailbox nobody@mssante.localhost at this operator');
    const bad = mss('dmp', 'rule-set', 'labo@mssante.localhost', '--masking', 'secret');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Allowed choices are normal, masque-ps, invisible-patient, invisible-representants-legaux/);
    expect(mss('dmp', 'rule-remove', 'labo@mssante.localhost')).toMatchObject({ code: 0, stdout: 'rule removed for labo@mssante.localhost\n' });
    expect(mss('dmp', 'rule-remove', 'labo@mssante.localhost')).toMatchObject({ code: 1, stdout: 'labo@mssante.localhost had no rule\n' });
    expect(mss('dmp', 'submissions').stdout).toBe('no hand-off yet\n');
    const journal = mss('journal', 'list', '--type', 'dmp.rule.set');
    expect(journal.stdout).toContain('labo@mssante.localhost');
    expect(mss('dmp', '--help').stdout).toMatch(/rule-set[\s\S]*rule-remove[\s\S]*rules[\s\S]*submissions/);
  });
});
