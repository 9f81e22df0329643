import { Secret, TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { expectAccessible, launch, logIn, newPage as pageIn, poll, shot } from '../helpers/browser.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call } from '../webmail/stack.js';

// The console's admin accounts and second factor in Debian's Chromium, against a real
// operator with admin.requireTotp on (the production default): a national account enrols
// its TOTP at its first login (codes computed here with otpauth, as an authenticator app
// would), then logs in with a code; accounts are listed, created, narrowed, disabled, reset;
// a regional admin sees only its scope and is refused a national account or a wider scope.
// Every wait is for something the page shows or a reply, never for a duration.

const D = 'mssante.localhost';
const BZH = 'bzh.mssante.localhost';
const IDF = 'idf.mssante.localhost';
const PASSWORD = 'console-comptes-mot-de-passe';
const admins = { national: 'nat.totp', bzh: 'ars-bretagne', idf: 'ars-idf' };
let pki: TestPki;
let op: TestOperator;
let browser: Browser;
let base = '';
let ca = '';
/** The national account's enrolled secret (base32), once the browser enrolled it. */
let secret = '';

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [], overrides: { operator: { domains: [BZH, IDF] }, admin: { enabled: true, port: 0, requireTotp: true } } });
  base = op.platform.admin!.url;
  const { db, journal } = op.platform;
  await createAdmin(db, journal, { login: admins.national, role: 'national', password: PASSWORD }, 'test');
  await createAdmin(db, journal, { login: admins.bzh, role: 'regional', domains: [BZH], password: PASSWORD }, 'test');
  await createAdmin(db, journal, { login: admins.idf, role: 'regional', domains: [IDF], password: PASSWORD }, 'test');
  browser = await launch(pki.read('server.pem'));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await op?.stop();
});

const home = () => `${base}/`;
const newPage = () => pageIn(browser);
const PERIOD = 30_000;
/** The code an authenticator app shows at this time, from the otpauth library itself. */
const codeAt = (at: number) => TOTP.generate({ secret: Secret.fromBase32(secret), digits: 6, period: 30, timestamp: at });
/** The last time step a code was given for: each step logs in once. */
let lastStep = 0;
/**
 * A code no login has used yet that the server accepts (it takes the current step ± 1): this
 * step's, or the next one's when this one was used. When both were used, it waits for the
 * clock to reach the next step — a condition, not a margin.
 */
async function freshCode(): Promise<string> {
  for (;;) {
    const now = Date.now();
    const step = Math.max(Math.floor(now / PERIOD), lastStep + 1);
    if (step <= Math.floor(now / PERIOD) + 1) {
      lastStep = step;
      return codeAt(step * PERIOD);
    }
    await new Promise((r) => setTimeout(r, (step - 1) * PERIOD - now + 1));
  }
}
const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name }).waitFor();

describe('admin accounts and the second factor in the console', () => {
  it('a national account without a second factor may only enrol one: the API refuses all else (journalled), the console opens the enrolment', async () => {
    const token = (await call(base, ca, 'POST', '/api/v1/login', { json: { login: admins.national, password: PASSWORD } })).json().token as string;
    const refused = await call(base, ca, 'GET', '/api/v1/bals', { token });
    expect(refused.status).toBe(403);
    expect(refused.json().title).toBe('ADMIN_TOTP_ENROLMENT_REQUIRED');
    expect((await call(base, ca, 'GET', '/api/v1/admins', { token })).status).toBe(403);
    expect((await call(base, ca, 'GET', '/api/v1/me', { token })).status).toBe(200);
    expect((await op.platform.journal.list({ type: 'policy.refused', actor: `admin:${admins.national}` })).map((e) => e.details.code)).toEqual(['ADMIN_TOTP_ENROLMENT_REQUIRED', 'ADMIN_TOTP_ENROLMENT_REQUIRED']);

    const { context, page } = await newPage();
    expect((await logIn(page, home(), { login: admins.national, password: PASSWORD })).status()).toBe(200);
    await heading(page, 'Validation en deux étapes');
    await poll(() => page.getByRole('status').first().textContent()).toContain("doit d'abord activer la validation en deux étapes");
    await expectAccessible(page, 'second factor, not enrolled');
    await page.getByRole('button', { name: 'Commencer' }).click();
    secret = (await page.locator('#t-secret').textContent())!.trim();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(await page.locator('#t-uri').textContent()).toMatch(new RegExp(`^otpauth://totp/.*${admins.national}\\?.*secret=${secret}`));
    await expectAccessible(page, 'second factor, secret shown');
    await shot(page, 'console-double-authentification');
    // A wrong code is refused in French; the right one enrols.
    await page.getByLabel('Code de vérification').fill(codeAt(Date.now()) === '000000' ? '111111' : '000000');
    await page.getByRole('button', { name: 'Confirmer' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toContain('Ce code ne correspond pas');
    await page.getByLabel('Code de vérification').fill(await freshCode());
    await page.getByRole('button', { name: 'Confirmer' }).click();
    await poll(() => page.getByRole('status').first().textContent()).toContain('Validation en deux étapes activée');
    await expectAccessible(page, 'second factor, enrolled');
    expect((await op.platform.journal.list({ type: 'admin.totp.enrolled', actor: `admin:${admins.national}` })).length).toBe(1);
    await context.close();
  });

  it('once enrolled, the console login asks for the code: missing or replayed is told, a fresh one logs in', async () => {
    const { context, page } = await newPage();
    const missing = await logIn(page, home(), { login: admins.national, password: PASSWORD });
    expect(missing.status()).toBe(401);
    await poll(() => page.getByRole('alert').textContent()).toContain('demande aussi un code de vérification');
    await expectAccessible(page, 'console login, code required');
    // A code the enrolment did not use logs in once.
    const next = await freshCode();
    expect((await logIn(page, home(), { login: admins.national, password: PASSWORD }, () => next)).status()).toBe(200);
    await heading(page, 'Tableau de bord');
    await page.getByRole('button', { name: 'Se déconnecter' }).click();
    const replayed = await logIn(page, home(), { login: admins.national, password: PASSWORD }, () => next);
    expect(replayed.status()).toBe(401);
    await poll(() => page.getByRole('alert').textContent()).toContain('a déjà servi');
    const reasons = (await op.platform.journal.list({ type: 'admin.login.failed', actor: `admin:${admins.national}` })).map((e) => e.details.reason);
    expect(reasons).toEqual(expect.arrayContaining(['otp-missing', 'otp-replayed']));
    await context.close();
  });

  it('a national admin lists, creates, narrows, disables, enables and resets accounts', async () => {
    const { context, page } = await newPage();
    const code = await freshCode();
    expect((await logIn(page, home(), { login: admins.national, password: PASSWORD }, () => code)).status()).toBe(200);
    await heading(page, 'Tableau de bord');
    await page.getByRole('link', { name: 'Comptes admin' }).click();
    await heading(page, 'Comptes administrateurs');
    const table = page.getByRole('table');
    for (const l of Object.values(admins)) await table.getByRole('link', { name: l, exact: true }).waitFor();
    await expectAccessible(page, 'admin accounts');

    await page.getByLabel('Identifiant').fill('ars-bretagne-2');
    await page.getByLabel('Rôle').selectOption('regional');
    await page.getByLabel('Domaines du périmètre').fill(`${BZH}, ${IDF}`);
    await page.getByRole('button', { name: 'Créer le compte' }).click();
    const password = (await page.locator('.resultat code.secret').textContent())!.trim();
    expect(password.length).toBeGreaterThanOrEqual(12);
    await shot(page, 'console-comptes');
    await page.getByRole('link', { name: 'ars-bretagne-2' }).first().click();
    await heading(page, 'Compte ars-bretagne-2');
    await expectAccessible(page, 'one admin account');
    await page.getByLabel('Domaines du périmètre').fill(BZH);
    await page.getByRole('button', { name: 'Enregistrer le périmètre' }).click();
    await poll(() => page.getByRole('status').first().textContent()).toContain('Périmètre enregistré');
    expect(await page.locator('dl.fiche').textContent()).not.toContain(IDF);
    await page.getByRole('button', { name: 'Désactiver' }).click();
    await poll(() => page.getByRole('status').first().textContent()).toContain('Compte désactivé');
    expect((await call(base, ca, 'POST', '/api/v1/login', { json: { login: 'ars-bretagne-2', password } })).status).toBe(401);
    await page.getByRole('button', { name: 'Réactiver' }).click();
    await poll(() => page.getByRole('status').first().textContent()).toContain('Compte réactivé');
    await page.getByRole('button', { name: 'Réinitialiser' }).click();
    const fresh = (await page.locator('.resultat code.secret').textContent())!.trim();
    expect(fresh).not.toBe(password);
    expect((await call(base, ca, 'POST', '/api/v1/login', { json: { login: 'ars-bretagne-2', password: fresh } })).status).toBe(200);
    // The journal lists the newest first.
    const types = (await op.platform.journal.list({ actor: `admin:${admins.national}`, typePrefix: 'admin.account.' })).map((e) => e.type).reverse();
    expect(types).toEqual(['admin.account.created', 'admin.account.scope-changed', 'admin.account.disabled', 'admin.account.enabled', 'admin.account.credentials-reset']);
    await context.close();
  });

  it('a regional admin sees only the accounts of its scope, and is refused a national account or a wider scope', async () => {
    const { context, page } = await newPage();
    expect((await logIn(page, home(), { login: admins.bzh, password: PASSWORD })).status()).toBe(200);
    await heading(page, 'Tableau de bord');
    await page.getByRole('link', { name: 'Comptes admin' }).click();
    await heading(page, 'Comptes administrateurs');
    const table = page.getByRole('table');
    await table.getByRole('link', { name: admins.bzh, exact: true }).waitFor();
    await table.getByRole('link', { name: 'ars-bretagne-2', exact: true }).waitFor();
    const shown = await table.getByRole('link').allTextContents();
    expect(shown.sort()).toEqual([admins.bzh, 'ars-bretagne-2']);
    await expectAccessible(page, 'admin accounts, regional');

    await page.getByLabel('Identifiant').fill('ars-national-pirate');
    await page.getByLabel('Rôle').selectOption('national');
    await page.getByRole('button', { name: 'Créer le compte' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toContain('sort du périmètre de votre compte');
    await expectAccessible(page, 'admin accounts, refusal shown');

    // Its own account, widened to another region: refused too.
    await page.goto(`${home()}#/compte/${admins.bzh}`);
    await heading(page, `Compte ${admins.bzh}`);
    await page.getByLabel('Domaines du périmètre').fill(`${BZH}\n${IDF}`);
    await page.getByRole('button', { name: 'Enregistrer le périmètre' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: /\S/ }).first().textContent()).toContain('sort du périmètre de votre compte');
    // Another region's account is not there to open.
    await page.goto(`${home()}#/compte/${admins.idf}`);
    await heading(page, 'Compte introuvable');
    const refusals = await op.platform.journal.list({ type: 'policy.refused', actor: `admin:${admins.bzh}` });
    expect(refusals.map((e) => e.subject).reverse()).toEqual(['admin:ars-national-pirate', `admin:${admins.bzh}`]);
    const me = (await call(base, ca, 'POST', '/api/v1/login', { json: { login: admins.bzh, password: PASSWORD } })).json().account;
    expect(me.domains).toEqual([BZH]);
    await context.close();
  });
});
