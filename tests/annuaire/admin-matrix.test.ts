import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devIssuer, issueCertificate, newRsaKey } from '../../certs/pki.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { createTsa } from '../../certs/tsa.js';
import { loadConfig } from '../../core/config/index.js';
import { LoginThrottle, Policy } from '../../core/policy/index.js';
import { addMember, balFactSource, closeBal, createBal, createPerson, findPerson, openSession, registerAppCertificate, totpCode, type BalContext } from '../../annuaire/bal/index.js';
import { newTotpSecret } from '../../annuaire/bal/credentials.js';
import { registerOpenPgpKey } from '../../annuaire/bal/openpgp.js';
import { generateKey } from 'openpgp';
import { adminLogin, createAdmin } from '../../annuaire/admin/accounts.js';
import { createAdminServer } from '../../annuaire/admin/server.js';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { registerBackend } from '../../mailstore/placement.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { encodeFile, mssanteLines } from '../helpers/rpps-generator.js';
import { expectProblem, inject, routesOf, sendHostile, successStatus, toRequest, type CallSpec, type Route } from '../helpers/routes.js';
import { makeWhitelistXml } from '../helpers/whitelist.js';

// The admin API's authorisation matrix and its hostile-input sweep, both generated from the
// listener's route table: every route × {national admin, regional admin in scope, regional
// admin out of scope, a webmail session token, no token, a garbage token}, the expected
// answer derived from the rule the route declares. Two regions, each with real rows (boxes of
// every type, persons, members, an application certificate, journal events), are checked
// in both directions; list routes must return no row of the other region.

interface Region {
  tag: 'bzh' | 'idf';
  domain: string;
  finess: string;
  /** A structure of the region whose box lives in the operator's main domain: in scope by structure. */
  extra: string;
  rpps: string;
  admin: string;
  /** Strings only this region's rows carry: addresses, logins, national ids. */
  markers: string[];
  org: string;
  app: string;
}

const region = (tag: 'bzh' | 'idf', finess: string, extra: string, rpps: string): Region => {
  const domain = `${tag}.mssante.localhost`;
  return {
    tag,
    domain,
    finess,
    extra,
    rpps,
    admin: `ars-${tag}`,
    org: `secretariat.${tag}@${domain}`,
    app: `labo.${tag}@${domain}`,
    markers: [`dr.${tag}@${domain}`, `secretariat.${tag}@${domain}`, `labo.${tag}@${domain}`, `cardio-${tag}@mssante.localhost`, `dr.${tag}`, `sec.${tag}`, `8${rpps}`],
  };
};
const BZH = region('bzh', '350000001', '350000099', '29876543201');
const IDF = region('idf', '750000001', '750000099', '29876543202');
const PASSWORD = 'matrice-' + randomBytes(12).toString('hex');
/** Hundreds to thousands of requests: a net for a hung server on a loaded machine, not a performance bound. */
const SAFETY_NET = 600_000;

type Who = 'national' | 'home' | 'away' | 'webmail' | 'none' | 'garbage';
const EVERYONE: Who[] = ['national', 'home', 'away', 'webmail', 'none', 'garbage'];
const ADMINS: Who[] = ['national', 'home', 'away'];

describe.each(dbTargets())('admin API authorisation matrix and hostile input on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let app: FastifyInstance;
  let pki: TestPki;
  let ctx: BalContext;
  let appKey: string;
  const tokens = new Map<string, string>();
  let n = 0;
  const next = () => ++n;

  // --- fixtures: each allowed call gets fresh rows, so every one of them can succeed --------
  const freshBox = async (h: Region, type: 'ORG' | 'APP' = 'ORG') => (await createBal(ctx, { address: `m${next()}.${h.tag}@${h.domain}`, type, owner: h.finess, displayName: `Matrice ${h.tag}` }, 'test:seed')).address;
  const freshPerson = async (h: Region) => (await createPerson(ctx, { login: `p${next()}.${h.tag}` }, 'test:seed')).login;
  const freshCert = async (h: Region) =>
    (await issueCertificate(devIssuer(pki.dir), { type: 'application', name: `logiciel-${next()}`, organisation: `Labo ${h.tag}`, organisationId: h.finess }, { keyPem: appKey, validityDays: 30 })).certPem;
  /** A regional admin account of region h's domain, to act on. */
  const freshAdmin = async (h: Region) => (await createAdmin(db, journal, { login: `ars-${h.tag}-${next()}`, role: 'regional', domains: [h.domain] }, 'test:seed')).account.login;
  /** A box of region h on back end store-m1 of the pair store-m1/store-m2 (registered in beforeAll). */
  const placedBox = async (h: Region) => {
    const address = await freshBox(h);
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-m1')", [address]);
    return address;
  };
  /** An event about region h (its secretariat's creation). */
  const eventAbout = async (h: Region) => (await journal.list({ subject: h.org, limit: 1 }))[0].seq;
  const day = (k: number) => new Date(Date.UTC(2026, 0, 1) + k * 86_400_000);
  const extraction = () => ({ name: `Extraction_Correspondance_MSSante_${day(next()).toISOString().slice(0, 10).replace(/-/g, '')}0000.txt` });
  /** An extraction job (a dry run) started by the national admin and waited for: its id. */
  const finishedJob = async () => {
    const nat = (await tokenOf('national', BZH, IDF))!;
    const started = await inject(app, toRequest('POST', '/api/v1/imports/extractions/jobs', { query: { ...extraction(), dryRun: 'true' }, raw: { type: 'application/octet-stream', data: encodeFile(mssanteLines({ lines: 5, seed: n })) } }, nat));
    const id = started.json().id as string;
    while ((await inject(app, toRequest('GET', '/api/v1/imports/extractions/jobs/:id', { params: { id } }, nat))).json().state === 'running') await new Promise((r) => setTimeout(r, 20));
    return id;
  };

  /** One OpenPGP public key for the key routes (registering it again replaces it). */
  let pgp: Promise<string> | undefined;
  const pgpKey = () => (pgp ??= generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'matrice@mssante.localhost' }], format: 'armored' }).then((k) => k.publicKey));

  /** A valid call of each route, acting on region h. A route missing here fails the matrix. */
  const samples: Record<string, (h: Region) => Promise<CallSpec & { freshToken?: boolean; cleanup?: () => Promise<void> }>> = {
    'POST /api/v1/login': async () => ({ body: { login: 'nat', password: PASSWORD } }),
    'POST /api/v1/web/login': async () => ({ body: { login: 'nat', password: PASSWORD } }),
    'GET /ui/*': async () => ({ params: { '*': 'console/' } }),
    'POST /api/v1/logout': async () => ({ freshToken: true }),
    'GET /api/v1/me': async () => ({}),
    'GET /api/v1/dashboard': async () => ({ query: { since: '2026-01-01T00:00:00Z' } }),
    'GET /api/v1/indicators': async () => ({ query: { month: '2026-11' } }),
    'GET /api/v1/bals': async () => ({ query: { limit: '1000' } }),
    'POST /api/v1/bals': async (h) => ({ body: { address: `new${next()}.${h.tag}@${h.domain}`, type: 'ORG', owner: h.finess } }),
    'GET /api/v1/bals/:address': async (h) => ({ params: { address: h.org } }),
    'PATCH /api/v1/bals/:address': async (h) => ({ params: { address: h.org }, body: { description: `changed ${next()}` } }),
    'POST /api/v1/bals/:address/close': async (h) => ({ params: { address: await freshBox(h) }, body: { reason: 'matrix' } }),
    'POST /api/v1/bals/:address/reopen': async (h) => {
      const address = await freshBox(h);
      await closeBal(ctx, address, 'test:seed');
      return { params: { address } };
    },
    'POST /api/v1/bals/:address/members': async (h) => ({ params: { address: h.org }, body: { login: await freshPerson(h) } }),
    'DELETE /api/v1/bals/:address/members/:login': async (h) => {
      const login = await freshPerson(h);
      await addMember(ctx, h.org, { login }, 'test:seed');
      return { params: { address: h.org, login } };
    },
    'POST /api/v1/bals/:address/certificates': async (h) => ({ params: { address: h.app }, body: { pem: await freshCert(h) } }),
    'DELETE /api/v1/bals/:address/certificates/:fingerprint': async (h) => {
      const bal = await registerAppCertificate(ctx, h.app, await freshCert(h), 'test:seed');
      return { params: { address: h.app, fingerprint: bal.certificates.at(-1)!.fingerprint } };
    },
    'GET /api/v1/bals/:address/openpgp-key': async (h) => {
      await registerOpenPgpKey(ctx, h.org, await pgpKey(), 'test:seed');
      return { params: { address: h.org } };
    },
    'PUT /api/v1/bals/:address/openpgp-key': async (h) => ({ params: { address: h.org }, body: { armored: await pgpKey() } }),
    'DELETE /api/v1/bals/:address/openpgp-key': async (h) => {
      await registerOpenPgpKey(ctx, h.org, await pgpKey(), 'test:seed');
      return { params: { address: h.org } };
    },
    'GET /api/v1/mailstore/backends': async () => ({}),
    'GET /api/v1/bals/:address/placement': async (h) => ({ params: { address: await placedBox(h) } }),
    // Within the pair: the map only, answered done.
    'POST /api/v1/bals/:address/move': async (h) => ({ params: { address: await placedBox(h) }, body: { backend: 'store-m2' } }),
    'GET /api/v1/mailstore/moves/:id': async (h) => {
      const nat = (await tokenOf('national', BZH, IDF))!;
      const moved = await inject(app, toRequest('POST', '/api/v1/bals/:address/move', { params: { address: await placedBox(h) }, body: { backend: 'store-m2' } }, nat));
      return { params: { id: moved.json().id as string } };
    },
    'GET /api/v1/persons': async () => ({ query: { limit: '1000' } }),
    'POST /api/v1/persons': async (h) => ({ body: { login: `new${next()}.${h.tag}`, memberOf: h.org } }),
    'POST /api/v1/persons/:login/reset-credentials': async (h) => ({ params: { login: `sec.${h.tag}` }, body: {} }),
    'POST /api/v1/imports/whitelist': async () => ({ raw: { type: 'application/xml', data: makeWhitelistXml({ count: 3, generatedAt: day(next()).toISOString().slice(0, 19) }) } }),
    'POST /api/v1/imports/extractions': async () => ({
      query: { name: `Extraction_Correspondance_MSSante_${day(next()).toISOString().slice(0, 10).replace(/-/g, '')}0000.txt` },
      raw: { type: 'application/octet-stream', data: encodeFile(mssanteLines({ lines: 5, seed: n })) },
    }),
    // A dry run: the job goes on after its 202, and must change nothing a later call's snapshot compares.
    'POST /api/v1/imports/extractions/jobs': async () => ({ query: { ...extraction(), dryRun: 'true' }, raw: { type: 'application/octet-stream', data: encodeFile(mssanteLines({ lines: 5, seed: n })) } }),
    'GET /api/v1/imports/extractions/jobs/:id': async () => ({ params: { id: await finishedJob() } }),
    'GET /api/v1/imports/extractions/jobs/:id/report': async () => ({ params: { id: await finishedJob() } }),
    'GET /api/v1/search': async () => ({ query: { q: 'matrice', limit: '500' } }),
    'GET /api/v1/journal': async () => ({ query: { limit: '1000' } }),
    'GET /api/v1/journal/:seq': async (h) => ({ params: { seq: String(await eventAbout(h)) } }),
    'GET /api/v1/journal/:seq/proof': async (h) => {
      const seq = await eventAbout(h);
      await journal.sealNow();
      return { params: { seq: String(seq) } };
    },
    'GET /api/v1/admins': async () => ({}),
    'POST /api/v1/admins': async (h) => ({ body: { login: `ars-new${next()}`, role: 'regional', domains: [h.domain] } }),
    'PATCH /api/v1/admins/:login': async (h) => ({ params: { login: await freshAdmin(h) }, body: { role: 'regional', structures: [h.extra] } }),
    'POST /api/v1/admins/:login/disable': async (h) => ({ params: { login: await freshAdmin(h) } }),
    'POST /api/v1/admins/:login/enable': async (h) => ({ params: { login: await freshAdmin(h) } }),
    'POST /api/v1/admins/:login/reset': async (h) => ({ params: { login: await freshAdmin(h) }, body: { resetTotp: true } }),
    'POST /api/v1/me/totp': async () => ({}),
    'POST /api/v1/me/totp/confirm': async (h) => {
      // Every admin caller has an enrolment of this one secret pending; the call confirms it,
      // and cleanup takes the second factor off again (the next sessions log in with a password).
      const secret = newTotpSecret();
      const logins = ['nat', BZH.admin, IDF.admin];
      await db.query('UPDATE admin_accounts SET totp_pending = $1 WHERE login = ANY($2)', [secret, logins]);
      return { body: { code: totpCode(secret) }, cleanup: async () => void (await db.query('UPDATE admin_accounts SET totp_secret = NULL, totp_last_step = NULL WHERE login = ANY($1)', [logins])) };
    },
  };
  const sampleOf = (r: Route) => {
    const s = samples[r.key.replace(/^HEAD /, 'GET ')];
    if (s) return s;
    // The API documents: no parameter but the static files' name.
    if (r.access?.kind === 'public' && r.method !== 'POST') return async (): Promise<CallSpec & { freshToken?: boolean; cleanup?: () => Promise<void> }> => ({ params: { '*': 'swagger-ui.css' } });
    return undefined;
  };

  /** The token each kind of caller presents; fresh: a new session (for logout). */
  const tokenOf = async (who: Who, h: Region, a: Region, fresh = false): Promise<string | undefined> => {
    const login = who === 'national' ? 'nat' : who === 'home' ? h.admin : who === 'away' ? a.admin : null;
    if (login) {
      const issue = async () => {
        const r = await adminLogin(db, journal, login, PASSWORD, 3_600_000);
        if (!r.ok) throw new Error(`${login} could not log in: ${JSON.stringify(r.failure)}`);
        return r.token;
      };
      if (fresh) return issue();
      if (!tokens.has(login)) tokens.set(login, await issue());
      return tokens.get(login)!;
    }
    if (who === 'webmail') {
      const p = (await findPerson(db, { login: `dr.${h.tag}` }))!;
      return (await openSession(db, { kind: 'person', id: p.id, login: p.login, idnps: p.idnps, auth: 'password' }, { ttlMs: 3_600_000, maxAgeMs: 3_600_000 })).token;
    }
    return who === 'garbage' ? `mssadm_${randomBytes(32).toString('base64url')}` : undefined;
  };

  /** Everything a refused call must leave as it was. */
  const snapshot = async () =>
    JSON.stringify(
      await Promise.all(
        [
          'SELECT address, status, version, display_name, description FROM bal_mailboxes ORDER BY address',
          'SELECT bal_id, person_id FROM bal_members ORDER BY 1, 2',
          'SELECT fingerprint, revoked_at FROM bal_app_certificates ORDER BY 1',
          'SELECT bal_id, fingerprint, registered_at FROM bal_openpgp_keys ORDER BY 1',
          'SELECT login, password_hash, totp_secret FROM bal_persons ORDER BY login',
          'SELECT login, role, domains, structures, active, password_hash, totp_secret FROM admin_accounts ORDER BY login',
          'SELECT count(*)::int AS n FROM whitelist_imports',
          'SELECT count(*)::int AS n FROM annuaire_import_files',
          'SELECT address, backend FROM mailstore_placement ORDER BY address',
        ].map(async (sql) => (await db.query(sql)).rows),
      ),
    );
  const refusalsOf = async (admin: string) => (await journal.list({ type: 'policy.refused', actor: `admin:${admin}`, limit: 1000 })).length;

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    pki = await testPki();
    const read = (f: string) => readFileSync(f, 'utf8');
    // A timestamping authority, so events are sealed and their proofs can be exported.
    const timestamper = await createTsa({ certPem: read(pki.file('tsa.pem')), keyPem: read(pki.file('tsa.key')), chainPems: [read(pki.file('intermediate.pem'))], policyOid: '1.2.250.1.999.1.1' });
    journal = new Journal(db, { timestamper });
    appKey = await newRsaKey(2048);
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-admin-matrix-'));
    const domains = ['mssante.localhost', BZH.domain, IDF.domain];
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: domains });
    ctx = operatorBalContext({ operator: { domain: domains[0], domains: domains.slice(1) }, tls: { caFile: pki.file('chain.pem'), crlFile: pki.file('crl.pem') } } as never, db, journal);
    const tls = serverTlsOptions(loadTlsMaterial({ tls: { certFile: pki.file('server.pem'), keyFile: pki.file('server.key'), chainFile: pki.file('intermediate.pem'), caFile: pki.file('ca.pem'), crlFile: pki.file('crl.pem') } }));
    app = await createAdminServer({ db, journal, policy, throttle: new LoginThrottle(loadConfig({ env: {} }).auth, { db, journal }), bal: ctx, tokenTtlMs: 3_600_000, uploadDir: join(dataDir, 'uploads'), reportDir: join(dataDir, 'reports'), proofMaterial: () => ({ tsaChainPem: read(pki.file('tsa.pem')) + read(pki.file('intermediate.pem')), caPem: read(pki.file('ca.pem')) }) }, tls);
    await app.ready();

    await createAdmin(db, journal, { login: 'nat', role: 'national', password: PASSWORD }, 'test:seed');
    // A pair of back ends of a shared store (rows only: a move within the pair changes the map alone).
    await registerBackend(db, { name: 'store-m1', host: '127.0.0.1', imapPort: 1, lmtpPort: 2, doveadmPort: 3, partner: 'store-m2' });
    await registerBackend(db, { name: 'store-m2', host: '127.0.0.1', imapPort: 4, lmtpPort: 5, doveadmPort: 6, partner: 'store-m1' });
    await createPerson(ctx, { login: 'shared', nom: 'PARTAGE' }, 'test:seed');
    await createPerson(ctx, { login: 'orphan', nom: 'SEUL' }, 'test:seed');
    for (const r of [BZH, IDF]) {
      await createAdmin(db, journal, { login: r.admin, role: 'regional', domains: [r.domain], structures: [r.extra], password: PASSWORD }, 'test:seed');
      await createPerson(ctx, { login: `dr.${r.tag}`, idnps: r.rpps, nom: 'MATRICE', prenom: r.tag }, 'test:seed');
      await createPerson(ctx, { login: `sec.${r.tag}`, nom: 'MATRICE', prenom: `secretaire ${r.tag}` }, 'test:seed');
      await createBal(ctx, { address: `dr.${r.tag}@${r.domain}`, type: 'PER', owner: r.rpps, displayName: `Matrice dr ${r.tag}` }, 'test:seed');
      await createBal(ctx, { address: r.org, type: 'ORG', owner: r.finess, displayName: `Matrice secretariat ${r.tag}` }, 'test:seed');
      await createBal(ctx, { address: `cardio-${r.tag}@mssante.localhost`, type: 'ORG', owner: r.extra, displayName: `Matrice cardio ${r.tag}` }, 'test:seed');
      await createBal(ctx, { address: r.app, type: 'APP', owner: r.finess, displayName: `Matrice labo ${r.tag}` }, 'test:seed');
      await addMember(ctx, r.org, { login: `sec.${r.tag}` }, 'test:seed');
      await addMember(ctx, r.org, { login: 'shared' }, 'test:seed');
      await addMember(ctx, `cardio-${r.tag}@mssante.localhost`, { login: `sec.${r.tag}` }, 'test:seed');
      await registerAppCertificate(ctx, r.app, await freshCert(r), 'test:seed');
    }
  });
  afterAll(async () => {
    await app?.close();
    await dispose?.();
  });

  it('every route declares an access rule and has a sample call; a route without a rule stops the start', async () => {
    const routes = routesOf(app);
    expect(routes.length).toBeGreaterThan(30);
    for (const r of routes) {
      expect(['public', 'self', 'national', 'mailbox', 'scoped', 'targets'], r.key).toContain(r.access?.kind);
      expect(sampleOf(r), `no sample call for ${r.key}: add one to this matrix`).toBeDefined();
    }
    // The same API with one more route that says nothing about who may call it.
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-admin-matrix-'));
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: ['mssante.localhost'] });
    const deps = { db, journal, policy, throttle: new LoginThrottle(loadConfig({ env: {} }).auth, { db, journal }), bal: ctx, tokenTtlMs: 60_000, uploadDir: join(dataDir, 'u'), reportDir: join(dataDir, 'r') };
    const tls = serverTlsOptions(loadTlsMaterial({ tls: { certFile: pki.file('server.pem'), keyFile: pki.file('server.key'), chainFile: pki.file('intermediate.pem'), caFile: pki.file('ca.pem'), crlFile: pki.file('crl.pem') } }));
    const extra = await createAdminServer(deps, tls);
    extra.get('/api/v1/forgotten', async () => ({ everything: true }));
    await expect(extra.ready()).rejects.toThrow(/GET \/api\/v1\/forgotten/);
  });

  for (const [home, away] of [
    [BZH, IDF],
    [IDF, BZH],
  ] as const) {
    it(`every route × every caller answers as its rule says (${home.tag} rows; ${away.admin} out of scope)`, async () => {
      let calls = 0;
      for (const r of routesOf(app)) {
        const rule = r.access!;
        const sample = sampleOf(r)!;
        const statuses = new Map<Who, number>();
        for (const who of EVERYONE) {
          const spec = await sample(home);
          const token = await tokenOf(who, home, away, spec.freshToken);
          const what = `${r.key} as ${who}`;
          const before = await snapshot();
          const refusedBefore = await refusalsOf(away.admin);
          const a = await inject(app, toRequest(r.method, r.url, spec, token));
          await spec.cleanup?.();
          calls++;
          statuses.set(who, a.status);
          const admin = ADMINS.includes(who);
          let expected: 'ok' | 'refused' | 'unauthenticated' | 'public';
          if (rule.kind === 'public') expected = 'public';
          else if (!admin) expected = 'unauthenticated';
          else if (rule.kind === 'national') expected = who === 'national' ? 'ok' : 'refused';
          else if (rule.kind === 'mailbox' || rule.kind === 'targets') expected = who === 'away' ? 'refused' : 'ok';
          else expected = 'ok'; // self, scoped
          if (expected === 'ok') {
            expect(a.status, `${what}: ${a.text.slice(0, 300)}`).toBe(successStatus(r));
          } else if (expected === 'refused') {
            const p = r.method === 'HEAD' ? null : expectProblem(a, what, 403);
            if (p) expect(p.title, what).toBe('ADMIN_OUT_OF_SCOPE');
            expect(a.status, what).toBe(403);
            expect(await refusalsOf(away.admin), `${what}: journalled`).toBe(refusedBefore + (who === 'away' ? 1 : 0));
            expect(await snapshot(), `${what}: nothing changed`).toBe(before);
          } else if (expected === 'unauthenticated') {
            if (r.method !== 'HEAD') expect(expectProblem(a, what, 401).title, what).toBe('AUTH_FAILED');
            expect(a.status, what).toBe(401);
            expect(await snapshot(), `${what}: nothing changed`).toBe(before);
          }
          // A list shows the caller's scope and nothing else: the other region's rows never.
          if (rule.kind === 'scoped' && admin && r.method === 'GET') {
            const text = a.text;
            // The admin accounts' list names accounts, not rows of the regions: its markers are the regions' admins.
            const markers = (g: Region) => (r.url === '/api/v1/admins' ? [g.admin] : g.markers);
            const mine = who === 'national' ? [...markers(home), ...markers(away)] : who === 'home' ? markers(home) : markers(away);
            const others = who === 'home' ? markers(away) : who === 'away' ? markers(home) : [];
            // The dashboard and the indicators answer figures, not rows: only the second half applies to them.
            if (r.url !== '/api/v1/dashboard' && r.url !== '/api/v1/indicators') expect(mine.some((m) => text.includes(m)), `${what} lists rows of its scope`).toBe(true);
            for (const m of others) expect(text, `${what} must not show ${m}`).not.toContain(m);
          }
        }
        if (rule.kind === 'public') {
          // The credential makes no difference, and the route works.
          expect(new Set(statuses.values()).size, `${r.key}: ${JSON.stringify([...statuses])}`).toBe(1);
          expect(statuses.get('none')!, r.key).toBeLessThan(400);
        }
      }
      expect(calls).toBeGreaterThan(200);
    }, SAFETY_NET);
  }

  it('a list asked by name for rows of another scope answers nothing of them', async () => {
    const bzh = await tokenOf('home', BZH, IDF);
    for (const [path, query] of [
      ['/api/v1/bals', { domain: IDF.domain }],
      ['/api/v1/bals', { q: 'cardio-idf' }],
      ['/api/v1/persons', { q: `8${IDF.rpps}` }],
      ['/api/v1/persons', { q: 'dr.idf' }],
      ['/api/v1/journal', { subject: IDF.org }],
      ['/api/v1/journal', { actor: `admin:${IDF.admin}` }],
      ['/api/v1/search', { mail: IDF.org }],
      ['/api/v1/search', { rpps: IDF.rpps }],
    ] as const) {
      const a = await inject(app, toRequest('GET', path, { query }, bzh));
      expect(a.status, `${path} ${JSON.stringify(query)}`).toBe(200);
      for (const m of IDF.markers) expect(a.text, `${path} ${JSON.stringify(query)}`).not.toContain(m);
    }
  });

  it('persons: a regional account sees those attached to its mailboxes, resets only those wholly in its scope', async () => {
    const logins = async (who: 'national' | 'home') => (await inject(app, toRequest('GET', '/api/v1/persons', { query: { limit: '1000' } }, await tokenOf(who, BZH, IDF)))).json().map((p: { login: string }) => p.login);
    const regional = await logins('home');
    expect(regional).toEqual(expect.arrayContaining(['dr.bzh', 'sec.bzh', 'shared']));
    expect(regional).not.toContain('orphan');
    expect(regional.filter((l: string) => l.endsWith('.idf'))).toEqual([]);
    expect(await logins('national')).toEqual(expect.arrayContaining(['orphan', 'shared', 'dr.idf', 'dr.bzh']));
    // "shared" also belongs to a box of the other region; "orphan" to none: neither is a regional account's to reset.
    for (const login of ['shared', 'orphan', 'nobody-at-all']) {
      const a = await inject(app, toRequest('POST', '/api/v1/persons/:login/reset-credentials', { params: { login }, body: {} }, await tokenOf('home', BZH, IDF)));
      expect(expectProblem(a, login, 403).title).toBe('ADMIN_OUT_OF_SCOPE');
    }
    // A box that does not exist outside the scope is refused like one that does: its absence is not told.
    const ghost = await inject(app, toRequest('GET', '/api/v1/bals/:address', { params: { address: `ghost@${IDF.domain}` } }, await tokenOf('home', BZH, IDF)));
    expect(ghost.status).toBe(403);
    const mine = await inject(app, toRequest('GET', '/api/v1/bals/:address', { params: { address: `ghost@${BZH.domain}` } }, await tokenOf('home', BZH, IDF)));
    expect(expectProblem(mine, 'ghost in scope', 404).title).toBe('BAL_UNKNOWN');
  });

  it('every parameter of every route answers hostile values with a 4xx problem+json naming it, never a 500', async () => {
    const routes = routesOf(app).filter((r) => r.method !== 'HEAD');
    const sent = await sendHostile(
      app,
      routes.map((route) => ({
        route,
        valid: async () => sampleOf(route)!(BZH),
        token: async () => tokenOf('national', BZH, IDF, route.key === 'POST /api/v1/logout'),
      })),
    );
    expect(sent).toBeGreaterThan(1500);
    // The server still serves a normal request.
    expect((await inject(app, toRequest('GET', '/api/v1/bals/:address', { params: { address: BZH.org } }, await tokenOf('national', BZH, IDF)))).status).toBe(200);
  }, SAFETY_NET);

  it('the values the outside tester sent: 400 with a sentence naming the parameter', async () => {
    const t = await tokenOf('national', BZH, IDF);
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['GET', '/api/v1/journal?beforeSeq=9223372036854775808', undefined, /beforeSeq must be <= 9007199254740991/],
      ['GET', '/api/v1/journal?beforeSeq=1e30', undefined, /beforeSeq must be a number written in decimal digits/],
      ['GET', '/api/v1/bals?offset=99999999999999999999', undefined, /offset must be <= /],
      ['GET', '/api/v1/journal?since=0001-01-01T00:00:00%2B14:00', undefined, /query parameter since must match pattern/],
      ['POST', '/api/v1/bals', { address: `x@${BZH.domain}`, type: 'PER', owner: 10000000009 }, /field owner must be a string, not number/],
      ['PATCH', `/api/v1/bals/${encodeURIComponent(BZH.org)}`, { listeRouge: 'true' }, /field listeRouge must be true or false, not the string "true"/],
      ['PATCH', `/api/v1/bals/${encodeURIComponent(BZH.org)}`, { rank: '7' }, /field rank must be a whole number or null, not the string "7"/],
      ['PATCH', `/api/v1/bals/${encodeURIComponent(BZH.org)}`, { rank: 3_000_000_000 }, /field rank must be <= 1000/],
    ];
    for (const [method, url, body, detail] of cases) {
      const a = await inject(app, { method, url, headers: { authorization: `Bearer ${t}`, ...(body ? { 'content-type': 'application/json' } : {}) }, payload: body ? JSON.stringify(body) : undefined });
      expect(expectProblem(a, url, 400).detail).toMatch(detail);
    }
    // Percent-encodings that decode to no text (a cut sequence, an encoded lone surrogate, an overlong form): a path
    // that cannot be read is refused; in a query the undecodable value is kept as the characters sent, a harmless search.
    for (const url of ['/api/v1/bals/%ED%A0%80%40bzh.mssante.localhost', '/api/v1/bals/%C0%AF%40bzh.mssante.localhost']) {
      expect(expectProblem(await inject(app, { method: 'GET', url, headers: { authorization: `Bearer ${t}` } }), url, 400).title).toBe('HTTP_URL_INVALID');
    }
    for (const url of ['/api/v1/bals?q=%E0%A4%A', '/api/v1/bals?q=%ED%A0%80', '/api/v1/persons?q=%C0%AF']) {
      const a = await inject(app, { method: 'GET', url, headers: { authorization: `Bearer ${t}` } });
      expect(a.status, `${url}: ${a.text}`).toBe(200);
    }
  });
});
