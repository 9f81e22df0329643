import { mkdtempSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { createAdminServer } from '../../annuaire/admin/server.js';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { balFactSource } from '../../annuaire/bal/index.js';
import { currentWhitelist, whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import { loadConfig } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { LoginThrottle, Policy } from '../../core/policy/index.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { encodeFile, mssanteLines } from '../helpers/rpps-generator.js';
import { generatedName, makeWhitelistXml } from '../helpers/whitelist.js';
import { call as callAt, type Reply } from '../webmail/stack.js';

// The admin API's import routes as the operator console uses them: a liste blanche previewed
// then applied exactly as previewed (keyed by the file's and the list in place's SHA-256), and
// a national extraction uploaded under a size cap and imported as a job whose progress and
// rejected lines are read while it runs. Every refusal answered in problem+json and journalled.

const PASSWORD = 'imports-mot-de-passe-2026';
/** Small, so the size cap is tested with small files. */
const MAX_UPLOAD = 64 * 1024;

describe.each(dbTargets())('admin API imports (preview, jobs, refusals) on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let app: FastifyInstance;
  let pki: TestPki;
  let base = '';
  let national = '';
  let regional = '';
  let uploadDir = '';
  /** An import held at a step until the test lets it go (importFiles' onStep). */
  let hold: { step: string; reached: () => void; release: Promise<void> } | null = null;

  const call = (method: string, path: string, o: Parameters<typeof callAt>[4] = {}) => callAt(base, pki.read('ca.pem'), method, path, o);
  const xml = (spec: Parameters<typeof makeWhitelistXml>[0]) => Buffer.from(makeWhitelistXml(spec));
  const whitelist = (token: string, body: Buffer, query = '') => call('POST', `/api/v1/imports/whitelist${query}`, { token, body, contentType: 'application/xml' });
  const refusals = (type = 'admin.import.refused') => journal.list({ type, limit: 1000 });
  const problem = (r: Reply) => ({ status: r.status, type: String(r.headers['content-type']).split(';')[0], title: r.json().title as string });
  const until = async (f: () => Promise<boolean>) => {
    while (!(await f())) await new Promise((r) => setTimeout(r, 20));
  };

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    pki = await testPki();
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-admin-imports-'));
    uploadDir = join(dataDir, 'uploads');
    const domains = ['mssante.localhost', 'bzh.mssante.localhost'];
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: domains });
    const ctx = operatorBalContext({ operator: { domain: domains[0], domains: domains.slice(1) }, tls: { caFile: pki.file('chain.pem'), crlFile: pki.file('crl.pem') } } as never, db, journal);
    const tls = serverTlsOptions(loadTlsMaterial({ tls: { certFile: pki.file('server.pem'), keyFile: pki.file('server.key'), chainFile: pki.file('intermediate.pem'), caFile: pki.file('ca.pem'), crlFile: pki.file('crl.pem') } }));
    app = await createAdminServer(
      {
        db,
        journal,
        policy,
        bal: ctx,
        tokenTtlMs: 3_600_000,
        throttle: new LoginThrottle(loadConfig({ env: {} }).auth, { db, journal }),
        uploadDir,
        reportDir: join(dataDir, 'reports'),
        uploadMaxBytes: MAX_UPLOAD,
        importOnStep: async (step) => {
          const h = hold;
          if (h && h.step === step) {
            h.reached();
            await h.release;
          }
        },
      },
      tls,
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await createAdmin(db, journal, { login: 'nat', role: 'national', password: PASSWORD }, 'test');
    await createAdmin(db, journal, { login: 'ars-bzh', role: 'regional', domains: ['bzh.mssante.localhost'], password: PASSWORD }, 'test');
    const login = async (l: string) => (await call('POST', '/api/v1/login', { json: { login: l, password: PASSWORD } })).json().token as string;
    national = await login('nat');
    regional = await login('ars-bzh');
  });
  afterAll(async () => {
    await app?.close();
    await dispose?.();
  });

  it('liste blanche: a preview tells what would change and writes nothing; the confirmation applies exactly that, journalled as an import', async () => {
    const first = xml({ count: 30, generatedAt: '2026-03-01T00:00:00' });
    const events = (await journal.list({ limit: 1 }))[0]?.seq ?? 0;
    const p = await whitelist(national, first, '?dryRun=true');
    expect(p.status, p.body.toString()).toBe(200);
    const preview = p.json();
    expect(preview).toMatchObject({ dryRun: true, base: null, domains: 30, unchanged: false, removed: [], changed: [], changes: [] });
    expect(preview.added).toHaveLength(30);
    expect(preview.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await currentWhitelist(db)).toBeNull();
    expect((await journal.list({ limit: 1 }))[0]?.seq ?? 0).toBe(events);

    const applied = await whitelist(national, first, `?sha256=${preview.sha256}&base=none`);
    expect(applied.status, applied.body.toString()).toBe(200);
    expect(applied.json()).toMatchObject({ dryRun: false, sha256: preview.sha256, added: preview.added });
    expect((await currentWhitelist(db))!.domains).toBe(30);
    expect((await journal.list({ type: 'whitelist.imported' }))[0]).toMatchObject({ actor: 'admin:nat', details: { sha256: preview.sha256, added: 30 } });

    // The next list: two domains gone, one changed, one new. The preview names each, and what changed in it.
    const next = xml({ count: 30, generatedAt: '2026-04-01T00:00:00', drop: [1, 2], change: [3], extra: [{ nom: 'nouveau.op1.mssante.fr' }] });
    const p2 = (await whitelist(national, next, '?dryRun=true')).json();
    expect(p2).toMatchObject({ dryRun: true, base: preview.sha256, added: ['nouveau.op1.mssante.fr'], removed: [generatedName(1), generatedName(2)].sort(), changed: [generatedName(3)] });
    expect(p2.changes).toEqual([{ domain: generatedName(3), fields: [{ field: 'Description', before: 'Établissement 3 — opérateur 3', after: 'Établissement 3 — opérateur 3 (modifié)' }] }]);
    expect((await currentWhitelist(db))!.domains).toBe(30);

    // Another file than the one previewed: refused, nothing changed, journalled.
    const other = xml({ count: 30, generatedAt: '2026-04-01T00:00:00', drop: [1] });
    const wrong = await whitelist(national, other, `?sha256=${p2.sha256}&base=${p2.base}`);
    expect(problem(wrong)).toEqual({ status: 409, type: 'application/problem+json', title: 'WHITELIST_PREVIEW_MISMATCH' });
    expect(wrong.json().detail).toContain('is not the one previewed');
    expect((await currentWhitelist(db))!.domains).toBe(30);
    expect((await refusals())[0]).toMatchObject({ actor: 'admin:nat', details: { route: 'POST /api/v1/imports/whitelist', status: 409, code: 'WHITELIST_PREVIEW_MISMATCH' } });

    // The previewed file, but the list in place changed meanwhile (another import): refused too.
    const meanwhile = (await whitelist(national, xml({ count: 31, generatedAt: '2026-03-15T00:00:00' }))).json();
    expect(meanwhile).toMatchObject({ dryRun: false, added: [generatedName(30)] });
    const stale = await whitelist(national, next, `?sha256=${p2.sha256}&base=${p2.base}`);
    expect(problem(stale).title).toBe('WHITELIST_PREVIEW_MISMATCH');
    expect(stale.json().detail).toContain('the list in place changed since the preview');
    expect((await currentWhitelist(db))!.domains).toBe(31);

    // Previewed again against the list now in place, it applies.
    const p3 = (await whitelist(national, next, '?dryRun=true')).json();
    expect(p3.base).toBe(meanwhile.sha256);
    expect(p3.removed).toEqual([generatedName(1), generatedName(2), generatedName(30)].sort());
    const ok = await whitelist(national, next, `?sha256=${p3.sha256}&base=${p3.base}`);
    expect(ok.json()).toMatchObject({ added: p3.added, removed: p3.removed, changed: p3.changed });
    expect((await journal.list({ type: 'whitelist.domain.removed', subject: generatedName(30) })).length).toBe(1);
  });

  it('liste blanche refusals: a regional admin, a bad file, an older list, a file over the cap, a half confirmation — each journalled', async () => {
    const policyBefore = (await refusals('policy.refused')).length;
    const before = (await refusals()).length;
    const r = await whitelist(regional, xml({ count: 3, generatedAt: '2027-01-01T00:00:00' }), '?dryRun=true');
    expect(problem(r)).toMatchObject({ status: 403, title: 'ADMIN_OUT_OF_SCOPE' });
    expect((await refusals('policy.refused'))[0]).toMatchObject({ actor: 'admin:ars-bzh' });
    expect((await refusals('policy.refused')).length).toBe(policyBefore + 1);

    const dtd = await whitelist(national, xml({ count: 3, generatedAt: '2027-01-01T00:00:00', prolog: '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' }), '?dryRun=true');
    expect(problem(dtd)).toMatchObject({ status: 422, title: 'WHITELIST_INVALID' });
    const garbage = await whitelist(national, Buffer.from('ceci n\'est pas une liste'), '?dryRun=true');
    expect(problem(garbage)).toMatchObject({ status: 422, title: 'WHITELIST_INVALID' });
    const older = await whitelist(national, xml({ count: 3, generatedAt: '2025-01-01T00:00:00' }), '?dryRun=true');
    expect(problem(older)).toMatchObject({ status: 409, title: 'WHITELIST_OLDER' });
    const half = await whitelist(national, xml({ count: 3 }), `?sha256=${'a'.repeat(64)}`);
    expect(problem(half)).toMatchObject({ status: 400, title: 'BAD_REQUEST' });
    // 64 MiB is the cap: refused from its Content-Length, before its bytes are read.
    const huge = await whitelist(national, Buffer.alloc((64 << 20) + 1, 0x20));
    expect(problem(huge)).toMatchObject({ status: 413, title: 'HTTP_BODY_TOO_LARGE' });

    const logged = (await refusals()).slice(0, (await refusals()).length - before).reverse();
    expect(logged.map((e) => [e.details.status, e.details.code])).toEqual([
      [422, 'WHITELIST_INVALID'],
      [422, 'WHITELIST_INVALID'],
      [409, 'WHITELIST_OLDER'],
      [400, 'BAD_REQUEST'],
      [413, 'HTTP_BODY_TOO_LARGE'],
    ]);
    expect(logged.every((e) => e.actor === 'admin:nat' && typeof e.details.reason === 'string')).toBe(true);
  });

  /** POST …/jobs asking for the stream: each job line handed to `seen` as it arrives; the status and every line at the end. */
  const streamed = (path: string, body: Buffer, seen: (job: any) => void) =>
    new Promise<{ status: number; type: string; lines: any[] }>((resolve, reject) => {
      const u = new URL(path, base);
      const headers = { authorization: `Bearer ${national}`, accept: 'application/x-ndjson', 'content-type': 'text/plain', 'content-length': String(body.length) };
      const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', ca: pki.read('ca.pem'), servername: 'localhost', headers }, (res) => {
        const lines: any[] = [];
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const job = JSON.parse(buf.slice(0, i));
            buf = buf.slice(i + 1);
            lines.push(job);
            seen(job);
          }
        });
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), lines }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('an extraction as a job: its progress streamed while it runs (from memory: on PGlite the import holds the database), its outcome, rejected lines and report at the end', async () => {
    const name = 'Extraction_Correspondance_MSSante_202603010000.txt';
    const bad: number[] = [];
    const file = encodeFile(mssanteLines({ lines: 200, seed: 11, malformed: 4, onBad: (n) => bad.push(n) }));
    expect(file.length).toBeLessThan(MAX_UPLOAD);
    let reached!: () => void;
    const atStaged = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    hold = { step: 'staged', reached, release: new Promise<void>((r) => (release = r)) };
    let mid: any = null;
    try {
      // The import is held once the file is read (inside its transaction): the line saying so has already come.
      const answer = streamed(`/api/v1/imports/extractions/jobs?name=${name}`, file, (job) => {
        if (job.phase === 'applying' && !mid) {
          mid = job;
          void atStaged.then(release);
        }
      });
      await atStaged;
      const { status, type, lines } = await answer;
      expect(status).toBe(202);
      expect(type).toBe('application/x-ndjson');
      expect(lines[0]).toMatchObject({ name, actor: 'admin:nat', dryRun: false, state: 'running', total: file.length });
      expect(lines[0].id).toMatch(/^[0-9a-f]{32}$/);
      expect(new Set(lines.map((l) => l.id)).size).toBe(1);
      // Percent only grows; the apply comes after the whole file was read; the last line is the end.
      const percents = lines.map((l) => l.percent);
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      expect(mid).toMatchObject({ state: 'running', phase: 'applying', bytes: file.length, percent: 100, lines: 204, rejected: 4, outcome: null });
      expect(mid.rejects.map((x: { line: number }) => x.line)).toEqual(bad);
      const done = lines.at(-1);
      expect(done).toMatchObject({ state: 'done', phase: 'finished', lines: 204, rejected: 4, error: null });
      expect(lines.filter((l) => l.state !== 'running')).toHaveLength(1);
      expect(done.outcome.failures).toEqual([]);
      expect(done.outcome.results[0]).toMatchObject({ file: name, kind: 'mssante', applied: true, lines: 204, rejected: 4 });
      expect(done.rejects).toHaveLength(4);
      expect(done.rejects.every((x: { file: string; reason: string }) => x.file === name && x.reason.length > 0)).toBe(true);
      expect(JSON.stringify(lines)).not.toContain(uploadDir);
      // The same job, asked for by its id.
      const again = await call('GET', `/api/v1/imports/extractions/jobs/${done.id}`, { token: national });
      expect(again.json()).toEqual(done);
      const report = await call('GET', `/api/v1/imports/extractions/jobs/${done.id}/report`, { token: national });
      expect(report.status).toBe(200);
      expect(report.headers['content-type']).toMatch(/^text\/tab-separated-values/);
      expect(report.headers['content-disposition']).toBe('attachment; filename="rejets-Extraction_Correspondance_MSSante_202603010000.tsv"');
      const rows = report.body.toString('utf8').split('\n').filter((l) => l && !l.startsWith('#'));
      expect(rows.map((l) => l.split('\t')[0])).toEqual(bad.map((n) => `${name}:${n}`));
      expect(report.body.toString('utf8')).not.toContain(uploadDir);
      expect((await journal.list({ type: 'annuaire.import' }))[0]).toMatchObject({ actor: 'admin:nat', subject: name });
      expect(readdirSync(uploadDir)).toEqual([]);
    } finally {
      hold = null;
    }
  });

  it('an extraction as a job without the stream: 202 and the job, then read by its id until it ends; a report is only there once it ended', async () => {
    const name = 'Extraction_Correspondance_MSSante_202603150000.txt';
    const started = await call('POST', `/api/v1/imports/extractions/jobs?name=${name}&dryRun=true`, { token: national, body: encodeFile(mssanteLines({ lines: 30, seed: 12 })) });
    expect(started.status, started.body.toString()).toBe(202);
    const id = started.json().id;
    expect(started.json()).toMatchObject({ name, dryRun: true });
    await until(async () => (await call('GET', `/api/v1/imports/extractions/jobs/${id}`, { token: national })).json().state !== 'running');
    const done = (await call('GET', `/api/v1/imports/extractions/jobs/${id}`, { token: national })).json();
    expect(done).toMatchObject({ state: 'done', outcome: { results: [{ file: name, dryRun: true, applied: false }] } });
    expect((await call('GET', `/api/v1/imports/extractions/jobs/${id}/report`, { token: national })).status).toBe(200);
  });

  it('extraction refusals: a regional admin, a file over the cap (declared or not), a bad name, a file that is no extraction, an unknown job — each journalled', async () => {
    const name = 'Extraction_Correspondance_MSSante_202604010000.txt';
    const small = encodeFile(mssanteLines({ lines: 5, seed: 3 }));
    const before = (await refusals()).length;
    const r = await call('POST', `/api/v1/imports/extractions/jobs?name=${name}`, { token: regional, body: small });
    expect(problem(r)).toMatchObject({ status: 403, title: 'ADMIN_OUT_OF_SCOPE' });

    const big = Buffer.alloc(MAX_UPLOAD + 1, 0x41);
    for (const path of ['/api/v1/imports/extractions/jobs', '/api/v1/imports/extractions']) {
      expect(problem(await call('POST', `${path}?name=${name}`, { token: national, body: big }))).toMatchObject({ status: 413, title: 'HTTP_BODY_TOO_LARGE' });
    }
    // Without a Content-Length (chunked): refused once the count passes the cap; nothing kept.
    const chunked = await new Promise<{ status: number; title: string }>((resolve, reject) => {
      const u = new URL(`/api/v1/imports/extractions/jobs?name=${name}`, base);
      const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', ca: pki.read('ca.pem'), servername: 'localhost', headers: { authorization: `Bearer ${national}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, title: JSON.parse(Buffer.concat(chunks).toString()).title }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(MAX_UPLOAD / 8, 0x41));
      req.end();
    });
    expect(chunked).toEqual({ status: 413, title: 'HTTP_BODY_TOO_LARGE' });
    expect(readdirSync(uploadDir)).toEqual([]);

    expect(problem(await call('POST', '/api/v1/imports/extractions/jobs?name=../../etc/passwd', { token: national, body: small }))).toMatchObject({ status: 400, title: 'BAD_REQUEST' });
    expect(problem(await call('GET', `/api/v1/imports/extractions/jobs/${'0'.repeat(32)}`, { token: national }))).toMatchObject({ status: 404, title: 'NOT_FOUND' });

    const logged = (await refusals()).slice(0, (await refusals()).length - before).reverse();
    expect(logged.map((e) => [e.details.route, e.details.status, e.details.code])).toEqual([
      ['POST /api/v1/imports/extractions/jobs', 413, 'HTTP_BODY_TOO_LARGE'],
      ['POST /api/v1/imports/extractions', 413, 'HTTP_BODY_TOO_LARGE'],
      ['POST /api/v1/imports/extractions/jobs', 413, 'HTTP_BODY_TOO_LARGE'],
      ['POST /api/v1/imports/extractions/jobs', 400, 'BAD_REQUEST'],
      ['GET /api/v1/imports/extractions/jobs/:id', 404, 'NOT_FOUND'],
    ]);
    expect(logged[0]).toMatchObject({ actor: 'admin:nat', subject: name });

    // Not an extraction: the job ends with the importer's refusal, journalled by the importer.
    const junk = await call('POST', `/api/v1/imports/extractions/jobs?name=${name}`, { token: national, body: Buffer.from('nom|prénom\nDupont|Jean\n') });
    expect(junk.status).toBe(202);
    const id = junk.json().id;
    await until(async () => (await call('GET', `/api/v1/imports/extractions/jobs/${id}`, { token: national })).json().state !== 'running');
    const j = (await call('GET', `/api/v1/imports/extractions/jobs/${id}`, { token: national })).json();
    expect(j).toMatchObject({ state: 'done', outcome: { results: [], failures: [{ file: name, code: 'ANNUAIRE_UNKNOWN_FILE' }] } });
    expect((await journal.list({ type: 'annuaire.import.failed' }))[0]).toMatchObject({ actor: 'admin:nat', subject: name, details: { code: 'ANNUAIRE_UNKNOWN_FILE' } });
  });
});
