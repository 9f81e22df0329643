// A Pro Santé Connect login in the webmail, end to end through the real fronts: the webmail's
// listener (its worker process) sends the browser to the stand-in PSC, whose login page is
// filled in; the callback opens the session cookie; the person then reads their box through
// the IMAP proxy. Refusals (a denial at PSC, an unknown professional, an answer that belongs
// to another browser's login) go back to the page with their reason, journalled.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PSC_CALLBACK_PATH, PSC_START_PATH } from '../../identity/psc/index.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki } from '../helpers/pki.js';
import { CookieBrowser, standinLogin } from '../helpers/psc.js';

const D = 'mssante.localhost';
const JEANNE = '810000000201';
const NOBODY = '810000000299';

let op: TestOperator;
let ca: string;
let base: string;
let jeanne: { login: string; address: string };
const isCallback = (u: URL) => u.pathname === PSC_CALLBACK_PATH;

async function events(type: string, since: number) {
  const { rows } = await op.platform.db.query<{ actor: string; subject: string; details: Record<string, unknown> }>('SELECT actor, subject, details FROM journal_events WHERE type = $1 AND seq > $2 ORDER BY seq', [type, since]);
  return rows;
}
const head = async () => Number((await op.platform.db.query<{ seq: string }>('SELECT seq FROM journal_head')).rows[0].seq);

beforeAll(async () => {
  const pki = await testPki();
  ca = pki.read('chain.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  jeanne = await op.person('jeanne.martin', JEANNE);
  await op.synced();
  base = op.platform.webmail!.url;
});
afterAll(async () => {
  await op?.stop();
});

/** The webmail's start, PSC's page filled in, and the callback in the same browser; the callback's answer. */
async function pscLogin(b: CookieBrowser, o: Parameters<typeof standinLogin>[2]) {
  const start = await b.send(`${base}${PSC_START_PATH}`);
  expect(start.status).toBe(303);
  expect(start.location).toContain(op.platform.psc!.issuer);
  expect(start.setCookie.join('\n')).toMatch(/__Host-mss-webmail-psc=[^;]+; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600/);
  const callback = await standinLogin(b, start.location!, o, isCallback);
  return { callback, answer: await b.send(callback) };
}

describe('webmail: login with Pro Santé Connect (OIDC code + PKCE through the stand-in)', () => {
  it('opens the webmail session for the professional named by PSC; acr kept in the session and the journal', async () => {
    const since = await head();
    const b = new CookieBrowser(ca);
    const { answer } = await pscLogin(b, { idnps: JEANNE, means: 'cps' });
    expect(answer.status).toBe(303);
    expect(new URL(answer.location!).pathname).toBe('/ui/webmail/');
    expect(answer.setCookie.join('\n')).toMatch(/__Host-mss-webmail-session=mss_wt_[^;]+; Path=\/; Secure; SameSite=Strict; HttpOnly/);
    expect(b.cookies(base).has('__Host-mss-webmail-psc')).toBe(false);
    const me = await b.send(`${base}/api/v1/me`);
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toEqual({ login: 'jeanne.martin', idnps: JEANNE, auth: 'psc', acr: 'eidas1' });
    // The session reads the box through the IMAP proxy as the person.
    const folders = await b.send(`${base}/api/v1/bals/${encodeURIComponent(jeanne.address)}/folders`);
    expect(folders.status).toBe(200);
    expect(JSON.parse(folders.body).map((f: { path: string }) => f.path)).toContain('INBOX');
    const [login] = await events('webmail.login', since);
    expect(login).toMatchObject({ actor: 'person:jeanne.martin', subject: 'jeanne.martin', details: { auth: 'psc', acr: 'eidas1', amr: ['cps'] } });
  });

  it('a denial at PSC, an unknown professional, or an answer from another browser\'s login: back to the page with the reason, journalled', async () => {
    const since = await head();
    const denied = await pscLogin(new CookieBrowser(ca), { idnps: JEANNE, deny: true });
    expect(denied.answer.location).toMatch(/\/ui\/webmail\/#psc-erreur=denied$/);
    expect(denied.answer.setCookie.join('\n')).not.toMatch(/mss-webmail-session=mss_wt_/);
    const unknown = await pscLogin(new CookieBrowser(ca), { other: NOBODY });
    expect(unknown.answer.location).toMatch(/#psc-erreur=no-account$/);
    // Login CSRF: a callback made for one browser, opened in another (which started its own login).
    const attacker = await pscLogin(new CookieBrowser(ca), { idnps: JEANNE }).then(async () => {
      const b = new CookieBrowser(ca);
      const start = await b.send(`${base}${PSC_START_PATH}`);
      return { b, start };
    });
    const victim = new CookieBrowser(ca);
    await victim.send(`${base}${PSC_START_PATH}`);
    const stolen = await standinLogin(attacker.b, attacker.start.location!, { idnps: JEANNE }, isCallback);
    const crossed = await victim.send(stolen);
    expect(crossed.location).toMatch(/#psc-erreur=state$/);
    expect(victim.cookies(base).has('__Host-mss-webmail-session')).toBe(false);
    // And with no login started at all.
    expect((await new CookieBrowser(ca).send(stolen)).location).toMatch(/#psc-erreur=state$/);
    const failed = await events('webmail.login.failed', since);
    expect(failed.map((e) => e.details.failure)).toEqual(['denied', 'no-account', 'state', 'state']);
    expect(failed.every((e) => e.details.auth === 'psc')).toBe(true);
    expect(failed[1].details.idnps).toBe(NOBODY);
  });

  it('refuses a callback with parameters PSC never sends', async () => {
    const r = await new CookieBrowser(ca).send(`${base}${PSC_CALLBACK_PATH}?code=x&state=y&inject=z`);
    expect(r.status).toBe(400);
  });
});
