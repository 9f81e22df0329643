// Import and incremental sync against a real database (PGlite always; PostgreSQL too when
// MSS_TEST_DATABASE_URL is set), with files from the generator. Expected differences come
// from a small reference model of the generated lines, not from the importer.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TableCounts } from '../../annuaire/import/apply.js';
import { importFiles, type ImportOptions } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { openPglite, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { dbTargets } from '../helpers/db.js';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv } from '../helpers/pki.js';
import { activityLines, encodeFile, mssanteLines, type GenEncoding, type GenOptions } from '../helpers/rpps-generator.js';

const ACT = (d: string) => `PS_LibreAcces_Personne_activite_${d}0000.txt`;
const MSS = (d: string) => `Extraction_Correspondance_MSSante_${d}0000.txt`;

// --- reference model of a generated file --------------------------------------------------

type Model = Record<string, Map<string, string>>;

/** Entries per table as the generator meant them; lines in `skip` (injected bad ones) ignored. */
function model(kind: 'activity' | 'mssante', lines: string[], skip = new Set<number>()): Model {
  const header = lines[0].split('|');
  const col = (name: string) => header.indexOf(name);
  if (kind === 'mssante') {
    const addresses = new Map<string, string[]>();
    lines.slice(1).forEach((l, i) => {
      if (skip.has(i + 2)) return;
      const k = l.split('|')[col('Adresse BAL')].toLowerCase();
      addresses.set(k, [...(addresses.get(k) ?? []), l]);
    });
    return { addresses: new Map([...addresses].map(([k, v]) => [k, v.sort().join('\n')])) };
  }
  const m: Model = { persons: new Map(), structures: new Map(), activities: new Map() };
  const personCols = header.slice(0, 17);
  const structureCols = header.slice(19, 50);
  const keyCols = ['Identification nationale PP', 'Identifiant technique de la structure', 'Code profession', 'Code type savoir-faire', 'Code savoir-faire', 'Code mode exercice', 'Code rôle', 'Code genre activité'];
  // An activity's own content: what it is (profession, savoir-faire, mode, role…), not who or where.
  const activityCols = [...header.slice(9, 19), ...header.slice(50, 56)];
  lines.slice(1).forEach((l, i) => {
    if (skip.has(i + 2)) return;
    const f = l.split('|');
    const get = (c: string) => (col(c) >= 0 ? f[col(c)] : '');
    m.persons.set(get('Identification nationale PP'), personCols.map(get).join('|'));
    m.structures.set(get('Identifiant technique de la structure'), structureCols.map(get).join('|'));
    m.activities.set(keyCols.map(get).join('|'), activityCols.map(get).join('|'));
  });
  return m;
}

function diff(before: Model, after: Model): Record<string, Omit<TableCounts, 'merged' | 'seen'>> {
  const out: Record<string, Omit<TableCounts, 'merged' | 'seen'>> = {};
  for (const t of Object.keys(after)) {
    const b = before[t] ?? new Map();
    const a = after[t];
    const c = { inserted: 0, updated: 0, unchanged: 0, deactivated: 0 };
    for (const [k, v] of a) {
      if (!b.has(k)) c.inserted++;
      else if (b.get(k) === v) c.unchanged++;
      else c.updated++;
    }
    for (const k of b.keys()) if (!a.has(k)) c.deactivated++;
    out[t] = c;
  }
  return out;
}

const counts = (t: Record<string, TableCounts>) =>
  Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { inserted: v.inserted, updated: v.updated, unchanged: v.unchanged, deactivated: v.deactivated }]));

// --- generated files ---------------------------------------------------------------------

function generate(kind: 'activity' | 'mssante', o: GenOptions) {
  const bad = new Map<number, string>();
  const lines = [...(kind === 'activity' ? activityLines : mssanteLines)({ ...o, onBad: (n, why) => bad.set(n, why) })];
  return { lines, bad, model: model(kind, lines, new Set(bad.keys())) };
}

/** A ZIP of stored entries, written by the `zip` tool when present, else by hand. */
function zipFile(path: string, entries: Array<[name: string, data: Buffer]>) {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);
    head.writeUInt16LE(0x800, 6);
    head.writeUInt32LE(crc, 14);
    head.writeUInt32LE(data.length, 18);
    head.writeUInt32LE(data.length, 22);
    head.writeUInt16LE(n.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(n.length, 28);
    cd.writeUInt32LE(offset, 42);
    local.push(head, n, data);
    central.push(cd, n);
    offset += 30 + n.length + data.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(path, Buffer.concat([...local, ...central, end]));
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

// --- the suite ---------------------------------------------------------------------------

describe.each(dbTargets())('annuaire import on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let dir: string;
  let report: RejectReport;

  beforeEach(async () => {
    ({ db, dispose } = await target.open());
    dir = mkdtempSync(join(tmpdir(), 'mss-annuaire-'));
    report = new RejectReport(join(dir, 'report.tsv'));
  });
  afterEach(async () => {
    report.close();
    await dispose?.();
  });

  const write = (name: string, lines: string[], enc: GenEncoding = 'utf8') => {
    const p = join(dir, name);
    writeFileSync(p, encodeFile(lines, enc));
    return p;
  };
  const run = (paths: string[], o: Partial<ImportOptions> = {}) => importFiles(paths, { db, journal: new Journal(db), actor: 'test', report, ...o });
  const one = async (path: string, o: Partial<ImportOptions> = {}) => {
    const r = await run([path], o);
    if (r.failures.length) throw r.failures[0].error;
    return r.results[0];
  };
  /** Every national row, to prove a state unchanged. */
  const snapshot = async () => {
    const out: Record<string, unknown> = {};
    for (const t of ['annuaire_persons', 'annuaire_structures', 'annuaire_activities', 'annuaire_mss_addresses', 'annuaire_import_files', 'journal_events']) {
      // A failed file leaves one thing behind on purpose: the journal of its failure.
      const where = t === 'journal_events' ? ` WHERE type <> 'annuaire.import.failed'` : '';
      out[t] = (await db.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h FROM ${t} x${where}`)).rows[0];
    }
    return out;
  };
  const scalar = async <T>(sql: string, p: unknown[] = []) => Object.values((await db.query(sql, p)).rows[0])[0] as T;

  it('imports an extraction: every entry, accents kept, journalled with the file hash', async () => {
    const g = generate('activity', { lines: 600 });
    const path = write(ACT('20240101'), g.lines, 'win1252');
    const r = await one(path);
    expect(r.encoding).toBe('Windows-1252');
    expect(r.rejected).toBe(0);
    expect(counts(r.tables)).toEqual(diff({}, g.model));
    expect(await scalar<number>('SELECT count(*)::int FROM annuaire_persons WHERE active')).toBe(g.model.persons.size);
    const names = (await db.query<{ prenom: string; nom: string }>('SELECT DISTINCT prenom, nom FROM annuaire_persons')).rows;
    expect(names.map((n) => n.prenom)).toEqual(expect.arrayContaining(['Hélène', 'Françoise', 'Zoé', 'Noël', 'Bérénice', 'Ægir']));
    expect(names.map((n) => n.nom)).toEqual(expect.arrayContaining(['LEFÈVRE', 'GARÇON', 'BŒUF']));
    // One person on several lines: one row, several activities.
    const multi = await scalar<number>('SELECT count(*)::int FROM (SELECT idnps FROM annuaire_activities GROUP BY idnps HAVING count(*) > 1) x');
    expect(multi).toBeGreaterThan(0);
    const ev = (await db.query<{ details: any }>("SELECT details FROM journal_events WHERE type = 'annuaire.import'")).rows;
    expect(ev).toHaveLength(1);
    expect(ev[0].details.sha256).toBe(createHash('sha256').update(readFileSync(path)).digest('hex'));
    expect(ev[0].details.extractionDate).toBe('2024-01-01T00:00:00.000Z');
    const changed = await scalar<number>("SELECT coalesce(sum((details->>'count')::int), 0)::int FROM journal_events WHERE type = 'annuaire.changes'");
    expect(changed).toBe(g.model.persons.size + g.model.structures.size + g.model.activities.size);
  });

  it('journals a first import as pages of keys in key order, each with its count, range and digest', async () => {
    const act = generate('activity', { lines: 600, seed: 3 });
    const mss = generate('mssante', { lines: 300, seed: 3 });
    await one(write(ACT('20240101'), act.lines), { journalBatch: 37 });
    await one(write(MSS('20240101'), mss.lines), { journalBatch: 37 });
    const pages = (await db.query<{ details: any }>("SELECT details FROM journal_events WHERE type = 'annuaire.changes' ORDER BY seq")).rows.map((r) => r.details);
    for (const [table, keys] of Object.entries({ ...act.model, ...mss.model })) {
      const sorted = [...keys.keys()].filter((k) => k !== '').sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const expected = [];
      for (let i = 0; i < sorted.length; i += 37) {
        const page = sorted.slice(i, i + 37);
        expected.push({ table, change: 'inserted', count: page.length, first: page[0], last: page[page.length - 1], sha256: createHash('sha256').update(page.join('\n')).digest('hex') });
      }
      expect(expected.length, table).toBeGreaterThan(2);
      expect(pages.filter((p) => p.table === table).map(({ table, change, count, first, last, sha256 }) => ({ table, change, count, first, last, sha256 }))).toEqual(expected);
    }
  });

  it('applies next month as a difference: new, changed, deactivated with the date, unchanged', async () => {
    const base: GenOptions = { lines: 800, seed: 7 };
    const v1 = generate('activity', base);
    const v2 = generate('activity', { ...base, month: 1, changed: 0.08, added: 0.05, vanished: 0.04 });
    await one(write(ACT('20240101'), v1.lines));
    const r = await one(write(ACT('20240201'), v2.lines, 'utf8-bom'));
    const expected = diff(v1.model, v2.model);
    for (const t of ['persons', 'structures', 'activities']) {
      expect(expected[t].inserted + expected[t].updated + expected[t].deactivated, `the generator changes ${t}`).toBeGreaterThan(0);
    }
    expect(counts(r.tables)).toEqual(expected);
    const gone = [...v1.model.persons.keys()].filter((k) => !v2.model.persons.has(k));
    const rows = (await db.query<{ active: boolean; deactivated_at: Date }>('SELECT active, deactivated_at FROM annuaire_persons WHERE idnps = ANY($1)', [gone])).rows;
    expect(rows).toHaveLength(gone.length);
    for (const row of rows) {
      expect(row.active).toBe(false);
      expect(new Date(row.deactivated_at).toISOString()).toBe('2024-02-01T00:00:00.000Z');
    }
    // Unchanged entries were seen again (derived: they were not rewritten).
    const stale = await scalar<number>("SELECT count(*)::int FROM annuaire_persons WHERE active AND annuaire_last_seen('activity', active, last_seen) < '2024-02-01'");
    expect(stale).toBe(0);
    const rewritten = await scalar<number>("SELECT count(*)::int FROM annuaire_persons WHERE first_seen < '2024-02-01' AND last_seen = '2024-02-01'");
    expect(rewritten).toBe(expected.persons.updated);
    // A vanished one was last seen in the file before.
    expect(await scalar<string>("SELECT min(annuaire_last_seen('activity', active, last_seen))::date::text FROM annuaire_persons WHERE NOT active")).toBe('2024-01-01');
    const kinds = (await db.query<{ kind: string; n: number }>(
      "SELECT details->>'change' AS kind, sum((details->>'count')::int)::int AS n FROM journal_events WHERE type = 'annuaire.changes' AND subject = $1 GROUP BY 1",
      [ACT('20240201')],
    )).rows;
    const total = (k: string) => Object.values(expected).reduce((a, c) => a + (c as Record<string, number>)[k], 0);
    expect(Object.fromEntries(kinds.map((k) => [k.kind, k.n]))).toEqual({ inserted: total('inserted'), updated: total('updated'), deactivated: total('deactivated') });

    // Deactivations are listed key by key; insertions are committed to by a digest of their keys.
    const listed = (await db.query<{ keys: string }>("SELECT details->>'keys' AS keys FROM journal_events WHERE details->>'change' = 'deactivated' AND details->>'table' = 'persons'")).rows;
    expect(listed.flatMap((x) => x.keys.split('\n')).sort()).toEqual([...gone].sort());
    const ins = (await db.query<{ details: any }>("SELECT details FROM journal_events WHERE details->>'change' = 'inserted' AND details->>'table' = 'persons' AND subject = $1", [ACT('20240201')])).rows;
    const newKeys = [...v2.model.persons.keys()].filter((k) => !v1.model.persons.has(k)).sort();
    expect(ins).toHaveLength(1);
    expect(ins[0].details).toMatchObject({ count: newKeys.length, first: newKeys[0], last: newKeys[newKeys.length - 1], sha256: createHash('sha256').update(newKeys.join('\n')).digest('hex') });

    // The same file again: nothing changes, nothing is journalled but the import itself.
    const before = await scalar<number>("SELECT count(*)::int FROM journal_events WHERE type = 'annuaire.changes'");
    const again = await one(join(dir, ACT('20240201')));
    for (const t of Object.values(again.tables)) expect([t.inserted, t.updated, t.deactivated]).toEqual([0, 0, 0]);
    expect(await scalar<number>("SELECT count(*)::int FROM journal_events WHERE type = 'annuaire.changes'")).toBe(before);

    // A vanished entry that comes back is active again.
    const back = await one(write(ACT('20240301'), v1.lines));
    expect(back.tables.persons.updated).toBeGreaterThanOrEqual(gone.length);
    expect(await scalar<number>('SELECT count(*)::int FROM annuaire_persons WHERE idnps = ANY($1) AND active AND deactivated_at IS NULL', [gone])).toBe(gone.length);
  });

  it('rejects malformed lines into the report with file:line and reason, and imports the rest', async () => {
    const a = generate('activity', { lines: 400, malformed: 8 });
    const m = generate('mssante', { lines: 300, malformed: 8 });
    const pa = write(ACT('20240101'), a.lines);
    const pm = write(MSS('20240101'), m.lines, 'win1252');
    const out = await run([pa, pm]);
    expect(out.failures).toEqual([]);
    report.close();
    const text = readFileSync(report.path, 'utf8');
    const rejected = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(rejected).toHaveLength(16);
    const reasons: Record<string, RegExp> = {
      columns: /has \d+ fields, expected (56|31)/,
      rpps: /not 11 digits/,
      idnps: /is not the type "8" followed/,
      encoding: /bad encoding/,
      address: /BAL address .* invalid/,
      baltype: /unknown BAL type "XYZ"/,
    };
    for (const [path, g] of [[pa, a], [pm, m]] as const) {
      for (const [line, why] of g.bad) {
        const row = rejected.find((l) => l.startsWith(`${path}:${line}\t`));
        expect(row, `${path}:${line} (${why}) is reported`).toBeDefined();
        expect(row!.split('\t')[1]).toMatch(reasons[why]);
      }
    }
    expect(out.results.map((r) => r.rejected)).toEqual([8, 8]);
    expect(counts(out.results[0].tables)).toEqual(diff({}, a.model));
    expect(counts(out.results[1].tables)).toEqual(diff({}, m.model));
    // Ghost professionals of the bad lines are nowhere.
    expect(await scalar<number>("SELECT count(*)::int FROM annuaire_persons WHERE id_pp LIKE '109%' OR id_pp LIKE '09%'")).toBe(0);
  });

  it('does not deactivate an entry whose line is rejected this time', async () => {
    const v1 = generate('activity', { lines: 100 });
    await one(write(ACT('20240101'), v1.lines));
    const victim = v1.lines[5].split('|');
    const broken = [...v1.lines];
    broken[5] = victim.slice(0, 30).join('|'); // truncated: rejected, but its IDNPS is readable
    const r = await one(write(ACT('20240201'), broken));
    expect(r.rejected).toBe(1);
    expect(await scalar<boolean>('SELECT active FROM annuaire_persons WHERE idnps = $1', [victim[2]])).toBe(true);
  });

  it('keeps the accents of Windows-1252 and UTF-8-with-BOM files alike', async () => {
    const g = generate('mssante', { lines: 200 });
    const r1 = await one(write(MSS('20240101'), g.lines, 'win1252'));
    const r2 = await one(write(MSS('20240102'), g.lines, 'utf8-bom'));
    expect([r1.encoding, r2.encoding]).toEqual(['Windows-1252', 'UTF-8 with BOM']);
    // Same content in both encodings: the second import changes nothing.
    expect(counts(r2.tables).addresses).toEqual({ inserted: 0, updated: 0, unchanged: g.model.addresses.size, deactivated: 0 });
    const raisons = (await db.query<{ nom: string }>("SELECT DISTINCT nom FROM annuaire_mss_addresses WHERE bal_type = 'PER'")).rows.map((x) => x.nom);
    expect(raisons).toEqual(expect.arrayContaining(['LÉGER', 'NOËL', 'CHÂTEAU', 'BŒUF']));
  });

  it('merges an address listed on several lines, and resolves addresses case-insensitively', async () => {
    const g = generate('mssante', { lines: 400 });
    const r = await one(write(MSS('20240101'), g.lines));
    const lines = g.lines.length - 1;
    expect(lines - g.model.addresses.size).toBeGreaterThan(0);
    expect(r.tables.addresses.merged).toBe(lines - g.model.addresses.size);
    expect(r.tables.addresses.inserted).toBe(g.model.addresses.size);
    const some = [...g.model.addresses.keys()][3];
    expect(await scalar<number>('SELECT count(*)::int FROM annuaire_mss_addresses WHERE lower(address) = lower($1)', [some.toUpperCase()])).toBe(1);
    const org = await scalar<number>("SELECT count(*)::int FROM annuaire_mss_addresses WHERE bal_type = 'ORG' AND structure_id IS NOT NULL AND service IS NOT NULL");
    expect(org).toBeGreaterThan(0);
  });

  it('accepts the older 52-column activity file', async () => {
    const g = generate('activity', { lines: 120, columns: 52 });
    expect(g.lines[0].split('|')).toHaveLength(53);
    const r = await one(write(ACT('20220101'), g.lines));
    expect(r.rejected).toBe(0);
    expect(r.notes.join()).toMatch(/"Code rôle"/);
    expect(r.tables.activities.inserted).toBe(g.model.activities.size);
    expect(await scalar<number>('SELECT count(*)::int FROM annuaire_activities WHERE role_code IS NOT NULL')).toBe(0);
  });

  it('reads a ZIP as published, skipping the extractions it does not handle', async () => {
    const a = generate('activity', { lines: 150 });
    const m = generate('mssante', { lines: 100 });
    const zip = join(dir, 'PS_LibreAcces_202401010000.zip');
    zipFile(zip, [
      ['PS_LibreAcces_Personne_activite_202401010000.txt', encodeFile(a.lines)],
      ['Extraction_Correspondance_MSSante_202401010000.txt', encodeFile(m.lines, 'win1252')],
      ['PS_LibreAcces_SavoirFaire_202401010000.txt', Buffer.from("Type d'identifiant PP|Identifiant PP|Identification nationale PP|Nom d'exercice|\r\n")],
    ]);
    const out = await run([zip]);
    expect(out.failures).toEqual([]);
    expect(out.results.map((r) => r.kind)).toEqual(['activity', 'mssante']);
    expect(out.results[0].file).toBe(`${zip}!PS_LibreAcces_Personne_activite_202401010000.txt`);
    expect(out.skipped.join()).toMatch(/SavoirFaire/);
    expect(await scalar<number>('SELECT count(*)::int FROM annuaire_mss_addresses')).toBe(m.model.addresses.size);
  });

  it('refuses a ZIP with an entry escaping the directory, applying nothing from it', async () => {
    const a = generate('activity', { lines: 50 });
    const zip = join(dir, 'PS_LibreAcces_202401010000.zip');
    zipFile(zip, [
      ['PS_LibreAcces_Personne_activite_202401010000.txt', encodeFile(a.lines)],
      ['../evil.txt', Buffer.from('owned\n')],
    ]);
    const out = await run([zip]);
    expect(out.results).toEqual([]);
    expect(out.failures[0].error.code).toBe('ANNUAIRE_ZIP_REFUSED');
    expect(out.failures[0].error.message).toMatch(/"\.\.\/evil\.txt" climbs out/);
    expect(await scalar<number>('SELECT count(*)::int FROM annuaire_persons')).toBe(0);
  });

  it('leaves the previous state intact when the import fails midway', async () => {
    const v1 = generate('activity', { lines: 300 });
    const v2 = generate('activity', { lines: 300, month: 1, changed: 0.1, vanished: 0.1, added: 0.1 });
    await one(write(ACT('20240101'), v1.lines));
    const before = await snapshot();
    // Persons and structures are already applied when activities fail.
    const out = await run([write(ACT('20240201'), v2.lines)], {
      onStep: (step) => {
        if (step === 'table:activities') throw new Error('injected failure');
      },
    });
    expect(out.failures[0].error.message).toMatch(/injected failure/);
    expect(await snapshot()).toEqual(before);
    // And the same file then applies normally.
    const ok = await one(join(dir, ACT('20240201')));
    expect(counts(ok.tables)).toEqual(diff(v1.model, v2.model));
  });

  it('rolls a failed first import back completely, indexes included', async () => {
    const g = generate('activity', { lines: 200 });
    const indexes = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_indexes WHERE tablename LIKE 'annuaire_%'")).rows[0].n;
    const before = { state: await snapshot(), indexes: await indexes() };
    const out = await run([write(ACT('20240101'), g.lines)], {
      onStep: (step) => {
        if (step === 'applied') throw new Error('injected failure');
      },
    });
    expect(out.failures[0].error.message).toMatch(/injected failure/);
    expect({ state: await snapshot(), indexes: await indexes() }).toEqual(before);
  });

  it('dry run reports the exact difference and the first changes, and changes nothing', async () => {
    const v1 = generate('mssante', { lines: 300 });
    const v2 = generate('mssante', { lines: 300, month: 1, changed: 0.1, vanished: 0.05, added: 0.05 });
    await one(write(MSS('20240101'), v1.lines));
    const before = await snapshot();
    const r = await one(write(MSS('20240201'), v2.lines), { dryRun: true, sample: 2 });
    expect(r.dryRun).toBe(true);
    expect(counts(r.tables)).toEqual(diff(v1.model, v2.model));
    expect(r.changes!.filter((c) => c.kind === 'inserted')).toHaveLength(2);
    expect(r.changes!.find((c) => c.kind === 'deactivated')!.key).toSatisfy((k: string) => v1.model.addresses.has(k) && !v2.model.addresses.has(k));
    expect(await snapshot()).toEqual(before);
  });

  it('refuses an older extraction over a newer one unless forced', async () => {
    const g = generate('mssante', { lines: 50 });
    await one(write(MSS('20240301'), g.lines));
    const before = await snapshot();
    const out = await run([write(MSS('20240201'), g.lines)]);
    expect(out.failures[0].error.code).toBe('ANNUAIRE_OLDER_EXTRACTION');
    expect(out.failures[0].error.message).toMatch(/2024-02-01.*older than the 2024-03-01/);
    expect(await snapshot()).toEqual(before);
    const forced = await one(join(dir, MSS('20240201')), { force: true });
    expect(forced.forced).toBe(true);
    // Another kind of file keeps its own chronology.
    await one(write(ACT('20240101'), generate('activity', { lines: 20 }).lines));
  });
});

describe('mss annuaire import (the command)', () => {
  it('imports into the data directory, prints the summary and the report path, fails cleanly', async () => {
    // The command seals its journal events before it exits: the test PKI's TSA.
    const env = { MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(await testPki()) };
    const dir = mkdtempSync(join(tmpdir(), 'mss-annuaire-cli-'));
    const data = join(dir, 'data');
    mkdirSync(data);
    const file = join(dir, MSS('20240101'));
    writeFileSync(file, encodeFile([...mssanteLines({ lines: 40, malformed: 1 })]));
    const help = runMss(['annuaire', 'import', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--dry-run/);
    const r = runMss(['annuaire', 'import', '--no-progress', '-d', data, file], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/MSSanté extraction of 2024-01-01 00:00 UTC, UTF-8, applied/);
    expect(r.stdout).toMatch(/read 41 lines, rejected 1/);
    const reportPath = /report: (\S+)/.exec(r.stdout)![1];
    expect(reportPath.startsWith(join(data, 'reports'))).toBe(true);
    expect(readFileSync(reportPath, 'utf8')).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+\\thas 29 fields`));
    const missing = runMss(['annuaire', 'import', '--no-progress', '-d', data, join(dir, 'nope.txt')], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^mss: cannot read extraction file .*nope\.txt: no such file\n/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    // The failure is journalled with its report, and sealed before the command exited.
    const db = await openPglite(join(data, 'db'));
    try {
      const { rows } = await db.query<{ subject: string; details: Record<string, unknown> }>("SELECT subject, details FROM journal_events WHERE type = 'annuaire.import.failed'");
      expect(rows).toEqual([
        { subject: join(dir, 'nope.txt'), details: expect.objectContaining({ code: 'FILE_UNREADABLE', reason: expect.stringMatching(/no such file/), report: expect.stringMatching(new RegExp(`^${join(data, 'reports')}/annuaire-import-.*\\.tsv$`)) }) },
      ]);
      const { rows: seals } = await db.query<{ head: number; sealed: number }>('SELECT (SELECT seq FROM journal_head)::int AS head, (SELECT max(last_seq) FROM journal_seals)::int AS sealed');
      expect(seals[0].sealed).toBe(seals[0].head);
    } finally {
      await db.close();
    }
    // A dry run says, on every line it prints (progress included), that nothing is applied.
    const next = join(dir, MSS('20240201'));
    writeFileSync(next, encodeFile([...mssanteLines({ lines: 40, month: 1, changed: 0.2, vanished: 0.1, added: 0.1 })]));
    const dry = runMss(['annuaire', 'import', '--dry-run', '--sample', '2', '-d', data, next], env);
    expect(dry.code).toBe(0);
    const printed = (dry.stdout + dry.stderr).split('\n').filter(Boolean);
    expect(printed).toContainEqual(expect.stringMatching(/UTF-8, dry run, nothing applied$/));
    expect(printed).toContainEqual(expect.stringMatching(/^ {2}addresses {3}would insert \d+ {2}would update \d+ {2}unchanged \d+ {2}would deactivate \d+/));
    expect(printed).toContainEqual(expect.stringMatching(/0 rejected; computing the difference \(dry run: nothing is applied\)$/));
    expect(printed).toContainEqual('  first changes it would make:');
    for (const line of printed) expect(line).not.toMatch(/\bapplying\b|\b(inserted|updated|deactivated)\b|(?<!nothing )(?<!nothing is )applied/);
  });
});
