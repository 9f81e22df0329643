import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { loadConfig } from '../../core/config/index.js';
import { LoginThrottle, Policy } from '../../core/policy/index.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import { balFactSource, findBal } from '../../annuaire/bal/index.js';
import { whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { createAdmin, ensureBootstrapAdmin } from '../../annuaire/admin/accounts.js';
import { totpCode } from '../../annuaire/bal/index.js';
import { createAdminServer } from '../../annuaire/admin/server.js';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { listPublications } from '../../annuaire/publication/index.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { makeWhitelistXml } from '../helpers/whitelist.js';
import { encodeFile, mssanteLines } from '../helpers/rpps-generator.js';

interface Answer {
  status: number;
  type: string;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

describe.each(dbTargets())('admin API over HTTPS on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let app: FastifyInstance;
  let pki: TestPki;
  let port: number;
  let national: string;
  let regional: string;
  let dataDir: string;

  /** A request through the real TLS listener, trusting only the test CA. */
  const call = (method: string, path: string, o: { token?: string; json?: unknown; body?: Buffer | string; type?: string } = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const payload = o.json !== undefined ? Buffer.from(JSON.stringify(o.json)) : o.body !== undefined ? Buffer.from(o.body) : undefined;
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method,
          ca: pki.read('ca.pem'),
          servername: pki.domain,
          minVersion: 'TLSv1.2',
          headers: {
            ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
            ...(payload ? { 'content-type': o.type ?? 'application/json', 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            const type = String(res.headers['content-type'] ?? '').split(';')[0];
            resolve({ status: res.statusCode!, type, headers: res.headers, body: type.includes('json') && text ? JSON.parse(text) : text });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  const login = async (l: string, password: string) => {
    const r = await call('POST', '/api/v1/login', { json: { login: l, password } });
    expect(r.status).toBe(200);
    return r.body.token as string;
  };

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    pki = await testPki();
    dataDir = mkdtempSync(join(tmpdir(), 'mss-admin-'));
    const config = { operator: { domain: 'mssante.localhost', domains: ['bzh.mssante.localhost'] }, tls: { caFile: pki.file('chain.pem'), crlFile: pki.file('crl.pem') } };
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: ['mssante.localhost', 'bzh.mssante.localhost'] });
    const tls = serverTlsOptions(loadTlsMaterial({ tls: { certFile: pki.file('server.pem'), keyFile: pki.file('server.key'), chainFile: pki.file('intermediate.pem'), caFile: pki.file('ca.pem'), crlFile: pki.file('crl.pem') } }));
    app = await createAdminServer(
      {
        db,
        journal,
        policy,
        bal: operatorBalContext(config as never, db, journal),
        tokenTtlMs: 60_000,
        // The platform's defaults, but 3 failures lock an account (and failures are answered at once).
        throttle: new LoginThrottle({ ...loadConfig({ env: {} }).auth, maxFailuresPerAccount: 3, failureDelay: 0 }, { db, journal }),
        uploadDir: join(dataDir, 'uploads'),
        reportDir: join(dataDir, 'reports'),
      },
      tls,
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    const boot = (await ensureBootstrapAdmin(db, journal, dataDir, 'admin'))!;
    expect(readFileSync(boot.file, 'utf8')).toContain(boot.password);
    expect(await ensureBootstrapAdmin(db, journal, dataDir, 'admin')).toBeNull();
    national = await login('admin', boot.password);
    const reg = await createAdmin(db, journal, { login: 'ars-bretagne', role: 'regional', domains: ['bzh.mssante.localhost'], structures: ['350000001'] }, 'test');
    regional = await login('ars-bretagne', reg.password);
  });
  afterAll(async () => {
    await app?.close();
    await dispose?.();
  });

  it('speaks TLS 1.2+ only and serves the OpenAPI document and the interactive docs', async () => {
    const doc = await call('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.0.3');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/api/v1/login', '/api/v1/bals', '/api/v1/bals/{address}/members', '/api/v1/imports/whitelist', '/api/v1/journal']));
    const ui = await call('GET', '/docs/');
    expect(ui.status).toBe(200);
    expect(ui.body).toContain('swagger');
    await expect(
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/openapi.json', ca: pki.read('ca.pem'), servername: pki.domain, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, resolve);
        req.on('error', reject);
        req.end();
      }),
    ).rejects.toThrow();
  });

  it('refuses missing or bad credentials with 401 problem+json, and journals failed logins', async () => {
    const r = await call('GET', '/api/v1/bals');
    expect(r).toMatchObject({ status: 401, type: 'application/problem+json', body: { title: 'AUTH_FAILED', status: 401 } });
    expect(r.headers['www-authenticate']).toBe('Bearer realm="mss-admin"');
    expect((await call('GET', '/api/v1/bals', { token: 'mssadm_forged' })).status).toBe(401);
    expect((await call('POST', '/api/v1/login', { json: { login: 'admin', password: 'wrong' } })).status).toBe(401);
    expect((await journal.list({ type: 'admin.login.failed' }))[0]).toMatchObject({ actor: 'admin:admin', details: { reason: 'bad-password' } });
    expect((await call('GET', '/api/v1/me', { token: national })).body).toMatchObject({ login: 'admin', role: 'national' });
  });

  it('validates every input: 400 problem+json for unknown fields, wrong types, bad values', async () => {
    const extra = await call('POST', '/api/v1/bals', { token: national, json: { address: 'x@mssante.localhost', type: 'PER', owner: '99999999901', colour: 'blue' } });
    expect(extra).toMatchObject({ status: 400, type: 'application/problem+json', body: { title: 'BAD_REQUEST' } });
    expect((await call('POST', '/api/v1/bals', { token: national, json: { address: 'x@mssante.localhost', type: 'XYZ', owner: '99999999901' } })).status).toBe(400);
    expect((await call('POST', '/api/v1/bals', { token: national, json: { address: 'x@mssante.localhost', type: 'PER', owner: '12' } })).status).toBe(400);
    expect((await call('GET', '/api/v1/bals?limit=0', { token: national })).status).toBe(400);
    const bad = await call('POST', '/api/v1/bals', { token: national, json: { address: 'x@gmail.com', type: 'PER', owner: '99999999901' } });
    expect(bad).toMatchObject({ status: 400, body: { detail: expect.stringContaining('not a domain of this operator') } });
    expect((await call('GET', '/api/v1/nothing', { token: national })).status).toBe(404);
  });

  it('creates, reads, changes, closes and reopens mailboxes of each type, journalled with the admin, queued for publication and LDAP', async () => {
    const per = await call('POST', '/api/v1/bals', { token: national, json: { address: 'Jeanne.Martin@mssante.localhost', type: 'PER', owner: '99999999901', displayName: 'Jeanne MARTIN' } });
    expect(per).toMatchObject({ status: 201, body: { address: 'jeanne.martin@mssante.localhost', type: 'PER', ownerId: '899999999901', status: 'active' } });
    const org = await call('POST', '/api/v1/bals', { token: national, json: { address: 'secretariat@bzh.mssante.localhost', type: 'ORG', owner: '350000001', service: 'Cardiologie' } });
    expect(org.status).toBe(201);
    const app_ = await call('POST', '/api/v1/bals', { token: national, json: { address: 'labo@mssante.localhost', type: 'APP', owner: '399999999900001' } });
    expect(app_.status).toBe(201);
    expect((await call('POST', '/api/v1/bals', { token: national, json: { address: 'JEANNE.martin@mssante.localhost', type: 'PER', owner: '99999999901' } })).status).toBe(409);

    expect((await call('GET', '/api/v1/bals/jeanne.martin@mssante.localhost', { token: national })).body.displayName).toBe('Jeanne MARTIN');
    expect((await call('GET', '/api/v1/bals/nobody@mssante.localhost', { token: national })).status).toBe(404);
    const patched = await call('PATCH', '/api/v1/bals/secretariat@bzh.mssante.localhost', { token: national, json: { description: 'Secrétariat', listeRouge: true } });
    expect(patched.body).toMatchObject({ description: 'Secrétariat', listeRouge: true, version: 2 });
    const closed = await call('POST', '/api/v1/bals/labo@mssante.localhost/close', { token: national, json: { reason: 'test' } });
    expect(closed.body).toMatchObject({ status: 'closed' });
    expect((await call('POST', '/api/v1/bals/labo@mssante.localhost/close', { token: national, json: {} })).status).toBe(409);
    expect((await call('POST', '/api/v1/bals/labo@mssante.localhost/reopen', { token: national, json: {} })).body.status).toBe('active');
    const list = await call('GET', '/api/v1/bals?type=ORG', { token: national });
    expect(list.body.map((b: { address: string }) => b.address)).toEqual(['secretariat@bzh.mssante.localhost']);

    expect((await journal.list({ subject: 'labo@mssante.localhost' })).map((e) => [e.type, e.actor]).reverse()).toEqual([
      ['bal.created', 'admin:admin'],
      ['bal.closed', 'admin:admin'],
      ['bal.reopened', 'admin:admin'],
    ]);
    expect((await listPublications(db, { address: 'labo@mssante.localhost' })).map((p) => p.change)).toEqual(['insert', 'delete', 'insert']);
    const pending = await db.query<{ kind: string; key: string }>("SELECT kind, key FROM annuaire_ldap_pending WHERE key IN ('labo@mssante.localhost', '899999999901') ORDER BY id");
    expect(pending.rows).toEqual(expect.arrayContaining([{ kind: 'bal', key: 'labo@mssante.localhost' }, { kind: 'person', key: '899999999901' }]));
    // The directory's view now holds the local boxes that are public (not the liste rouge one).
    const view = await db.query<{ key: string }>('SELECT key FROM annuaire_ldap_bal ORDER BY key');
    expect(view.rows.map((r) => r.key)).toEqual(['jeanne.martin@mssante.localhost', 'labo@mssante.localhost']);
  });

  it('manages ORG members and APP certificates (PEM upload), and resets credentials', async () => {
    const created = await call('POST', '/api/v1/persons', { token: national, json: { login: 'marie', nom: 'DURAND', prenom: 'Marie', memberOf: 'secretariat@bzh.mssante.localhost' } });
    expect(created).toMatchObject({ status: 201, body: { person: { login: 'marie', hasPassword: true }, memberOf: { members: [{ login: 'marie' }] } } });
    expect(created.body.password).toMatch(/^[A-Za-z0-9]{20}$/);
    await call('POST', '/api/v1/persons', { token: national, json: { login: 'jeanne', idnps: '99999999901' } });
    expect((await call('POST', '/api/v1/bals/secretariat@bzh.mssante.localhost/members', { token: national, json: { idnps: '899999999901' } })).body.members).toHaveLength(2);
    expect((await call('POST', '/api/v1/bals/jeanne.martin@mssante.localhost/members', { token: national, json: { login: 'marie' } })).status).toBe(409);
    expect((await call('DELETE', '/api/v1/bals/secretariat@bzh.mssante.localhost/members/jeanne', { token: national })).body.members).toHaveLength(1);
    expect((await call('GET', '/api/v1/persons?q=DURAND', { token: national })).body.map((p: { login: string }) => p.login)).toEqual(['marie']);

    const pem = pki.read('application.pem');
    const reg = await call('POST', '/api/v1/bals/labo@mssante.localhost/certificates', { token: national, json: { pem } });
    expect(reg.status).toBe(200);
    const fp = reg.body.certificates[0].fingerprint;
    expect((await call('POST', '/api/v1/bals/labo@mssante.localhost/certificates', { token: national, json: { pem: 'x'.repeat(60) } })).status).toBe(422);
    // Bound to labo already: another box takes it only with allowShared; a revoked one never.
    expect((await call('POST', '/api/v1/bals', { token: national, json: { address: 'labo2@mssante.localhost', type: 'APP', owner: '399999999900001' } })).status).toBe(201);
    const shared = await call('POST', '/api/v1/bals/labo2@mssante.localhost/certificates', { token: national, json: { pem } });
    expect(shared).toMatchObject({ status: 409, body: { title: 'CERT_BOUND_ELSEWHERE', detail: expect.stringContaining('is already bound to labo@mssante.localhost') } });
    expect((await call('POST', '/api/v1/bals/labo2@mssante.localhost/certificates', { token: national, json: { pem, allowShared: true } })).status).toBe(200);
    expect((await call('POST', '/api/v1/bals/labo2@mssante.localhost/certificates', { token: national, json: { pem: pki.read('revoked.pem') } })).body).toMatchObject({ status: 422, title: 'CERT_REVOKED' });
    const rev = await call('DELETE', `/api/v1/bals/labo@mssante.localhost/certificates/${fp}`, { token: national });
    expect(rev.body.certificates[0].revokedAt).toBeTruthy();

    const reset = await call('POST', '/api/v1/persons/marie/reset-credentials', { token: national, json: { resetTotp: true } });
    expect(reset.status).toBe(200);
    expect(reset.body.password).not.toBe(created.body.password);
    expect((await journal.list({ subject: 'marie', type: 'person.credentials.reset' }))[0].actor).toBe('admin:admin');
  });

  it('a regional account acts in its scope; out of scope is 403 problem+json and a journal event', async () => {
    const ok = await call('POST', '/api/v1/bals', { token: regional, json: { address: 'accueil@bzh.mssante.localhost', type: 'ORG', owner: '350000002' } });
    expect(ok.status).toBe(201);
    expect((await call('POST', '/api/v1/bals/secretariat@bzh.mssante.localhost/close', { token: regional, json: {} })).status).toBe(200);
    const list = await call('GET', '/api/v1/bals', { token: regional });
    expect(list.body.map((b: { address: string }) => b.address).sort()).toEqual(['accueil@bzh.mssante.localhost', 'secretariat@bzh.mssante.localhost']);

    const denied = await call('POST', '/api/v1/bals/jeanne.martin@mssante.localhost/close', { token: regional, json: {} });
    expect(denied).toMatchObject({ status: 403, type: 'application/problem+json', body: { title: 'ADMIN_OUT_OF_SCOPE', detail: expect.stringContaining('account ars-bretagne may not act on jeanne.martin@mssante.localhost') } });
    expect((await findBal(db, 'jeanne.martin@mssante.localhost'))!.status).toBe('active');
    const ev = (await journal.list({ type: 'policy.refused', actor: 'admin:ars-bretagne' }))[0];
    expect(ev).toMatchObject({ subject: 'jeanne.martin@mssante.localhost', details: { action: 'administer', code: 'ADMIN_OUT_OF_SCOPE', front: 'admin-api' } });

    expect((await call('POST', '/api/v1/bals', { token: regional, json: { address: 'x@mssante.localhost', type: 'ORG', owner: '750000001' } })).status).toBe(403);
    expect((await call('POST', '/api/v1/persons/jeanne/reset-credentials', { token: regional, json: {} })).status).toBe(403);
    expect((await call('POST', '/api/v1/persons', { token: regional, json: { login: 'orphan' } })).status).toBe(403);
    // The audit trail of a regional account: events about its mailboxes, persons and itself, nothing else.
    const trail = await call('GET', '/api/v1/journal', { token: regional });
    expect(trail.status).toBe(200);
    expect(trail.body.map((e: { subject: string }) => e.subject)).toEqual(expect.arrayContaining(['accueil@bzh.mssante.localhost', 'secretariat@bzh.mssante.localhost']));
    expect(trail.body.every((e: { subject: string }) => /@bzh\.mssante\.localhost$|^marie$|^admin:ars-bretagne$/.test(e.subject))).toBe(true);
    expect((await call('GET', '/api/v1/journal?subject=jeanne.martin@mssante.localhost', { token: regional })).body).toEqual([]);
    expect((await call('GET', '/api/v1/journal?subject=secretariat@bzh.mssante.localhost', { token: regional })).body.map((e: { type: string }) => e.type)).toContain('bal.closed');
    expect((await call('POST', '/api/v1/imports/whitelist', { token: regional, body: makeWhitelistXml({ count: 3 }), type: 'application/xml' })).status).toBe(403);
    // The accounts a regional account sees: the regional ones inside its scope (here its own); it cannot make a national one.
    expect((await call('GET', '/api/v1/admins', { token: regional })).body.map((a: { login: string }) => a.login)).toEqual(['ars-bretagne']);
    expect(await call('POST', '/api/v1/admins', { token: regional, json: { login: 'ars-nat', role: 'national' } })).toMatchObject({ status: 403, body: { title: 'ADMIN_OUT_OF_SCOPE' } });
    expect((await journal.list({ type: 'policy.refused', actor: 'admin:ars-bretagne' })).length).toBe(6);
  });

  it('imports the liste blanche (XML body or URL form) and refuses an older one', async () => {
    const r = await call('POST', '/api/v1/imports/whitelist', { token: national, body: makeWhitelistXml({ count: 30, generatedAt: '2026-03-01T00:00:00' }), type: 'application/xml' });
    expect(r).toMatchObject({ status: 200, body: { domains: 30, unchanged: false } });
    expect(r.body.added).toHaveLength(30);
    const older = await call('POST', '/api/v1/imports/whitelist', { token: national, body: makeWhitelistXml({ count: 30, generatedAt: '2026-01-01T00:00:00' }), type: 'application/xml' });
    expect(older).toMatchObject({ status: 409, body: { title: 'WHITELIST_OLDER' } });
    const dtd = await call('POST', '/api/v1/imports/whitelist', { token: national, body: makeWhitelistXml({ count: 3, generatedAt: '2026-04-01T00:00:00', prolog: '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' }), type: 'application/xml' });
    expect(dtd).toMatchObject({ status: 422, body: { title: 'WHITELIST_INVALID' } });
    expect((await call('POST', '/api/v1/imports/whitelist', { token: national, json: { url: 'ftp://x' } })).status).toBe(400);
  });

  it('imports a national extraction sent as the body, and finds its addresses in the search', async () => {
    const body = encodeFile(mssanteLines({ lines: 40, seed: 7 }));
    const r = await call('POST', '/api/v1/imports/extractions?name=Extraction_Correspondance_MSSante_202603010000.txt', { token: national, body, type: 'application/octet-stream' });
    expect(r.status).toBe(200);
    expect(r.body.failures).toEqual([]);
    expect(r.body.results[0]).toMatchObject({ file: 'Extraction_Correspondance_MSSante_202603010000.txt', kind: 'mssante', applied: true });
    const one = await db.query<{ address: string; idnps: string | null }>('SELECT address, idnps FROM annuaire_mss_addresses WHERE idnps IS NOT NULL ORDER BY address LIMIT 1');
    const byMail = await call('GET', `/api/v1/search?mail=${encodeURIComponent(one.rows[0].address)}`, { token: national });
    expect(byMail.body.national.map((a: { address: string }) => a.address)).toEqual([one.rows[0].address]);
    const byRpps = await call('GET', `/api/v1/search?rpps=${one.rows[0].idnps}`, { token: national });
    expect(byRpps.body.national.length).toBeGreaterThan(0);
    const byName = await call('GET', '/api/v1/search?q=jeanne', { token: regional });
    expect(byName.body.local).toEqual([]); // jeanne.martin@mssante.localhost is out of the regional scope
    expect((await call('GET', '/api/v1/search?q=jeanne', { token: national })).body.local.map((b: { address: string }) => b.address)).toEqual(['jeanne.martin@mssante.localhost']);
    expect((await call('POST', '/api/v1/imports/extractions?name=../../etc/passwd', { token: national, body, type: 'application/octet-stream' })).status).toBe(400);
  });

  it('reads the audit trail with filters, manages admin accounts, and logs out', async () => {
    const j = await call('GET', '/api/v1/journal?typePrefix=bal.&actor=admin:admin&limit=5', { token: national });
    expect(j.status).toBe(200);
    expect(j.body).toHaveLength(5);
    expect(j.body.every((e: { type: string; actor: string }) => e.type.startsWith('bal.') && e.actor === 'admin:admin')).toBe(true);
    const created = await call('POST', '/api/v1/admins', { token: national, json: { login: 'ars-idf', role: 'regional', domains: ['idf.mssante.localhost'] } });
    expect(created).toMatchObject({ status: 201, body: { account: { login: 'ars-idf', role: 'regional' } } });
    expect((await call('POST', '/api/v1/admins', { token: national, json: { login: 'ars-idf', role: 'regional', domains: ['x.fr'] } })).status).toBe(409);
    expect((await call('GET', '/api/v1/admins', { token: national })).body.map((a: { login: string }) => a.login)).toEqual(['admin', 'ars-bretagne', 'ars-idf']);
    expect((await call('POST', '/api/v1/logout', { token: regional })).status).toBe(204);
    expect((await call('GET', '/api/v1/me', { token: regional })).status).toBe(401);
  });

  it('a regional account manages the regional accounts inside its scope only: no national account, no wider scope; each refusal journalled', async () => {
    const chef = await createAdmin(db, journal, { login: 'ars-bzh-chef', role: 'regional', domains: ['bzh.mssante.localhost'], structures: ['350000001'] }, 'test');
    const idf = await createAdmin(db, journal, { login: 'ars-idf-2', role: 'regional', domains: ['idf.mssante.localhost'] }, 'test');
    const t = await login('ars-bzh-chef', chef.password);
    // A national session of its own: the suite's tokens live 60 s, less than a loaded run of the suite.
    const nat = await createAdmin(db, journal, { login: 'nat-scope', role: 'national' }, 'test');
    const national = await login('nat-scope', nat.password);
    const logins = async (token: string) => (await call('GET', '/api/v1/admins', { token })).body.map((a: { login: string }) => a.login);
    expect(await logins(t)).toEqual(['ars-bretagne', 'ars-bzh-chef']);
    expect(await logins(national)).toEqual(expect.arrayContaining(['admin', 'ars-bretagne', 'ars-bzh-chef', 'ars-idf-2', 'nat-scope']));
    const refused = async (method: string, path: string, json?: unknown) => expect(await call(method, path, { token: t, json })).toMatchObject({ status: 403, body: { title: 'ADMIN_OUT_OF_SCOPE' } });
    await refused('POST', '/api/v1/admins', { login: 'ars-nat-2', role: 'national' });
    await refused('POST', '/api/v1/admins', { login: 'ars-wide', role: 'regional', domains: ['bzh.mssante.localhost', 'idf.mssante.localhost'] });
    await refused('PATCH', '/api/v1/admins/ars-bzh-chef', { role: 'regional', domains: ['bzh.mssante.localhost', 'idf.mssante.localhost'] }); // its own, widened
    await refused('PATCH', '/api/v1/admins/ars-bzh-chef', { role: 'national' });
    await refused('PATCH', '/api/v1/admins/ars-idf-2', { role: 'regional', domains: ['bzh.mssante.localhost'] }); // another region's account
    await refused('POST', '/api/v1/admins/ars-idf-2/disable');
    await refused('POST', '/api/v1/admins/admin/reset', {});
    await refused('POST', '/api/v1/admins/nobody-here/disable'); // unknown: refused first, existence not told
    expect((await journal.list({ type: 'policy.refused', actor: 'admin:ars-bzh-chef' })).length).toBe(8);
    expect(await call('POST', '/api/v1/admins/nobody-here/disable', { token: national })).toMatchObject({ status: 404, body: { title: 'ADMIN_UNKNOWN' } });

    // Inside its scope: create, narrow, disable (sessions end), enable, reset.
    const made = await call('POST', '/api/v1/admins', { token: t, json: { login: 'ars-bzh-adjoint', role: 'regional', domains: ['BZH.mssante.localhost'] } });
    expect(made).toMatchObject({ status: 201, body: { account: { login: 'ars-bzh-adjoint', domains: ['bzh.mssante.localhost'], totp: false } } });
    const adj = await login('ars-bzh-adjoint', made.body.password);
    const narrowed = await call('PATCH', '/api/v1/admins/ars-bzh-adjoint', { token: t, json: { role: 'regional', structures: ['350000001'] } });
    expect(narrowed).toMatchObject({ status: 200, body: { domains: [], structures: ['1350000001'] } });
    expect((await call('POST', '/api/v1/admins/ars-bzh-adjoint/disable', { token: t })).body.active).toBe(false);
    expect((await call('GET', '/api/v1/me', { token: adj })).status).toBe(401);
    expect((await call('POST', '/api/v1/login', { json: { login: 'ars-bzh-adjoint', password: made.body.password } })).status).toBe(401);
    expect((await call('POST', '/api/v1/admins/ars-bzh-adjoint/enable', { token: t })).body.active).toBe(true);
    const reset = await call('POST', '/api/v1/admins/ars-bzh-adjoint/reset', { token: t, json: {} });
    expect(reset.status).toBe(200);
    expect((await call('POST', '/api/v1/login', { json: { login: 'ars-bzh-adjoint', password: made.body.password } })).status).toBe(401);
    await login('ars-bzh-adjoint', reset.body.password);
    // Not on itself: disabling or resetting one's own account is another admin's act.
    expect(await call('POST', '/api/v1/admins/ars-bzh-chef/disable', { token: t })).toMatchObject({ status: 409, body: { title: 'ADMIN_SELF_LOCKOUT' } });
    expect(await call('POST', '/api/v1/admins/ars-bzh-chef/reset', { token: t, json: {} })).toMatchObject({ status: 409, body: { title: 'ADMIN_SELF_LOCKOUT' } });
    const types = (await journal.list({ actor: 'admin:ars-bzh-chef', typePrefix: 'admin.account.' })).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['admin.account.created', 'admin.account.scope-changed', 'admin.account.disabled', 'admin.account.enabled', 'admin.account.credentials-reset']));
    expect(idf.account.login).toBe('ars-idf-2');
  });

  it('a second factor: enrolled with a first code, then every login needs a fresh code; failures refused with their own codes, counted by the throttle, journalled', async () => {
    const { password } = await createAdmin(db, journal, { login: 'ars-totp', role: 'regional', domains: ['bzh.mssante.localhost'] }, 'test');
    const t = await login('ars-totp', password);
    const started = await call('POST', '/api/v1/me/totp', { token: t });
    expect(started.status).toBe(200);
    expect(started.body.uri).toMatch(/^otpauth:\/\/totp\/.*ars-totp\?.*secret=/);
    const secret = started.body.secret as string;
    // Not in force before it is confirmed: a typo while enrolling locks nobody out.
    await login('ars-totp', password);
    expect(await call('POST', '/api/v1/me/totp/confirm', { token: t, json: { code: '000000' === totpCode(secret) ? '111111' : '000000' } })).toMatchObject({ status: 422, body: { title: 'ADMIN_TOTP_NOT_CONFIRMED' } });
    expect((await journal.list({ type: 'admin.totp.enrolment-failed', actor: 'admin:ars-totp' })).length).toBe(1);
    const now = Date.now();
    const confirmed = await call('POST', '/api/v1/me/totp/confirm', { token: t, json: { code: totpCode(secret, now) } });
    expect(confirmed).toMatchObject({ status: 200, body: { login: 'ars-totp', totp: true } });
    const attempt = (json: Record<string, string>) => call('POST', '/api/v1/login', { json: { login: 'ars-totp', password, ...json } });
    // The next step's code (accepted for clock drift) logs in once.
    const next = totpCode(secret, now + 30_000);
    expect((await attempt({ otp: next })).status).toBe(200);
    expect(await attempt({})).toMatchObject({ status: 401, body: { title: 'ADMIN_OTP_REQUIRED' } });
    expect(await attempt({ otp: next })).toMatchObject({ status: 401, body: { title: 'ADMIN_OTP_REPLAYED' } });
    expect(await attempt({ otp: 'abcdef' })).toMatchObject({ status: 401, body: { title: 'ADMIN_OTP_INVALID' } });
    // Three failures (the test's throttle budget): the account is locked, even for a right code.
    expect(await attempt({ otp: totpCode(secret, now + 60_000) })).toMatchObject({ status: 429, body: { title: 'LOGIN_THROTTLED' } });
    const reasons = (await journal.list({ type: 'admin.login.failed', actor: 'admin:ars-totp' })).map((e) => e.details.reason);
    expect(reasons).toEqual(expect.arrayContaining(['otp-missing', 'otp-replayed', 'bad-otp', 'throttled']));
    // A lost phone: another admin resets the credentials with the second factor (it enrols again).
    // (A session of its own: the suite's tokens live 60 s, less than a loaded run of the suite.)
    const nat = await createAdmin(db, journal, { login: 'nat-totp', role: 'national' }, 'test');
    const reset = await call('POST', '/api/v1/admins/ars-totp/reset', { token: await login('nat-totp', nat.password), json: { resetTotp: true } });
    expect(reset).toMatchObject({ status: 200, body: { account: { totp: false } } });
    expect((await journal.list({ type: 'admin.account.credentials-reset', actor: 'admin:nat-totp' })).at(-1)?.details).toMatchObject({ totpCleared: true });
  });

  it('locks an admin account after its failed logins (429, even with the right password), journals the lockout once', async () => {
    const { password } = await createAdmin(db, journal, { login: 'ars-guessed', role: 'regional', domains: ['bzh.mssante.localhost'] }, 'test');
    for (let i = 0; i < 3; i++) expect((await call('POST', '/api/v1/login', { json: { login: 'ars-guessed', password: `guess ${i}` } })).status).toBe(401);
    const locked = await call('POST', '/api/v1/login', { json: { login: 'ARS-guessed', password } });
    expect(locked).toMatchObject({ status: 429, type: 'application/problem+json', body: { title: 'LOGIN_THROTTLED', detail: 'too many failed logins for this account; try again in 15 min' } });
    expect(await journal.list({ type: 'auth.locked', subject: 'ars-guessed' })).toMatchObject([{ details: { key: 'account', realm: 'admin', failures: 3, front: 'admin-api' } }]);
    expect((await journal.list({ type: 'admin.login.failed', actor: 'admin:ARS-guessed' }))[0]).toMatchObject({ details: { reason: 'throttled', throttled: 'account' } });
    // Other admin accounts are not concerned.
    expect((await call('POST', '/api/v1/login', { json: { login: 'admin', password: 'still wrong' } })).status).toBe(401);
  });
});
