// What the annuaire keeps of the national files and what it publishes, in the cases an
// outside tester found wrong: practice sites without a technical id (kept, keyed, stable
// across months, published with their name), an LDAP directory left behind by an import
// into a stopped platform (reconciled at the next start, and while running), and failed
// imports (journalled, with their reason and report).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVITY_HEADER, MSSANTE_HEADER } from '../../annuaire/import/formats.js';
import { ACTIVITY_KEY } from '../../annuaire/import/rows.js';
import { importFiles, type ImportOptions } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { siteKey, type SiteFields } from '../../annuaire/import/site-key.js';
import { requireLdapRebuild } from '../../annuaire/ldap/index.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { pgliteTarget } from '../helpers/db.js';
import { activityLines, encodeFile, mssanteLines } from '../helpers/rpps-generator.js';
import { ldapsearch, startTestDirectory, type TestDirectory } from '../helpers/slapd.js';

const ACT = (d: string) => `PS_LibreAcces_Personne_activite_${d}0000.txt`;
const MSS = (d: string) => `Extraction_Correspondance_MSSante_${d}0000.txt`;

/** A line of a file with some fields set by column name (activity lines keep their trailing `|`). */
function setFields(header: readonly string[], line: string, fields: Record<string, string>): string {
  const f = line.split('|');
  for (const [col, v] of Object.entries(fields)) {
    const i = header.indexOf(col);
    if (i < 0) throw new Error(`no column ${col}`);
    f[i] = v;
  }
  return f.join('|');
}
const blankSite = Object.fromEntries(ACTIVITY_HEADER.slice(19, 50).map((c) => [c, '']));
const site = (fields: Record<string, string>) => ({ ...blankSite, ...fields });

/** Three sites without technical id — one with a FINESS, one with a SIRET only, one with neither — and a line with no site at all. */
const SITES = {
  finess: site({
    'Numéro FINESS site': '750000001',
    'Raison sociale site': 'CENTRE DE SANTÉ DES LILAS',
    'Numéro Voie (coord. structure)': '12',
    'Libellé type de voie (coord. structure)': 'Rue',
    'Libellé Voie (coord. structure)': 'des Lilas',
    'Code postal (coord. structure)': '75019',
    'Libellé commune (coord. structure)': 'Paris',
    'Libellé pays (coord. structure)': 'France',
  }),
  siret: site({ 'Numéro SIRET site': '12345678900017', 'Numéro SIREN site': '123456789', 'Raison sociale site': 'CABINET INFIRMIER DU PORT', 'Code postal (coord. structure)': '29200', 'Libellé commune (coord. structure)': 'Brest' }),
  neither: site({
    'Raison sociale site': "Cabinet de l'Église",
    'Numéro Voie (coord. structure)': '3',
    'Libellé type de voie (coord. structure)': 'Place',
    'Libellé Voie (coord. structure)': "de l'Église",
    'Code postal (coord. structure)': '69002',
    'Libellé commune (coord. structure)': 'Lyon',
    'Téléphone (coord. structure)': '0478000000',
  }),
  none: site({}),
};

describe('site keys (site-key.ts)', () => {
  const f = (o: Partial<SiteFields>): SiteFields => ({ finessSite: '', siret: '', raisonSociale: '', enseigne: '', numeroVoie: '', indiceRepetition: '', typeVoie: '', voie: '', codePostal: '', commune: '', ...o });
  it('FINESS site, else SIRET site, else a digest of the normalised name and address; none for no site', () => {
    expect(siteKey(f({ finessSite: '750000001', siret: '12345678900017', raisonSociale: 'X' }))).toBe('1750000001');
    expect(siteKey(f({ siret: '12345678900017', raisonSociale: 'X' }))).toBe('312345678900017');
    const k = siteKey(f({ raisonSociale: "Cabinet de l'Église", voie: "de l'Église", codePostal: '69002', commune: 'Lyon' }))!;
    expect(k).toMatch(/^site:[0-9a-f]{24}$/);
    // Case, accents, punctuation and spacing do not make another site; another address does.
    expect(siteKey(f({ raisonSociale: ' CABINET  DE L EGLISE ', voie: 'DE L’EGLISE', codePostal: '69002', commune: 'LYON' }))).toBe(k);
    expect(siteKey(f({ raisonSociale: "Cabinet de l'Église", voie: "de l'Église", codePostal: '69003', commune: 'Lyon' }))).not.toBe(k);
    expect(siteKey(f({}))).toBeUndefined();
  });
});

describe('annuaire fidelity (PGlite, real slapd)', { timeout: 600_000 }, () => {
  let db: Db;
  let dispose: () => Promise<void>;
  let t: TestDirectory;
  let dir: string;
  let report: RejectReport;

  beforeAll(async () => {
    ({ db, dispose } = await pgliteTarget.open());
    t = await startTestDirectory(db);
    dir = mkdtempSync(join(tmpdir(), 'mss-fidelity-'));
    report = new RejectReport(join(dir, 'report.tsv'));
  });
  afterAll(async () => {
    report.close();
    await t?.stop();
    await dispose?.();
  });

  const run = (paths: string[], o: Partial<ImportOptions> = {}) => importFiles(paths, { db, journal: new Journal(db), actor: 'test', report, ...o });
  const base = [...activityLines({ lines: 40, seed: 11 })];
  /** The generated lines, the first four turned into the sites above (month 1 may change them). */
  const activityFile = (date: string, sites: Record<keyof typeof SITES, Record<string, string>>) => {
    const lines = [...base];
    (['finess', 'siret', 'neither', 'none'] as const).forEach((k, i) => (lines[i + 1] = setFields(ACTIVITY_HEADER, lines[i + 1], sites[k])));
    const path = join(dir, ACT(date));
    writeFileSync(path, encodeFile(lines));
    return { path, lines: lines.slice(1, 5) };
  };
  /** The structure of the activity of this line, found by the activity's key with `structure` as its site part. */
  const structureOfActivity = async (line: string, structure: string) => {
    const f = line.split('|');
    const key = ACTIVITY_KEY.map((c) => (c === 'Identifiant technique de la structure' ? structure : f[ACTIVITY_HEADER.indexOf(c)])).join('|');
    const { rows } = await db.query<{ structure_id: string | null }>('SELECT structure_id FROM annuaire_activities WHERE activity_key = $1 AND active', [key]);
    return rows.map((r) => r.structure_id);
  };
  const structureEntry = async (key: string) => (await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', `ou=structures,${t.base}`, `(mssStructureId=${key})`, 'o', 'l', 'postalCode', 'street'])).entries;

  it('keeps a practice site without technical id under a stable key, links its activities, and publishes its name', async () => {
    const a0 = activityFile('20240101', SITES);
    // An organisational box of the FINESS site whose row carries neither name nor address.
    const org = Object.fromEntries(MSSANTE_HEADER.map((c) => [c, '']));
    Object.assign(org, { 'Type de BAL': 'ORG', 'Adresse BAL': 'accueil@cds-lilas.mssante.fr', 'Type identifiant structure': '1', 'Identification Structure': '1750000001', 'Service de rattachement': 'Accueil', Dématérialisation: 'N' });
    const mss = join(dir, MSS('20240101'));
    writeFileSync(mss, encodeFile([...mssanteLines({ lines: 20, seed: 11 }), MSSANTE_HEADER.map((c) => org[c]).join('|')]));
    const out = await run([a0.path, mss], { ldap: t.dir });
    expect(out.failures).toEqual([]);

    const neitherKey = siteKey({ finessSite: '', siret: '', raisonSociale: "Cabinet de l'Église", enseigne: '', numeroVoie: '3', indiceRepetition: '', typeVoie: 'Place', voie: "de l'Église", codePostal: '69002', commune: 'Lyon' })!;
    const { rows } = await db.query<{ structure_id: string; raison_sociale: string; finess_site: string | null; siret: string | null }>(
      `SELECT structure_id, raison_sociale, finess_site, siret FROM annuaire_structures WHERE structure_id IN ('1750000001', '312345678900017', $1) ORDER BY structure_id`,
      [neitherKey],
    );
    expect(rows).toEqual([
      { structure_id: '1750000001', raison_sociale: 'CENTRE DE SANTÉ DES LILAS', finess_site: '750000001', siret: null },
      { structure_id: '312345678900017', raison_sociale: 'CABINET INFIRMIER DU PORT', finess_site: null, siret: '12345678900017' },
      { structure_id: neitherKey, raison_sociale: "Cabinet de l'Église", finess_site: null, siret: null },
    ]);
    // Each activity points at its site; the line without any site points at none.
    expect(await structureOfActivity(a0.lines[0], '1750000001')).toEqual(['1750000001']);
    expect(await structureOfActivity(a0.lines[1], '312345678900017')).toEqual(['312345678900017']);
    expect(await structureOfActivity(a0.lines[2], neitherKey)).toEqual([neitherKey]);
    expect(await structureOfActivity(a0.lines[3], '')).toEqual([null]);

    // Over LDAP: the structure the box names shows the site's name and address, not its bare id.
    const e = await structureEntry('1750000001');
    expect(e).toHaveLength(1);
    expect(e[0].attrs).toMatchObject({ o: ['CENTRE DE SANTÉ DES LILAS'], l: ['PARIS'], postalcode: ['75019'], street: ['12 Rue des Lilas'] });
    const c = await t.dir.check();
    expect({ missing: c.missing, extra: c.extra, different: c.different }).toEqual({ missing: 0, extra: 0, different: 0 });
  });

  it('next month the same sites keep their keys: updated in place, nothing deleted and re-created; the directory follows', async () => {
    const a1 = activityFile('20240201', {
      ...SITES,
      finess: { ...SITES.finess, 'Raison sociale site': 'CENTRE DE SANTÉ DES LILAS ET DU PRÉ' },
      neither: { ...SITES.neither, 'Téléphone (coord. structure)': '0478999999' },
    });
    const out = await run([a1.path], { ldap: t.dir });
    expect(out.failures).toEqual([]);
    const [r] = out.results;
    expect(r.tables.structures).toMatchObject({ inserted: 0, updated: 2, deactivated: 0 });
    expect(r.tables.activities).toMatchObject({ inserted: 0, updated: 0, deactivated: 0 });
    expect(r.ldap.action).toBe('queued');
    await t.dir.sync();
    expect((await structureEntry('1750000001'))[0].attrs.o).toEqual(['CENTRE DE SANTÉ DES LILAS ET DU PRÉ']);
    const c = await t.dir.check();
    expect({ missing: c.missing, extra: c.extra, different: c.different }).toEqual({ missing: 0, extra: 0, different: 0 });
  });
});

describe('LDAP directory reconciled with the database (PGlite, real slapd)', { timeout: 600_000 }, () => {
  let db: Db;
  let dispose: () => Promise<void>;
  let t: TestDirectory;
  let dir: string;
  let report: RejectReport;

  beforeAll(async () => {
    ({ db, dispose } = await pgliteTarget.open());
    t = await startTestDirectory(db);
    dir = mkdtempSync(join(tmpdir(), 'mss-reconcile-'));
    report = new RejectReport(join(dir, 'report.tsv'));
  });
  afterAll(async () => {
    report.close();
    await t?.stop();
    await dispose?.();
  });

  const reconciled = async () => (await db.query<{ details: { reason: string; generation: number } }>("SELECT details FROM journal_events WHERE type = 'annuaire.ldap.reconciled' ORDER BY seq")).rows.map((r) => r.details);

  it('an import while the platform is stopped is served at the next start (rebuilt, journalled)', async () => {
    await t.dir.stop();
    const mss = join(dir, MSS('20240101'));
    writeFileSync(mss, encodeFile(mssanteLines({ lines: 50, seed: 3 })));
    // As `mss annuaire import` runs it: no directory in its process.
    const out = await importFiles([mss], { db, journal: new Journal(db), actor: 'test', report });
    expect(out.results[0].ldap.action).toBe('rebuild');
    expect(out.results[0].notes).toContain('bulk load: the LDAP directory is rebuilt from the database by the platform (within seconds if it runs on this database, else at its next start)');
    await t.start();
    const c = await t.dir.check();
    expect({ missing: c.missing, extra: c.extra, different: c.different }).toEqual({ missing: 0, extra: 0, different: 0 });
    expect(c.database).toBeGreaterThan(50);
    expect(await reconciled()).toEqual([{ reason: 'the database is at generation 1, the directory was built from generation 0 (a bulk import it did not follow)', generation: 1, entries: c.database, ms: expect.any(Number) }]);
    // Started again with nothing new: no rebuild.
    await t.restart();
    expect(await reconciled()).toHaveLength(1);
  });

  it('a bulk change by another process while it runs is caught up at the next sync', async () => {
    // What an import by another process on a shared PostgreSQL leaves: rows changed, not queued, a rebuild required.
    const { rows } = await db.query<{ key: string }>(
      "UPDATE annuaire_mss_addresses SET nom = 'RENOMMÉ' WHERE lower(address) = (SELECT key FROM annuaire_ldap_bal WHERE bal_type = 'PER' ORDER BY key LIMIT 1) RETURNING lower(address) AS key",
    );
    await db.transaction((tx) => requireLdapRebuild(tx));
    await t.dir.sync();
    const e = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mail=${rows[0].key})`, 'sn']);
    expect(e.entries[0].attrs.sn).toEqual(['RENOMMÉ']);
    expect((await reconciled()).map((r) => r.generation)).toEqual([1, 2]);
  });
});

describe('failed imports are journalled (PGlite)', { timeout: 600_000 }, () => {
  let db: Db;
  let dispose: () => Promise<void>;
  let dir: string;
  let report: RejectReport;

  beforeAll(async () => {
    ({ db, dispose } = await pgliteTarget.open());
    dir = mkdtempSync(join(tmpdir(), 'mss-import-failed-'));
    report = new RejectReport(join(dir, 'report.tsv'));
  });
  afterAll(async () => {
    report.close();
    await dispose?.();
  });

  const failures = async () =>
    (await db.query<{ subject: string; actor: string; details: Record<string, unknown> }>("SELECT subject, actor, details FROM journal_events WHERE type = 'annuaire.import.failed' ORDER BY seq")).rows;
  const run = (paths: string[], o: Partial<ImportOptions> = {}) => importFiles(paths, { db, journal: new Journal(db), actor: 'cli:tester', report, ...o });

  it('unreadable file, wrong header, older extraction, an error midway, a failed dry run: one event each, with the file, the reason and the report', async () => {
    const missing = join(dir, MSS('20240301'));
    const wrong = join(dir, MSS('20240302'));
    writeFileSync(wrong, 'Nom|Prénom|Ville\r\nDUPONT|Jean|Paris\r\n');
    const good = join(dir, MSS('20240401'));
    writeFileSync(good, encodeFile(mssanteLines({ lines: 10, seed: 1 })));
    const older = join(dir, MSS('20240101'));
    writeFileSync(older, encodeFile(mssanteLines({ lines: 10, seed: 1 })));
    const next = join(dir, MSS('20240501'));
    writeFileSync(next, encodeFile(mssanteLines({ lines: 10, seed: 1, month: 1, changed: 0.2 })));

    expect((await run([missing, wrong])).failures.map((f) => f.error.code)).toEqual(['FILE_UNREADABLE', 'ANNUAIRE_UNKNOWN_FILE']);
    expect((await run([good])).failures).toEqual([]);
    expect((await run([older])).failures.map((f) => f.error.code)).toEqual(['ANNUAIRE_OLDER_EXTRACTION']);
    const midway = await run([next], { onStep: (step) => { if (step === 'table:addresses') throw new Error('disk full'); } });
    expect(midway.failures).toHaveLength(1);
    expect((await run([wrong], { dryRun: true })).failures).toHaveLength(1);

    const events = await failures();
    const path = report.path;
    expect(events).toEqual([
      { subject: missing, actor: 'cli:tester', details: { file: missing, code: 'FILE_UNREADABLE', reason: expect.stringMatching(/^cannot read extraction file .*: no such file/), report: path, dryRun: false } },
      { subject: wrong, actor: 'cli:tester', details: { file: wrong, code: 'ANNUAIRE_UNKNOWN_FILE', reason: expect.stringContaining('is not an extraction this importer reads'), report: path, dryRun: false } },
      { subject: older, actor: 'cli:tester', details: { file: older, code: 'ANNUAIRE_OLDER_EXTRACTION', reason: expect.stringMatching(/older than the 2024-04-01 one already imported; nothing applied/), report: path, dryRun: false } },
      { subject: next, actor: 'cli:tester', details: { file: next, code: 'ANNUAIRE_READ_FAILED', reason: expect.stringContaining('disk full'), report: path, dryRun: false } },
      { subject: wrong, actor: 'cli:tester', details: { file: wrong, code: 'ANNUAIRE_UNKNOWN_FILE', reason: expect.any(String), report: path, dryRun: true } },
    ]);
    // The failed file left nothing else behind: its own events rolled back with it.
    expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM journal_events WHERE type = 'annuaire.import' AND subject = $1", [MSS('20240501')])).rows[0].n).toBe(0);
  });
});
