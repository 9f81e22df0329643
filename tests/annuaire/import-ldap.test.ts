// The import feeds the LDAP directory: a first import into a running directory rebuilds it
// (a bulk load is not fed key by key), the next month's files queue their changed keys in
// their transaction and the feeder applies them — after which `check` finds no difference
// between PostgreSQL and slapd, and a changed mailbox reads its new values over LDAP.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importFiles } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { pgliteTarget } from '../helpers/db.js';
import { activityLines, encodeFile, mssanteLines, type GenOptions } from '../helpers/rpps-generator.js';
import { ldapsearch, startTestDirectory, type TestDirectory } from '../helpers/slapd.js';

describe('annuaire import → LDAP directory (PGlite)', () => {
  let db: Db;
  let dispose: () => Promise<void>;
  let t: TestDirectory;
  let dir: string;
  let report: RejectReport;

  beforeAll(async () => {
    ({ db, dispose } = await pgliteTarget.open());
    // Started on an empty annuaire: the platform already runs when the first extraction comes.
    t = await startTestDirectory(db);
    dir = mkdtempSync(join(tmpdir(), 'mss-import-ldap-'));
    report = new RejectReport(join(dir, 'report.tsv'));
  });
  afterAll(async () => {
    report.close();
    await t?.stop();
    await dispose?.();
  });

  const files = (month: 0 | 1, date: string) => {
    const o: GenOptions = { lines: 500, seed: 5, month, changed: 0.1, vanished: 0.05, added: 0.05 };
    const act = join(dir, `PS_LibreAcces_Personne_activite_${date}0000.txt`);
    const mss = join(dir, `Extraction_Correspondance_MSSante_${date}0000.txt`);
    writeFileSync(act, encodeFile(activityLines(o)));
    writeFileSync(mss, encodeFile(mssanteLines(o)));
    return [act, mss];
  };
  const importAll = async (paths: string[]) => {
    const out = await importFiles(paths, { db, journal: new Journal(db), actor: 'test', report, ldap: t.dir });
    expect(out.failures).toEqual([]);
    return out.results;
  };
  const noDifference = async () => {
    const c = await t.dir.check();
    expect({ missing: c.missing, extra: c.extra, different: c.different, samples: c.samples }).toEqual({ missing: 0, extra: 0, different: 0, samples: [] });
    return c;
  };
  const lookup = async (address: string, attrs: string[] = []) => (await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mail=${address})`, ...attrs])).entries;

  it('first import: the directory is rebuilt, not fed key by key', async () => {
    const [r0a, r0m] = await importAll(files(0, '20240101'));
    // Persons alone publish nothing (no mailbox yet); the mailboxes are a bulk load.
    expect(r0a.ldap).toEqual({ action: 'none', keys: 0 });
    expect(r0m.ldap).toEqual({ action: 'rebuild', keys: 0 });
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_ldap_pending')).rows[0].n).toBe(0);
    const c = await noDifference();
    expect(c.database).toBeGreaterThan(500);
    const { rows } = await db.query<{ address: string }>("SELECT address FROM annuaire_mss_addresses WHERE bal_type = 'PER' ORDER BY address LIMIT 1");
    expect(await lookup(rows[0].address)).toHaveLength(1);
  });

  it('next month: changed, new and vanished keys are queued with the import, applied, and visible over LDAP', async () => {
    const [r1a, r1m] = await importAll(files(1, '20240201'));
    expect(r1m.ldap.action).toBe('queued');
    const a = r1m.tables.addresses;
    expect(a.updated + a.inserted + a.deactivated).toBeGreaterThan(0);
    // Each changed address, with its holder and structure.
    expect(r1m.ldap.keys).toBeGreaterThanOrEqual(a.updated + a.inserted + a.deactivated);
    // Renamed professionals holding a mailbox: their person entries (and boxes) are queued too.
    expect(r1a.ldap.action).toBe('queued');
    expect(r1a.ldap.keys).toBeGreaterThan(0);

    await t.dir.sync();
    const c = await noDifference();
    expect(c.pending).toBe(0);

    // A service renamed in the new file reads its new name.
    const changed = (await db.query<{ address: string; service: string }>(
      "SELECT address, service FROM annuaire_mss_addresses WHERE bal_type = 'ORG' AND active AND first_seen < '2024-02-01' AND last_seen = '2024-02-01' ORDER BY address LIMIT 1",
    )).rows[0];
    expect(changed.service).toMatch(/ et consultations$/);
    const e = await lookup(changed.address, ['ou']);
    expect(e).toHaveLength(1);
    expect(e[0].attrs.ou).toEqual([changed.service]);
    // A renamed professional: the mailbox's sn follows.
    const renamed = (await db.query<{ address: string; nom: string }>(
      "SELECT address, nom FROM annuaire_mss_addresses WHERE bal_type = 'PER' AND active AND first_seen < '2024-02-01' AND last_seen = '2024-02-01' AND nom LIKE '%-%' ORDER BY address LIMIT 1",
    )).rows[0];
    expect((await lookup(renamed.address, ['sn']))[0].attrs.sn).toEqual([renamed.nom]);
    // Vanished: gone from the directory; new: there.
    const gone = (await db.query<{ address: string }>("SELECT address FROM annuaire_mss_addresses WHERE NOT active ORDER BY address LIMIT 1")).rows[0];
    expect(await lookup(gone.address)).toHaveLength(0);
    const added = (await db.query<{ address: string }>("SELECT address FROM annuaire_mss_addresses WHERE first_seen = '2024-02-01' ORDER BY address LIMIT 1")).rows[0];
    expect(await lookup(added.address)).toHaveLength(1);
  });
});
