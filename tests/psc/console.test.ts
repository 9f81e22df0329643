// Pro Santé Connect login to the operator console: an admin account bound to a professional's
// RPPS (mss admin psc) is opened by a PSC login naming it, through the real admin listener and
// the stand-in PSC; a professional whose RPPS no admin account carries is refused (even one
// with a mailbox here), journalled.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { setAdminNationalId } from '../../annuaire/admin/psc.js';
import { PSC_CALLBACK_PATH, PSC_START_PATH } from '../../identity/psc/index.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki } from '../helpers/pki.js';
import { CookieBrowser, standinLogin } from '../helpers/psc.js';
import { https } from '../hostile/http.js';

const D = 'mssante.localhost';
const ADMIN_RPPS = '10000000401';
const PERSON = '810000000402';
const NATIONAL_RPPS = '10000000403';
let natPassword: string;
let op: TestOperator;
let ca: string;
let base: string;
const isCallback = (u: URL) => u.pathname === PSC_CALLBACK_PATH;

beforeAll(async () => {
  const pki = await testPki();
  ca = pki.read('chain.pem');
  // admin.requireTotp on, as in production: a national account's PSC session counts as its second factor.
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [], overrides: { admin: { enabled: true, port: 0, requireTotp: true } } });
  const { db, journal } = op.platform;
  await createAdmin(db, journal, { login: 'regional.idf', role: 'regional', domains: [D] }, 'test');
  await setAdminNationalId(db, journal, 'regional.idf', ADMIN_RPPS, 'test');
  natPassword = (await createAdmin(db, journal, { login: 'national.psc', role: 'national' }, 'test')).password;
  await setAdminNationalId(db, journal, 'national.psc', NATIONAL_RPPS, 'test');
  await op.person('jeanne.martin', PERSON);
  base = op.platform.admin!.url;
});
afterAll(async () => {
  await op?.stop();
});

async function consoleLogin(o: Parameters<typeof standinLogin>[2]) {
  const b = new CookieBrowser(ca);
  const start = await b.send(`${base}${PSC_START_PATH}`);
  expect(start.status).toBe(303);
  expect(start.setCookie.join('\n')).toMatch(/__Host-mss-admin-psc=/);
  const answer = await b.send(await standinLogin(b, start.location!, o, isCallback));
  return { b, answer };
}

describe('console: login with Pro Santé Connect', () => {
  it("opens the console session of the admin account bound to the professional's RPPS (journalled auth psc, acr)", async () => {
    const { b, answer } = await consoleLogin({ other: `8${ADMIN_RPPS}`, means: 'e-cps' });
    expect(answer.location).toMatch(/\/ui\/console\/$/);
    expect(answer.setCookie.join('\n')).toMatch(/__Host-mss-admin-session=mssadm_/);
    const me = await b.send(`${base}/api/v1/me`);
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toMatchObject({ login: 'regional.idf', role: 'regional', domains: [D] });
    const { rows } = await op.platform.db.query<{ actor: string; details: Record<string, unknown> }>("SELECT actor, details FROM journal_events WHERE type = 'admin.login' ORDER BY seq DESC LIMIT 1");
    expect(rows[0]).toMatchObject({ actor: 'admin:regional.idf', details: { auth: 'psc', acr: 'eidas1', amr: ['e-cps'] } });
  });

  it('refuses a professional no admin account is bound to, even one with a mailbox here', async () => {
    const { b, answer } = await consoleLogin({ other: PERSON });
    expect(answer.location).toMatch(/\/ui\/console\/#psc-erreur=no-account$/);
    expect(b.cookies(base).has('__Host-mss-admin-session')).toBe(false);
    const { rows } = await op.platform.db.query<{ subject: string; details: Record<string, unknown> }>("SELECT subject, details FROM journal_events WHERE type = 'admin.login.failed' ORDER BY seq DESC LIMIT 1");
    expect(rows[0]).toMatchObject({ subject: PERSON, details: { auth: 'psc', reason: 'no-account' } });
  });

  it('a national account needs no TOTP on a PSC session (CPS or e-CPS is two factors); with its password alone it must enrol one first', async () => {
    const { b, answer } = await consoleLogin({ other: `8${NATIONAL_RPPS}`, means: 'cps' });
    expect(answer.location).toMatch(/\/ui\/console\/$/);
    expect((await b.send(`${base}/api/v1/bals`)).status).toBe(200);
    const token = (await https(base, ca, 'POST', '/api/v1/login', { json: { login: 'national.psc', password: natPassword } })).json().token as string;
    const refused = await https(base, ca, 'GET', '/api/v1/bals', { token });
    expect([refused.status, refused.json().title]).toEqual([403, 'ADMIN_TOTP_ENROLMENT_REQUIRED']);
  });
});
