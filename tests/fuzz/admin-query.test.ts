// Property-based fuzzing of what the admin API parses from a request line: every GET route
// of its OpenAPI document (so a route added later is fuzzed too), with query strings and
// path parameters built from its declared parameters and from hostile values (numbers past
// 2^63, exponents, arrays by repeated keys, broken percent-escapes, NUL, 10,000-character
// strings), as the national admin, a regional one, a forged token and nobody:
//   - never a 5xx; every refusal is application/problem+json with its status;
//   - the national search finds what it holds: a fragment of a name or an address is matched
//     literally, "%", "_" and "\" included (searchNational escapes LIKE's wildcards).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin, ensureBootstrapAdmin } from '../../annuaire/admin/accounts.js';
import { searchNational } from '../../annuaire/admin/search.js';
import { createAdminServer } from '../../annuaire/admin/server.js';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { balFactSource, createBal } from '../../annuaire/bal/index.js';
import { whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import { migrate, openPglite, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import * as policyModule from '../../core/policy/index.js';
import { Policy } from '../../core/policy/index.js';
import { loadConfig } from '../../core/config/index.js';
import { testPki } from '../helpers/pki.js';
import { checkAsync, MAX_RETAINED_GROWTH, retainedGrowth } from './harness.js';

const DOMAINS = ['mssante.localhost', 'bzh.mssante.localhost'];

/** National addresses with LIKE's wildcards and accents in them. */
const NATIONAL = [
  ['dr.martin@medecin.mssante.fr', 'MARTIN', 'Jeanne', 'CABINET MARTIN'],
  ['secretariat_cardio@ch-rennes.mssante.fr', null, null, 'CH RENNES 100% SANTÉ'],
  ['labo%resultats@labo.mssante.fr', null, null, 'LABO \\ ANALYSES'],
  ['o.brien@medecin.mssante.fr', "O'BRIEN", 'Seán', "CABINET D'O'BRIEN"],
  ['francoise.lefevre@medecin.mssante.fr', 'LEFÈVRE', 'Françoise', 'MAISON DE SANTÉ ÉTÉ'],
  ['ehpad.les_chenes@ehpad.mssante.fr', null, null, 'EHPAD LES CHÊNES _ 2'],
] as const;

describe('admin API: hostile query strings and search expressions', () => {
  let db: Db;
  let app: FastifyInstance;
  const tokens: Record<string, string> = {};
  let routes: Array<{ path: string; query: Array<{ name: string; schema: Record<string, unknown> }>; params: string[] }>;

  beforeAll(async () => {
    db = await openPglite();
    await migrate(db);
    const journal = new Journal(db);
    const pki = await testPki();
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: DOMAINS });
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-fuzz-admin-'));
    const config = { operator: { domain: DOMAINS[0], domains: [DOMAINS[1]] } };
    const tls = serverTlsOptions(loadTlsMaterial({ tls: { certFile: pki.file('server.pem'), keyFile: pki.file('server.key'), chainFile: pki.file('intermediate.pem'), caFile: pki.file('ca.pem'), crlFile: pki.file('crl.pem') } }));
    // core/policy's login throttle, where the API takes one (branch auth): built as the platform builds it.
    const Throttle = (policyModule as Record<string, unknown>).LoginThrottle as (new (o: unknown, d: unknown) => unknown) | undefined;
    const throttle = Throttle ? { throttle: new Throttle((loadConfig({ env: {} }) as unknown as { auth: unknown }).auth, { db, journal, accountOf: async () => null }) } : {};
    const deps = { db, journal, policy, bal: operatorBalContext(config as never, db, journal), tokenTtlMs: 3_600_000, uploadDir: join(dataDir, 'uploads'), reportDir: join(dataDir, 'reports'), ...throttle };
    app = await createAdminServer(deps as unknown as Parameters<typeof createAdminServer>[0], tls);
    await app.ready();
    const login = async (l: string, password: string) => {
      const r = await app.inject({ method: 'POST', url: '/api/v1/login', payload: { login: l, password } });
      assert.equal(r.statusCode, 200, r.body);
      return r.json().token as string;
    };
    const boot = (await ensureBootstrapAdmin(db, journal, dataDir, 'admin'))!;
    tokens.national = await login('admin', boot.password);
    const reg = await createAdmin(db, journal, { login: 'ars-bretagne', role: 'regional', domains: [DOMAINS[1]!], structures: ['350000001'] }, 'test');
    tokens.regional = await login('ars-bretagne', reg.password);
    tokens.forged = 'mssadm_forged';
    const ctx = operatorBalContext(config as never, db, journal);
    await createBal(ctx, { address: `secretariat@${DOMAINS[1]}`, type: 'ORG', owner: '350000001' }, 'test');
    for (const [address, nom, prenom, raison] of NATIONAL) {
      await db.query(
        `INSERT INTO annuaire_mss_addresses (address, bal_type, nom, prenom, raison_sociale, idnps, hash, first_seen, last_seen, source_file)
         VALUES ($1, $2, $3, $4, $5, $6, 'h', now(), now(), 'fuzz')`,
        [address, nom ? 'PER' : 'ORG', nom, prenom, raison, nom ? '810000000001' : null],
      );
    }
    await journal.flush();
    // The route table as the API documents it: every GET, its query parameters and path parameters.
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string; schema?: Record<string, unknown> }> }>> };
    routes = Object.entries(doc.paths)
      .filter(([, ops]) => ops.get)
      .map(([path, ops]) => ({
        path,
        query: (ops.get!.parameters ?? []).filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        params: (ops.get!.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
      }));
    assert.ok(routes.length >= 5, `only ${routes.length} GET routes documented`);
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  /** A value as a query string carries it: raw (possibly broken escapes) or percent-encoded. */
  const value = fc.oneof(
    fc.constantFrom('0', '1', '-1', '100', '1000', '1001', '1.5', '1e30', '-1e30', '9223372036854775807', '9223372036854775808', '99999999999999999999', '0x10', 'NaN', 'Infinity', '', ' ', 'true', 'false', 'null', '[]', '{}', 'PER', 'ORG', 'active', 'closed', '%', '%zz', '%00', '%C3%A9', '%FF', '\\', "'", '*', '(', 'a@b.fr', 'x'.repeat(10_000)).map((v) => ({ v, raw: true })),
    fc.string({ maxLength: 30 }).map((v) => ({ v, raw: false })),
    fc.string({ unit: 'binary', maxLength: 10 }).map((v) => ({ v, raw: false })),
  );
  const encode = ({ v, raw }: { v: string; raw: boolean }) => (raw ? v.replace(/[ #&]/g, encodeURIComponent) : encodeURIComponent(v));

  it('answers every GET route with a status below 500, refusals as problem+json; memory bounded', async () => {
    const request = fc.record({
      route: fc.nat(),
      known: fc.array(fc.tuple(fc.nat(), value), { maxLength: 4 }),
      unknown: fc.array(fc.tuple(fc.constantFrom('x', 'limit[]', 'q[a]', '__proto__', 'constructor', '', '%'), value), { maxLength: 2 }),
      param: value,
      who: fc.constantFrom('national', 'regional', 'forged', 'none'),
    });
    const grown = await retainedGrowth(() =>
      checkAsync(request, async (r) => {
        const route = routes[r.route % routes.length]!;
        const pairs = [
          ...r.known.filter(() => route.query.length).map(([i, v]) => `${encodeURIComponent(route.query[i % route.query.length]!.name)}=${encode(v)}`),
          ...r.unknown.map(([k, v]) => `${k}=${encode(v)}`),
        ];
        const path = route.path.replace(/\{[^}]+\}/g, () => encode(r.param) || 'x');
        const url = `${path}${pairs.length ? '?' + pairs.join('&') : ''}`;
        const res = await app.inject({ method: 'GET', url, headers: r.who === 'none' ? {} : { authorization: `Bearer ${tokens[r.who]}` } });
        assert.ok(res.statusCode < 500, `${res.statusCode} for GET ${url.slice(0, 200)}: ${res.body.slice(0, 300)}`);
        if (res.statusCode >= 400 && !url.startsWith('/docs')) {
          assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `GET ${url.slice(0, 200)}`);
          assert.equal(res.json().status, res.statusCode);
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });

  it('the national search matches any fragment of a name or an address literally (%, _ and \\ included)', async () => {
    const fragment = fc.tuple(fc.constantFrom(...NATIONAL), fc.nat(), fc.nat(), fc.nat({ max: 3 })).map(([row, f, a, n]) => {
      const fields = (row as readonly (string | null)[]).filter((x): x is string => x !== null);
      const text = fields[f % fields.length]!;
      const start = a % text.length;
      return { address: row[0], text: text.slice(start, start + 1 + ((a + n * 7) % (text.length - start))) };
    });
    await checkAsync(fragment, async ({ address, text }) => {
      if (!text.trim()) return;
      const found = await searchNational(db, { text, limit: 500 });
      assert.ok(found.some((r) => r.address === address), `"${text}" did not find ${address}`);
      // Exactly the rows holding it: LIKE's wildcards in the fragment match themselves only.
      const needle = text.trim().toLowerCase();
      for (const r of found) assert.ok([r.address, r.nom, r.prenom, r.raisonSociale].some((v) => v?.toLowerCase().includes(needle)), `"${text}" found ${r.address}`);
    });
  });
});
