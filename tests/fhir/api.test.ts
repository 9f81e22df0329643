// The FHIR annuaire API (annuaire/fhir) on its real HTTPS listener with mutual TLS, over a
// real annuaire import (generated national extractions, the importer), plus local mailboxes
// made with annuaire/bal, on PGlite and on PostgreSQL when one is given. Every answer is validated against the FHIR R4 JSON schema and the
// ANS profile rules (helpers.ts); expected result sets are computed from the annuaire's own
// tables, not from the views the API reads.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBal } from '../../annuaire/bal/index.js';
import { balFactSource } from '../../annuaire/bal/index.js';
import { ID_SYSTEM } from '../../annuaire/fhir/codes.js';
import { createFhirServer } from '../../annuaire/fhir/server.js';
import { importFiles } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { Policy } from '../../core/policy/index.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { activityLines, encodeFile, mssanteLines } from '../helpers/rpps-generator.js';
import { fhirGet, profileViolations, schemaErrors, type ClientCert, type Reply } from './helpers.js';

const DOMAIN = 'mssante.localhost';
const fold = (s: string) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();

describe.each(dbTargets())('FHIR annuaire API on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let pki: TestPki;
  let ca: string;
  let app: Awaited<ReturnType<typeof createFhirServer>>;
  let base: string;
  let journal: Journal;
  let client: ClientCert;
  /** Liste rouge: a professional whose only mailbox is on it; a national ORG box on it; a local PER box on it. */
  const red: { holder: string; addresses: string[] } = { holder: '', addresses: [] };

  const get = (path: string, o: { client?: ClientCert | null; method?: string; headers?: Record<string, string> } = {}) =>
    fhirGet(path.startsWith('https:') ? path : `${base}${path}`, ca, o.client === undefined ? client : o.client, o);

  /** A 200 FHIR answer, schema-valid, every resource in it conforming to its profile rules. */
  const ok = async (path: string): Promise<any> => {
    const r = await get(path);
    expect(r.status, `${path}: ${r.text.slice(0, 300)}`).toBe(200);
    expect(r.type).toBe('application/fhir+json; charset=utf-8');
    expect(schemaErrors(r.body), path).toEqual([]);
    const resources = r.body.resourceType === 'Bundle' ? (r.body.entry ?? []).map((e: any) => e.resource) : [r.body];
    for (const res of resources) if (res.resourceType !== 'CapabilityStatement') expect(profileViolations(res), `${path} ${res.resourceType}/${res.id}`).toEqual([]);
    for (const a of red.addresses) expect(r.text.toLowerCase()).not.toContain(a.toLowerCase());
    if (red.holder) expect(r.text).not.toContain(`"Practitioner/${red.holder}"`);
    return r.body;
  };

  /** A refusal: the status, an OperationOutcome that validates, the catalogue code. */
  const refused = async (r: Reply, status: number, code: string) => {
    expect(r.status, r.text.slice(0, 300)).toBe(status);
    expect(r.type).toBe('application/fhir+json; charset=utf-8');
    expect(r.body.resourceType).toBe('OperationOutcome');
    expect(schemaErrors(r.body)).toEqual([]);
    expect(r.body.issue[0].details.coding[0].code).toBe(code);
    expect(r.body.issue[0].details.text.length).toBeGreaterThan(10);
    return r.body;
  };

  const ids = (b: any, mode = 'match') => (b.entry ?? []).filter((e: any) => e.search.mode === mode).map((e: any) => e.resource.id);

  /** Every page of a search, following next links. */
  async function walk(path: string): Promise<{ ids: string[]; pages: any[] }> {
    const pages: any[] = [];
    let url: string | undefined = path;
    while (url) {
      const b = await ok(url);
      pages.push(b);
      url = b.link.find((l: any) => l.relation === 'next')?.url;
      expect(pages.length).toBeLessThan(500);
    }
    return { ids: pages.flatMap((p) => ids(p)), pages };
  }

  /** The professionals the API must serve, from the tables themselves: active, holding an active box off the liste rouge. */
  async function expectedPractitioners(): Promise<Map<string, { nom: string; prenom: string }>> {
    const { rows } = await db.query<{ idnps: string; nom: string; prenom: string }>(
      `SELECT p.idnps, p.nom, p.prenom FROM annuaire_persons p WHERE p.active AND (
         p.idnps IN (SELECT idnps FROM annuaire_mss_addresses WHERE active AND NOT liste_rouge AND bal_type IN ('PER','CAB') AND idnps IS NOT NULL)
         OR p.idnps IN (SELECT owner_id FROM bal_mailboxes WHERE status = 'active' AND NOT liste_rouge AND type IN ('PER','CAB')))`,
    );
    return new Map(rows.map((r) => [r.idnps, r]));
  }

  beforeAll(async () => {
    pki = await testPki();
    ca = readFileSync(pki.paths.chain, 'utf8');
    client = { cert: readFileSync(pki.paths.leaves.application.cert, 'utf8'), key: readFileSync(pki.paths.leaves.application.key, 'utf8') };
    ({ db, dispose } = await target.open());
    journal = new Journal(db);

    // A real import of generated national extractions (same seed: the boxes' holders are the file's professionals).
    const dir = mkdtempSync(join(tmpdir(), 'mss-fhir-'));
    const act = join(dir, 'PS_LibreAcces_Personne_activite_202601010000.txt');
    const mss = join(dir, 'Extraction_Correspondance_MSSante_202601010000.txt');
    writeFileSync(act, encodeFile(activityLines({ lines: 400, seed: 9 })));
    writeFileSync(mss, encodeFile(mssanteLines({ lines: 250, seed: 9 })));
    const report = new RejectReport(join(dir, 'report.tsv'));
    const out = await importFiles([act, mss], { db, journal, actor: 'test', report });
    report.close();
    expect(out.failures).toEqual([]);

    // Liste rouge. (1) A national PER box whose holder has no other box: the holder goes too.
    const { rows: lone } = await db.query<{ address: string; idnps: string }>(
      `SELECT a.address, a.idnps FROM annuaire_mss_addresses a WHERE a.bal_type = 'PER'
         AND (SELECT count(*) FROM annuaire_mss_addresses b WHERE b.idnps = a.idnps) = 1
         AND EXISTS (SELECT 1 FROM annuaire_activities x WHERE x.idnps = a.idnps) ORDER BY a.address LIMIT 1`,
    );
    await db.query('UPDATE annuaire_mss_addresses SET liste_rouge = true WHERE address = $1', [lone[0].address]);
    red.holder = lone[0].idnps;
    red.addresses.push(lone[0].address);
    // (2) A national ORG box.
    const { rows: org } = await db.query<{ address: string }>("SELECT address FROM annuaire_mss_addresses WHERE bal_type = 'ORG' ORDER BY address LIMIT 1");
    await db.query('UPDATE annuaire_mss_addresses SET liste_rouge = true WHERE address = $1', [org[0].address]);
    red.addresses.push(org[0].address);
    // (3) Local boxes of this operator: one on the liste rouge (for a served professional), one public CAB box.
    const { rows: served } = await db.query<{ idnps: string }>("SELECT idnps FROM annuaire_mss_addresses WHERE bal_type = 'PER' AND NOT liste_rouge ORDER BY address LIMIT 1 OFFSET 3");
    const ctx = { db, journal, domains: [DOMAIN] };
    await createBal(ctx, { address: `cache.rouge@${DOMAIN}`, type: 'PER', owner: served[0].idnps, listeRouge: true }, 'test');
    await createBal(ctx, { address: `cabinet.public@${DOMAIN}`, type: 'CAB', owner: served[0].idnps }, 'test');
    red.addresses.push(`cache.rouge@${DOMAIN}`);

    const material = loadTlsMaterial({ tls: { certFile: pki.file('server.pem'), keyFile: pki.file('server.key'), chainFile: pki.file('intermediate.pem'), caFile: pki.paths.chain, crlFile: pki.file('crl.pem') } });
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: [DOMAIN] });
    app = createFhirServer({ db, policy, tls: material, baseUrl: () => base }, serverTlsOptions(material), silentLogger);
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}/fhir/r4`;
  });

  afterAll(async () => {
    await app?.close();
    await dispose?.();
  });

  it('serves its CapabilityStatement, listing every search parameter it takes', async () => {
    const cs = await ok('/metadata');
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    const practitioner = cs.rest[0].resource.find((r: any) => r.type === 'Practitioner');
    expect(practitioner.searchParam.map((p: any) => p.name)).toEqual(expect.arrayContaining(['identifier', 'family', 'given', 'name', 'mailbox-mss', 'mailbox-mss-type', 'telecom', 'address-city']));
    expect(cs.rest[0].resource.find((r: any) => r.type === 'PractitionerRole').searchInclude).toEqual(['PractitionerRole:practitioner', 'PractitionerRole:organization']);
  });

  it('pages through every Practitioner: no duplicate, no gap, the total right, and back again by previous links', async () => {
    const expected = await expectedPractitioners();
    expect(expected.size).toBeGreaterThan(100);
    expect(expected.has(red.holder)).toBe(false);
    const { ids: seen, pages } = await walk('/Practitioner?_count=17&_total=accurate');
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...expected.keys()].sort());
    expect(pages[0].total).toBe(expected.size);
    expect(pages.length).toBe(Math.ceil(expected.size / 17));
    // Backwards from the last page: the same pages, in reverse order.
    const back: string[][] = [];
    let url: string | undefined = pages.at(-1).link.find((l: any) => l.relation === 'self').url;
    while (url) {
      const b = await ok(url);
      back.unshift(ids(b));
      url = b.link.find((l: any) => l.relation === 'previous')?.url;
      expect(back.length).toBeLessThan(500);
    }
    expect(back).toEqual(pages.map((p) => ids(p)));
    // Above the cap the page is the cap, and the self link says so.
    const capped = await ok('/Practitioner?_count=5000');
    expect(capped.entry).toHaveLength(100);
    expect(capped.link[0].url).toContain('_count=100');
  });

  it('finds practitioners by family and given name (start, any case, any accent; :exact, :contains)', async () => {
    const expected = await expectedPractitioners();
    const want = (f: (p: { nom: string; prenom: string }) => boolean) => [...expected].filter(([, p]) => f(p)).map(([k]) => k).sort();
    const lefevre = (await walk('/Practitioner?family=lefevre&_count=50')).ids.sort();
    expect(lefevre).toEqual(want((p) => fold(p.nom).startsWith('lefevre')));
    expect(lefevre.length).toBeGreaterThan(0);
    expect((await walk('/Practitioner?family:exact=LEF%C3%88VRE')).ids.sort()).toEqual(want((p) => p.nom === 'LEFÈVRE'));
    expect((await walk('/Practitioner?family:exact=lefevre')).ids).toEqual([]);
    expect((await walk('/Practitioner?given:contains=LOE&_count=100')).ids.sort()).toEqual(want((p) => fold(p.prenom).includes('loe')));
    // Repeated = AND, comma = OR.
    expect((await walk('/Practitioner?family=martin&given=helene')).ids.sort()).toEqual(want((p) => fold(p.nom).startsWith('martin') && fold(p.prenom).startsWith('helene')));
    expect((await walk('/Practitioner?family=martin,moreau&_count=100')).ids.sort()).toEqual(want((p) => /^(martin|moreau)/.test(fold(p.nom))));
    expect((await walk('/Practitioner?name=zoe&_count=100')).ids.sort()).toEqual(want((p) => fold(p.nom).startsWith('zoe') || fold(p.prenom).startsWith('zoe')));
  });

  it('finds a practitioner by identifier (IDNPS, RPPS, bare), mailbox address, telecom, mailbox type and city', async () => {
    const { rows } = await db.query<{ idnps: string; id_pp: string; address: string; city: string }>(
      `SELECT p.idnps, p.id_pp, a.address, a.ligne_acheminement AS city FROM annuaire_persons p JOIN annuaire_mss_addresses a ON a.idnps = p.idnps AND NOT a.liste_rouge ORDER BY a.address LIMIT 1 OFFSET 5`,
    );
    const p = rows[0];
    for (const q of [`identifier=${ID_SYSTEM.idnps}|${p.idnps}`, `identifier=${ID_SYSTEM.rpps}|${p.id_pp}`, `identifier=${p.id_pp}`, `identifier=${p.idnps}`, `mailbox-mss:exact=${p.address.toUpperCase()}`, `telecom=email|${p.address}`, `mailbox-mss=${p.address.slice(0, -3)}`]) {
      const b = await ok(`/Practitioner?${q.replace(/\|/g, '%7C')}`);
      expect(ids(b), q).toEqual([p.idnps]);
      expect(b.entry[0].resource.telecom.map((t: any) => t.value)).toContain(p.address);
    }
    expect(ids(await ok(`/Practitioner?identifier=${encodeURIComponent('https://finess.esante.gouv.fr|' + p.id_pp)}`))).toEqual([]);
    // A local CAB box: its holder is found by type; PER/CAB are a practitioner's types.
    const cab = await ok('/Practitioner?mailbox-mss-type=CAB');
    expect(cab.entry).toHaveLength(1);
    expect(cab.entry[0].resource.telecom.map((t: any) => t.value)).toContain(`cabinet.public@${DOMAIN}`);
    expect(ids(await ok('/Practitioner?mailbox-mss-type=ORG'))).toEqual([]);
    // City: the professionals holding a box in a town (address lines of the extraction).
    const { rows: inTown } = await db.query<{ idnps: string }>(
      "SELECT DISTINCT idnps FROM annuaire_mss_addresses WHERE active AND NOT liste_rouge AND bal_type = 'PER' AND ligne_acheminement LIKE '% SAINT-%TIENNE' ORDER BY idnps",
    );
    expect(inTown.length).toBeGreaterThan(0);
    expect((await walk('/Practitioner?address-city=saint-etienne&_count=100')).ids.sort()).toEqual(inTown.map((r) => r.idnps));
  });

  it('serves roles (activities) by practitioner, organization, profession and specialty, with _include and _revinclude', async () => {
    const expected = await expectedPractitioners();
    const { rows } = await db.query<{ idnps: string; n: number }>(
      "SELECT idnps, count(*)::int AS n FROM annuaire_activities WHERE active GROUP BY idnps HAVING count(*) > 1 ORDER BY idnps",
    );
    const who = rows.find((r) => expected.has(r.idnps))!;
    const roles = await ok(`/PractitionerRole?practitioner=Practitioner/${who.idnps}&_include=PractitionerRole:practitioner&_include=PractitionerRole:organization`);
    expect(ids(roles)).toHaveLength(who.n);
    const included = roles.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);
    expect(included).toContain(`Practitioner/${who.idnps}`);
    for (const e of roles.entry.filter((e: any) => e.search.mode === 'match')) {
      expect(e.resource.practitioner.reference).toBe(`Practitioner/${who.idnps}`);
      expect(included).toContain(e.resource.organization.reference);
      // Each role reads back by its id.
      const one = await ok(`/PractitionerRole/${e.resource.id}`);
      expect(one).toEqual(e.resource);
    }
    // By organization: every role pointing at that structure.
    const orgRef = roles.entry.find((e: any) => e.search.mode === 'match').resource.organization.reference;
    const atOrg = await walk(`/PractitionerRole?organization=${orgRef}&_count=100`);
    const { rows: there } = await db.query<{ idnps: string }>('SELECT idnps FROM annuaire_activities WHERE active AND structure_id = $1', [orgRef.split('/')[1]]);
    expect(atOrg.ids).toHaveLength(there.filter((r) => expected.has(r.idnps)).length);
    // Profession (role) and specialty: only served professionals' activities.
    const { rows: sm } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM annuaire_activities a WHERE a.active AND a.savoir_faire_code = 'SM54' AND a.idnps = ANY($1::text[])", [[...expected.keys()]]);
    const sm54 = await ok(`/PractitionerRole?specialty=SM54&role=${encodeURIComponent('https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante|10')}&_count=0&_total=accurate`);
    expect(sm54.total).toBe(sm[0].n);
    expect(sm54.total).toBeGreaterThan(0);
    // _revinclude on Practitioner brings the same roles.
    const rev = await ok(`/Practitioner?_id=${who.idnps}&_revinclude=PractitionerRole:practitioner`);
    expect(ids(rev, 'include').sort()).toEqual(ids(roles).sort());
  });

  it('finds organizations by FINESS, name, city and mailbox; their ORG boxes are telecom entries', async () => {
    const { rows } = await db.query<{ structure_id: string; finess_site: string; raison_sociale: string; commune: string }>(
      "SELECT structure_id, finess_site, raison_sociale, commune FROM annuaire_structures WHERE finess_site IS NOT NULL ORDER BY structure_id LIMIT 1",
    );
    const s = rows[0];
    expect(ids(await ok(`/Organization?identifier=${encodeURIComponent(`${ID_SYSTEM.finess}|${s.finess_site}`)}`))).toEqual([s.structure_id]);
    expect(ids(await ok(`/Organization?name:exact=${encodeURIComponent(s.raison_sociale)}`))).toEqual([s.structure_id]);
    const { rows: town } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_structures WHERE active AND commune = $1', [s.commune]);
    expect((await ok(`/Organization?address-city=${encodeURIComponent(s.commune.toLowerCase())}&_count=0&_total=accurate`)).total).toBeGreaterThanOrEqual(town[0].n);
    // An ORG box: its structure (named by the MSSanté file, "1" + FINESS) is served with it.
    const { rows: box } = await db.query<{ address: string; structure_id: string }>("SELECT address, structure_id FROM annuaire_mss_addresses WHERE bal_type = 'ORG' AND NOT liste_rouge ORDER BY address LIMIT 1");
    const b = await ok(`/Organization?mailbox-mss:exact=${encodeURIComponent(box[0].address)}`);
    expect(ids(b)).toEqual([box[0].structure_id]);
    const tel = b.entry[0].resource.telecom.find((t: any) => t.value === box[0].address);
    expect(tel.extension[1].extension[0].valueCodeableConcept.coding[0].code).toBe('ORG');
    expect(b.entry[0].resource.identifier.map((i: any) => i.system)).toEqual([ID_SYSTEM.idnst, ID_SYSTEM.finess]);
    expect(ids(await ok(`/Organization?mailbox-mss-type=ORG&_id=${box[0].structure_id}`))).toEqual([box[0].structure_id]);
  });

  it('never serves the liste rouge: not by read, not by any search, not in any page', async () => {
    await refused(await get(`/Practitioner/${red.holder}`), 404, 'FHIR_NOT_SERVED');
    for (const a of red.addresses) {
      for (const type of ['Practitioner', 'Organization', 'PractitionerRole']) {
        expect(ids(await ok(`/${type}?mailbox-mss:exact=${encodeURIComponent(a)}`))).toEqual([]);
        expect(ids(await ok(`/${type}?mailbox-mss:contains=${encodeURIComponent(a.split('@')[0])}`))).toEqual([]);
      }
      expect(ids(await ok(`/Practitioner?telecom=${encodeURIComponent('email|' + a)}`))).toEqual([]);
    }
    expect(ids(await ok(`/Practitioner?identifier=${red.holder}`))).toEqual([]);
    expect(ids(await ok(`/PractitionerRole?practitioner=${red.holder}`))).toEqual([]);
    // Every page of every type (ok() checks that no liste rouge address nor the holder appears).
    await walk('/Organization?_count=100');
    await walk('/PractitionerRole?_count=100&_include=PractitionerRole:practitioner');
    await walk('/Practitioner?_count=100&_revinclude=PractitionerRole:practitioner');
  });

  it('refuses bad requests with an OperationOutcome: unknown parameter or modifier (strict), bad values, formats, methods', async () => {
    for (const q of ['foo=bar', 'family:missing=x', 'family:exact:x=y', '_sort=family', '_elements=id', 'organization=x']) {
      await refused(await get(`/Practitioner?${q}`), 400, 'FHIR_PARAM_UNKNOWN');
    }
    for (const q of ['_count=abc', '_count=-1', 'family=', 'family=a,', '_count=5&_count=6', '_cursor=zz!', '_cursor=abc', '_include=PractitionerRole:practitioner', '_revinclude=Foo:bar', '_total=maybe', 'practitioner=a/b/c']) {
      await refused(await get(`/${q.startsWith('practitioner') ? 'PractitionerRole' : 'Practitioner'}?${q}`), 400, 'FHIR_PARAM_INVALID');
    }
    await refused(await get(`/Practitioner?${Array.from({ length: 33 }, (_, i) => `family=a${i}`).join('&')}`), 400, 'FHIR_PARAM_INVALID');
    await refused(await get(`/Practitioner?family=${Array.from({ length: 51 }, (_, i) => `a${i}`).join(',')}`), 400, 'FHIR_PARAM_INVALID');
    await refused(await get(`/Practitioner?family=${'a'.repeat(257)}`), 400, 'FHIR_PARAM_INVALID');
    await refused(await get('/Practitioner/1?family=x'), 400, 'FHIR_PARAM_UNKNOWN');
    await refused(await get('/Practitioner?_format=xml'), 406, 'FHIR_FORMAT_UNSUPPORTED');
    await refused(await get('/Practitioner', { headers: { accept: 'application/fhir+xml' } }), 406, 'FHIR_FORMAT_UNSUPPORTED');
    expect((await get('/Practitioner?_count=1', { headers: { accept: 'application/fhir+json' } })).status).toBe(200);
    expect((await get('/Practitioner?_count=1&_format=json')).status).toBe(200);
    await refused(await get('/Patient'), 404, 'FHIR_NOT_SERVED');
    await refused(await get('/Practitioner/899999999999'), 404, 'FHIR_NOT_SERVED');
    await refused(await get('/Practitioner/not_an_id!'), 404, 'FHIR_NOT_SERVED');
    await refused(await get('/Organization/x-zz'), 404, 'FHIR_NOT_SERVED');
    await refused(await get('/PractitionerRole/810000000001-000000000000'), 404, 'FHIR_NOT_SERVED');
    await refused(await get('/Practitioner', { method: 'POST' }), 405, 'FHIR_METHOD_UNSUPPORTED');
    await refused(await get('/Practitioner/1', { method: 'DELETE' }), 405, 'FHIR_METHOD_UNSUPPORTED');
  });

  it('is read only by software of the trust space: no certificate, a foreign one or a revoked one is refused and journalled', async () => {
    const cases: Array<[string, ClientCert | null, RegExp]> = [
      ['none', null, /no client certificate/],
      ['foreign', { cert: readFileSync(pki.paths.leaves.foreign.cert, 'utf8'), key: readFileSync(pki.paths.leaves.foreign.key, 'utf8') }, /not accepted in the trust space/],
      ['revoked', { cert: readFileSync(pki.paths.leaves.revoked.cert, 'utf8'), key: readFileSync(pki.paths.leaves.revoked.key, 'utf8') }, /not accepted in the trust space.*REVOKED/],
    ];
    for (const [name, cert, why] of cases) {
      const before = Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM journal_events WHERE type = 'policy.refused'")).rows[0].n);
      const o = await refused(await get(`/Practitioner?_count=1&case=${name}`, { client: cert }), 403, 'DIRECTORY_READ_FORBIDDEN');
      expect(o.issue[0].details.text, name).toMatch(why);
      await journal.flush();
      const { rows } = await db.query<{ details: any; actor: string; subject: string }>("SELECT details, actor, subject FROM journal_events WHERE type = 'policy.refused' ORDER BY seq DESC LIMIT 1");
      expect(Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM journal_events WHERE type = 'policy.refused'")).rows[0].n), name).toBe(before + 1);
      expect(rows[0].details).toMatchObject({ action: 'directory-read', code: 'DIRECTORY_READ_FORBIDDEN', front: 'fhir' });
      expect(rows[0].subject).toBe('fhir GET /fhir/r4/Practitioner');
      expect(rows[0].actor).toMatch(cert ? /^app:[0-9a-f]{64}$/ : /^anonymous$/);
    }
    // A personal (CPS-like) certificate of the trust space reads.
    expect((await get('/Practitioner?_count=1', { client: { cert: readFileSync(pki.paths.leaves.personal.cert, 'utf8'), key: readFileSync(pki.paths.leaves.personal.key, 'utf8') } })).status).toBe(200);
  });
});
