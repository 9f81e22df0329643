import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { checkCredentials, createBal, createPerson } from '../../annuaire/bal/index.js';
import { devIssuer, issueCertificate, newRsaKey } from '../../certs/pki.js';
import { UI_CSP } from '../../core/web-ui.js';
import { registerBackend } from '../../mailstore/placement.js';
import { expectAccessible, launch, newPage as pageIn, poll, postWith, setCookiesOf, shot } from '../helpers/browser.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { encodeFile, mssanteLines } from '../helpers/rpps-generator.js';
import { unzipEntries } from '../helpers/zip.js';
import { call } from '../webmail/stack.js';

// The operator console (webui/console/) in Debian's Chromium against a real operator (PGlite,
// slapd, Dovecot, SMTP, IMAP proxy) and its admin API, as `npm start` runs them. Every wait
// below is for something the page shows or a reply, never for a duration.

const D = 'mssante.localhost';
const BZH = 'bzh.mssante.localhost';
const IDF = 'idf.mssante.localhost';
let pki: TestPki;
let op: TestOperator;
let browser: Browser;
let ca: string;
let base = '';
const PASSWORD = 'console-mot-de-passe-2026';
const admins = { national: 'nat.console', bzh: 'ars-bretagne', idf: 'ars-idf' };
/** An operator on the liste blanche whose MX does not answer: mail to it waits, deferred. */
const ELSEWHERE = 'ailleurs.localhost';
const FINESS = { bzh: '350000001', idf: '750000001' };
const who = { bzh: { login: 'dr.breton', address: `dr.breton@${BZH}`, idnps: '810000000101', password: 'mot-de-passe-dr-breton-2026' } };
const box = { bzhOrg: `secretariat@${BZH}`, bzhApp: `labo@${BZH}`, idfOrg: `accueil@${IDF}`, idfPer: `dr.francilien@${IDF}` };

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  const ports = await freePorts();
  const nowhere = (await freePorts()).mx;
  op = await startOperator({ pki, domain: D, cert: 'server', ports, peers: [ELSEWHERE], routes: [`${ELSEWHERE}=127.0.0.1:${nowhere}`], overrides: { operator: { domains: [BZH, IDF] }, admin: { enabled: true, port: 0 } } });
  base = op.platform.admin!.url;
  const { db, journal } = op.platform;
  const ctx = op.ctx;
  // Brittany: a doctor (PER), a secretariat (ORG), a laboratory (APP) whose certificate ends in 10 days. Île-de-France: two boxes.
  await createPerson(ctx, { login: who.bzh.login, idnps: who.bzh.idnps, nom: 'BRETON', prenom: 'Anne', password: who.bzh.password }, 'test');
  await createBal(ctx, { address: who.bzh.address, type: 'PER', owner: who.bzh.idnps }, 'test');
  await createBal(ctx, { address: box.bzhOrg, type: 'ORG', owner: FINESS.bzh, displayName: 'Secrétariat breton' }, 'test');
  await createBal(ctx, { address: box.bzhApp, type: 'APP', owner: FINESS.bzh, displayName: 'Laboratoire breton' }, 'test');
  await createPerson(ctx, { login: 'dr.francilien', idnps: '810000000201', nom: 'FRANCILIEN', prenom: 'Paul' }, 'test');
  await createBal(ctx, { address: box.idfPer, type: 'PER', owner: '810000000201' }, 'test');
  await createBal(ctx, { address: box.idfOrg, type: 'ORG', owner: FINESS.idf, displayName: 'Accueil francilien' }, 'test');
  const soon = await issueCertificate(devIssuer(pki.dir), { type: 'application', name: 'logiciel-labo', organisation: 'Labo breton', organisationId: FINESS.bzh }, { keyPem: await newRsaKey(2048), validityDays: 10 });
  await op.appCert(box.bzhApp, soon.certPem);
  await op.synced();
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
const bzhMail = () =>
  nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: { ca, servername: 'localhost' }, auth: { user: who.bzh.login, pass: who.bzh.password } });
/** A bearer session of the admin API, for what the console does not do (uploads). */
const bearerOf = async (login: string) => (await call(base, ca, 'POST', '/api/v1/login', { json: { login, password: PASSWORD } })).json().token as string;
const newPage = (viewport?: { width: number; height: number }) => pageIn(browser, viewport);
const cookie = async (page: Page, name: string) => (await page.context().cookies()).find((c) => c.name === name)?.value;

async function logIn(page: Page, login: string, password = PASSWORD): Promise<Response> {
  await page.goto(home());
  await page.getByLabel('Identifiant').fill(login);
  await page.getByLabel('Mot de passe').fill(password);
  const [answer] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/v1/web/login')), page.getByRole('button', { name: 'Se connecter' }).click()]);
  return answer;
}

describe('the operator console', () => {
  it('serves its pages from the admin API with a strict CSP, no framing, no sniffing, nothing from elsewhere', async () => {
    const { context, page } = await newPage();
    const seen: Response[] = [];
    page.on('response', (r) => void seen.push(r));
    const first = await page.goto(home());
    expect(first!.url()).toMatch(/\/ui\/console\/$/);
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    const ui = seen.filter((r) => new URL(r.url()).pathname.startsWith('/ui/'));
    expect(ui.map((r) => new URL(r.url()).pathname)).toEqual(expect.arrayContaining(['/ui/console/', '/ui/console/main.js', '/ui/common/style.css', '/ui/common/api.js', '/ui/common/login.js']));
    for (const r of ui) {
      const h = await r.allHeaders();
      expect(h['content-security-policy'], r.url()).toBe(UI_CSP);
      expect(h['x-frame-options']).toBe('DENY');
      expect(h['x-content-type-options']).toBe('nosniff');
      expect(h['strict-transport-security']).toMatch(/max-age=\d+/);
    }
    expect(seen.every((r) => new URL(r.url()).origin === new URL(home()).origin)).toBe(true);
    // The webmail's pages are not on this listener.
    expect((await page.goto(`${base}/ui/webmail/`))!.status()).toBe(404);
    await page.goto(home());
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    await expectAccessible(page, 'console login page');
    await shot(page, 'console-connexion');
    await context.close();
  });

  it('an admin logs in: the session is in an HttpOnly, Secure, SameSite=Strict cookie no script can read; a wrong password is told in French', async () => {
    const { context, page } = await newPage();
    const bad = await logIn(page, admins.national, 'pas-le-bon');
    expect(bad.status()).toBe(401);
    await poll(() => page.getByRole('alert').textContent()).toContain('Identifiant, mot de passe ou code de vérification incorrect');
    await expectAccessible(page, 'console login with an error');

    const ok = await logIn(page, admins.national);
    expect(ok.status()).toBe(200);
    const set = await setCookiesOf(ok);
    const session = set.find((c) => c.startsWith('__Host-mss-admin-session='))!;
    const csrf = set.find((c) => c.startsWith('__Host-mss-admin-csrf='))!;
    for (const flag of ['; HttpOnly', '; Secure', '; SameSite=Strict', '; Path=/']) expect(session).toContain(flag);
    expect(csrf).not.toMatch(/HttpOnly/);
    expect(csrf).toContain('; SameSite=Strict');
    expect(JSON.stringify(await ok.json())).not.toContain('mssadm_');
    const token = (await context.cookies()).find((c) => c.name === '__Host-mss-admin-session')!;
    expect(token).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(token.value).toMatch(/^mssadm_/);
    expect(await page.evaluate('document.cookie')).not.toContain(token.value);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    expect(await page.getByRole('banner').textContent()).toContain(`${admins.national} (national)`);
    await context.close();
  });

  it('CSRF on the admin API: a cookie request that changes something needs the header and this origin, refusals journalled; bearer clients unchanged', async () => {
    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    const before = (await op.platform.journal.list({ type: 'admin.csrf.refused', limit: 1000 })).length;
    expect(await page.evaluate(`fetch('/api/v1/me').then((r) => r.status)`)).toBe(200);
    const forged = (await page.evaluate(`fetch('/api/v1/logout', { method: 'POST' }).then(async (r) => [r.status, (await r.json()).title])`)) as [number, string];
    expect(forged).toEqual([403, 'ADMIN_CSRF_INVALID']);
    expect(await page.evaluate(`fetch('/api/v1/logout', { method: 'POST', headers: { 'x-csrf-token': 'AAAA' } }).then((r) => r.status)`)).toBe(403);
    expect(await page.evaluate(`fetch('/api/v1/me').then((r) => r.status)`)).toBe(200);
    const token = (await cookie(page, '__Host-mss-admin-session'))!;
    const csrf = (await cookie(page, '__Host-mss-admin-csrf'))!;
    // Another site's page carrying the cookie, header or not; and a login from another site.
    expect(await postWith(base, ca, { cookie: `__Host-mss-admin-session=${token}`, 'x-csrf-token': csrf, origin: 'https://evil.example' }, '/api/v1/logout')).toBe(403);
    expect(await postWith(base, ca, { origin: 'https://evil.example' }, '/api/v1/web/login', { login: admins.national, password: PASSWORD })).toBe(403);
    const refused = await op.platform.journal.list({ type: 'admin.csrf.refused', limit: 1000 });
    expect(refused.length).toBe(before + 4);
    expect(refused.map((e) => e.details.reason)).toEqual(expect.arrayContaining(['the x-csrf-token header is missing', 'the x-csrf-token header does not match the session', 'it comes from another site (https://evil.example)']));
    expect(await postWith(base, ca, { cookie: `__Host-mss-admin-session=${token}`, 'x-csrf-token': csrf, origin: new URL(base).origin }, '/api/v1/logout')).toBe(204);
    expect(await page.evaluate(`fetch('/api/v1/me').then((r) => r.status)`)).toBe(401);

    // A bearer client: a token in the answer, no cookie, no CSRF header.
    const r = await call(base, ca, 'POST', '/api/v1/login', { json: { login: admins.national, password: PASSWORD } });
    expect(r.status).toBe(200);
    const bearer = r.json().token as string;
    expect((await call(base, ca, 'GET', '/api/v1/me', { token: bearer })).json().login).toBe(admins.national);
    expect((await call(base, ca, 'POST', '/api/v1/logout', { token: bearer })).status).toBe(204);
    expect((await call(base, ca, 'GET', '/api/v1/me', { token: bearer })).status).toBe(401);
    await context.close();
  });

  it('an ended session leads back to the login with a message; logout clears the cookies', async () => {
    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    // The session ends behind the page's back (its age, or a logout elsewhere).
    const token = (await cookie(page, '__Host-mss-admin-session'))!;
    expect((await call(base, ca, 'POST', '/api/v1/logout', { token })).status).toBe(204);
    await page.reload();
    await page.getByRole('status').filter({ hasText: 'Votre session a expiré. Reconnectez-vous pour continuer.' }).waitFor();
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    await expectAccessible(page, 'console login after expiry');

    await page.getByLabel('Identifiant').fill(admins.national);
    await page.getByLabel('Mot de passe').fill(PASSWORD);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.getByRole('button', { name: 'Se déconnecter' }).click();
    await page.getByRole('status').filter({ hasText: 'Vous êtes déconnecté.' }).waitFor();
    await until(async () => !(await context.cookies()).some((c) => c.name.startsWith('__Host-mss-admin-')));
    await page.reload();
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    expect(await page.getByText('Votre session a expiré').count()).toBe(0);
    await context.close();
  });

  it('dashboard: boxes by type, mail of the day, the queue and its oldest item, the last import and its report, alerts — each admin in its scope', async () => {
    // Mail of the day: the Breton doctor writes to the secretariat (delivered here) and to another operator whose MX is down (deferred).
    await bzhMail().sendMail({ from: who.bzh.address, to: box.bzhOrg, subject: 'Rendez-vous', text: 'Bonjour.' });
    await bzhMail().sendMail({ from: who.bzh.address, to: `confrere@${ELSEWHERE}`, subject: 'Adressage', text: 'Bonjour confrère.' });
    await until(async () => (await op.platform.journal.list({ type: 'smtp.outbound.deferred', limit: 1 })).length > 0);
    // A national extraction, through the API (the console's upload is for the next round).
    const name = 'Extraction_Correspondance_MSSante_202612010000.txt';
    const up = await call(base, ca, 'POST', `/api/v1/imports/extractions?name=${name}`, { token: await bearerOf(admins.national), body: encodeFile(mssanteLines({ lines: 20, seed: 7 })), contentType: 'application/octet-stream' });
    expect(up.status, up.body.toString()).toBe(200);

    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    const section = (name: string | RegExp) => page.getByRole('region', { name });
    const boxes = section('Boîtes aux lettres');
    await expect.poll(() => boxes.getByRole('row', { name: /Personnelles/ }).textContent()).toMatch(/Personnelles\s*2\s*0/);
    expect(await boxes.getByRole('row', { name: /Organisationnelles/ }).textContent()).toMatch(/2\s*0$/);
    expect(await boxes.getByRole('row', { name: /Applicatives/ }).textContent()).toMatch(/1\s*0$/);
    const today = section("Messages aujourd'hui");
    expect(await today.textContent()).toMatch(/Envoyés par vos utilisateurs\s*2/);
    const queue = section("File d'attente");
    expect(await queue.textContent()).toMatch(/Messages en attente\s*1/);
    expect(await queue.textContent()).toMatch(/Le plus ancienreçu le \d\d\/\d\d\/\d{4}/);
    const imp = section("Dernier import de l'annuaire");
    expect(await imp.textContent()).toContain(`Fichier${name}`);
    expect(await imp.textContent()).not.toContain('/uploads/');
    expect(await imp.textContent()).toMatch(/Lignes lues\s*20/);
    const alerts = section(/^Alertes/);
    expect(await alerts.textContent()).toContain(`Certificat applicatif de ${box.bzhApp} expire le`);
    expect(await alerts.textContent()).toMatch(/1 message différé/);
    await expectAccessible(page, 'dashboard (national)');
    await shot(page, 'console-tableau-de-bord');
    await context.close();

    // Île-de-France: its two boxes, none of Brittany's mail, certificate or queue.
    const idf = await newPage();
    await logIn(idf.page, admins.idf);
    await idf.page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    const r = (name: string | RegExp) => idf.page.getByRole('region', { name });
    await expect.poll(() => r('Boîtes aux lettres').getByRole('row', { name: /Total/ }).textContent()).toMatch(/Total\s*2\s*0/);
    expect(await r("Messages aujourd'hui").textContent()).toMatch(/Envoyés par vos utilisateurs\s*0/);
    expect(await r("File d'attente").textContent()).toMatch(/Messages en attente\s*0/);
    expect(await idf.page.locator('main').textContent()).not.toContain(BZH);
    expect(await r('Alertes').textContent()).toContain('Aucune alerte');
    await expectAccessible(idf.page, 'dashboard (regional)');
    await idf.context.close();
  });

  it('boxes: search, filter and page the list; create one, add and remove a member, close and reopen it — keyboard and tablet too', async () => {
    // Enough boxes for two pages (25 a page).
    for (let i = 1; i <= 26; i++) await createBal(op.ctx, { address: `cabinet-${String(i).padStart(2, '0')}@${D}`, type: 'CAB', owner: `8100000003${String(i).padStart(2, '0')}` }, 'test');
    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Boîtes aux lettres' }).click();
    await page.getByRole('heading', { level: 1, name: 'Boîtes aux lettres' }).waitFor();
    await page.getByText('Page 1 : boîtes 1 à 25', { exact: true }).waitFor();
    expect(await page.getByRole('row').count()).toBe(26);
    await expectAccessible(page, 'boxes list');
    await shot(page, 'console-boites');
    await page.getByRole('link', { name: 'Page suivante' }).click();
    await page.getByText(/^Page 2 : boîtes 26 à 31 \(dernière page\)$/).waitFor();
    await page.getByRole('link', { name: 'Page précédente' }).click();
    await page.getByText('Page 1 : boîtes 1 à 25', { exact: true }).waitFor();

    // Keyboard: the heading has the focus; Tab goes to "Créer une boîte", then the search.
    expect(await page.evaluate('document.activeElement.tagName + " " + document.activeElement.textContent')).toBe('H1 Boîtes aux lettres');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Créer une boîte');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.id')).toBe('recherche');
    await page.keyboard.type('breton');
    await page.keyboard.press('Enter');
    await page.getByRole('link', { name: box.bzhOrg }).waitFor();
    // The doctor, the secretariat and the laboratory of Brittany.
    expect(await page.getByRole('row').count()).toBe(4);
    const search = page.getByRole('search', { name: 'Rechercher des boîtes' });
    await search.getByLabel('Type').selectOption('ORG');
    await search.getByRole('button', { name: 'Afficher' }).click();
    await poll(() => page.getByRole('row').count()).toBe(2);

    // A new organisational box, in Brittany.
    await page.getByRole('link', { name: 'Créer une boîte' }).click();
    await page.getByRole('heading', { level: 1, name: 'Nouvelle boîte aux lettres' }).waitFor();
    const created = `cardiologie@${BZH}`;
    await page.getByLabel('Adresse', { exact: true }).fill(created);
    await page.getByLabel('Type').selectOption('ORG');
    await page.getByLabel('Titulaire').fill(FINESS.bzh);
    await page.getByLabel('Nom affiché (facultatif)').fill('Cardiologie de Rennes');
    await expectAccessible(page, 'new box form');
    await page.getByRole('button', { name: 'Créer la boîte' }).click();
    await page.getByRole('heading', { level: 1, name: created }).waitFor();
    await page.getByRole('status').filter({ hasText: `Boîte ${created} créée.` }).waitFor();
    // The same address again: the API's refusal, in French and with its reason.
    await page.goto(`${base}/ui/console/#/boites/nouvelle`);
    await page.getByLabel('Adresse', { exact: true }).fill(created);
    await page.getByLabel('Titulaire').fill(FINESS.bzh);
    await page.getByRole('button', { name: 'Créer la boîte' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: 'La plateforme a refusé la demande' }).textContent()).toContain(created);

    // Its detail page: a member added, then removed; closed with a reason, then reopened.
    await page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(created)}`);
    await page.getByRole('heading', { level: 1, name: created }).waitFor();
    await page.getByLabel('Identifiant de la personne').fill(who.bzh.login);
    await page.getByRole('button', { name: 'Ajouter' }).click();
    await page.getByRole('status').filter({ hasText: `${who.bzh.login} a été ajouté(e) aux membres.` }).waitFor();
    await page.getByRole('row').filter({ hasText: who.bzh.login }).waitFor();
    expect(await page.getByRole('heading', { level: 2, name: 'Membres (1)' }).count()).toBe(1);
    await expectAccessible(page, 'box detail with a member');
    await shot(page, 'console-boite');
    await page.getByLabel('Identifiant de la personne').fill('personne.inconnue');
    await page.getByRole('button', { name: 'Ajouter' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: 'refusé' }).textContent()).toContain('personne.inconnue');
    await page.getByRole('button', { name: `Retirer ${who.bzh.login}` }).click();
    await page.getByRole('status').filter({ hasText: `${who.bzh.login} a été retiré(e) des membres.` }).waitFor();
    expect(await page.getByRole('heading', { level: 2, name: 'Membres (0)' }).count()).toBe(1);
    await page.getByLabel('Motif (facultatif, inscrit au journal)').fill('Service fusionné');
    await page.getByRole('button', { name: 'Fermer la boîte' }).click();
    await page.getByRole('status').filter({ hasText: 'Boîte fermée.' }).waitFor();
    expect(await page.locator('dl.fiche').textContent()).toContain('fermée le');
    await page.getByRole('button', { name: 'Rouvrir la boîte' }).click();
    await page.getByRole('status').filter({ hasText: 'Boîte rouverte.' }).waitFor();
    const events = await op.platform.journal.list({ subject: created, limit: 20 });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['bal.created', 'bal.member.added', 'bal.member.removed', 'bal.closed', 'bal.reopened']));
    expect(events.every((e) => e.actor === `admin:${admins.national}`)).toBe(true);
    await context.close();

    // Tablet, upright: nothing wider than the screen.
    const tablet = await newPage({ width: 768, height: 1024 });
    await logIn(tablet.page, admins.national);
    await tablet.page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    expect(await tablet.page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(true);
    await tablet.page.goto(`${base}/ui/console/#/boites`);
    await tablet.page.getByText('Page 1 : boîtes 1 à 25', { exact: true }).waitFor();
    expect(await tablet.page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(true);
    await expectAccessible(tablet.page, 'boxes list, tablet');
    await shot(tablet.page, 'console-tablette');
    await tablet.context.close();
  });

  it("a regional admin sees only its scope: another region's boxes are not listed, and opening one is refused by the API and journalled", async () => {
    const { context, page } = await newPage();
    await logIn(page, admins.bzh);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.goto(`${base}/ui/console/#/boites`);
    await page.getByRole('link', { name: box.bzhOrg }).waitFor();
    const listed = await page.getByRole('table').getByRole('link').allTextContents();
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((a) => a.endsWith(`@${BZH}`))).toBe(true);
    // Searching for it by name finds nothing either.
    await page.getByRole('searchbox', { name: 'Rechercher' }).fill('francilien');
    await page.getByRole('button', { name: 'Afficher' }).click();
    await page.getByText('Aucune boîte ne correspond à cette recherche.').waitFor();

    const before = (await op.platform.journal.list({ type: 'policy.refused', actor: `admin:${admins.bzh}`, limit: 100 })).length;
    await page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(box.idfOrg)}`);
    await page.getByRole('heading', { level: 1, name: 'Erreur' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('Cette opération sort du périmètre de votre compte.');
    expect(await page.locator('main').textContent()).not.toContain('Accueil francilien');
    await expectAccessible(page, 'a box out of scope');
    const refused = await op.platform.journal.list({ type: 'policy.refused', actor: `admin:${admins.bzh}`, limit: 100 });
    expect(refused.length).toBe(before + 1);
    expect(JSON.stringify(refused[0])).toContain(box.idfOrg);

    // Creating one in the other region: refused in the form, journalled too.
    await page.goto(`${base}/ui/console/#/boites/nouvelle`);
    await page.getByLabel('Adresse', { exact: true }).fill(`intrus@${IDF}`);
    await page.getByLabel('Titulaire').fill(FINESS.bzh);
    await page.getByRole('button', { name: 'Créer la boîte' }).click();
    await poll(() => page.getByRole('alert').textContent()).toContain('Cette opération sort du périmètre de votre compte.');
    expect((await op.platform.journal.list({ type: 'policy.refused', actor: `admin:${admins.bzh}`, limit: 100 })).length).toBe(before + 2);
    await context.close();
  });

  it('journal: filter by type, actor, subject and time; open an event; export its proof, which openssl verifies', async () => {
    const { context, page } = await newPage();
    const start = new Date(Date.now() - 1000);
    await logIn(page, admins.national);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Journal' }).click();
    await page.getByRole('heading', { level: 1, name: 'Journal' }).waitFor();
    await page.getByRole('row').nth(1).waitFor();
    await expectAccessible(page, 'journal');
    await shot(page, 'console-journal');

    const filters = page.getByRole('search', { name: 'Filtrer le journal' });
    const rowsText = async () => (await page.getByRole('row').allTextContents()).slice(1);
    // Type and actor: this admin's logins.
    await filters.getByLabel('Type').fill('admin.login');
    await filters.getByLabel('Acteur').fill(`admin:${admins.national}`);
    await filters.getByRole('button', { name: 'Filtrer' }).click();
    await poll(async () => (await rowsText()).length).toBeGreaterThan(0);
    expect((await rowsText()).every((r) => r.includes('admin.login') && r.includes(`admin:${admins.national}`))).toBe(true);
    // A time range: from this test's start, the login just made is there; before it, none of today's.
    const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    await filters.getByLabel('Depuis').fill(local(start));
    await filters.getByRole('button', { name: 'Filtrer' }).click();
    await poll(async () => (await rowsText()).length).toBe(1);
    await filters.getByLabel('Depuis').fill('');
    await filters.getByLabel("Jusqu'à").fill('2020-01-01T00:00:00');
    await filters.getByRole('button', { name: 'Filtrer' }).click();
    await page.getByText('Aucun événement ne correspond à ces filtres.').waitFor();

    // By subject: a box's events, as its page links to them.
    await page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(box.bzhOrg)}`);
    await page.getByRole('link', { name: 'Événements de cette boîte dans le journal' }).click();
    await poll(async () => (await rowsText()).length).toBeGreaterThan(0);
    expect((await rowsText()).every((r) => r.includes(box.bzhOrg))).toBe(true);
    expect((await rowsText()).some((r) => r.includes('bal.created'))).toBe(true);
    await page.getByRole('row').filter({ hasText: 'bal.created' }).getByRole('link').click();
    await page.getByRole('heading', { level: 1, name: /^Événement n° \d+$/ }).waitFor();
    const seq = Number((await page.getByRole('heading', { level: 1 }).textContent())!.replace(/\D/g, ''));
    expect(await page.locator('pre.details').textContent()).toContain(FINESS.bzh);
    await expectAccessible(page, 'a journal event');
    await shot(page, 'console-evenement');

    // Its proof: sealed within seconds by the running platform; until then the API says so and the page tells it.
    await until(async () => (await op.platform.db.query<{ n: number }>('SELECT count(*)::int AS n FROM journal_seals WHERE last_seq >= $1', [seq])).rows[0].n > 0);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Exporter la preuve' }).click()]);
    expect(download.suggestedFilename()).toBe(`preuve-evenement-${seq}.zip`);
    await page.getByRole('status').filter({ hasText: `Preuve de l'événement n° ${seq} téléchargée` }).waitFor();
    const files = await unzipEntries(readFileSync((await download.path())!));
    expect([...files.keys()].sort()).toEqual(['README.txt', 'proof.json', 'stamped.bin', 'token.tsr', 'tsa-ca.pem', 'tsa-chain.pem']);
    expect(JSON.parse(files.get('proof.json')!.toString()).event.seq).toBe(seq);
    const dir = mkdtempSync(join(tmpdir(), 'mss-console-proof-'));
    for (const [name, data] of files) writeFileSync(join(dir, name), data);
    const out = execFileSync('openssl', ['ts', '-verify', '-data', 'stamped.bin', '-in', 'token.tsr', '-CAfile', 'tsa-ca.pem', '-untrusted', 'tsa-chain.pem'], { cwd: dir, encoding: 'utf8' });
    expect(out).toContain('Verification: OK');
    // The CA in the archive is the one the platform trusts.
    expect(files.get('tsa-ca.pem')!.toString()).toBe(readFileSync(op.config.tsa.caFile, 'utf8'));
    await context.close();
  });

  it("journal in a regional scope: only its events; another region's event is refused by the API, journalled, and does not tell whether it exists", async () => {
    const idfEvent = (await op.platform.journal.list({ subject: box.idfOrg, limit: 1 }))[0];
    const { context, page } = await newPage();
    await logIn(page, admins.bzh);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.goto(`${base}/ui/console/#/journal`);
    await page.getByRole('row').nth(1).waitFor();
    const text = (await page.getByRole('table').textContent())!;
    expect(text).toContain(BZH);
    expect(text).not.toContain(IDF);
    // One of its own: opened (core/policy allows it by the box it is about).
    await page.getByRole('row').filter({ hasText: box.bzhOrg }).first().getByRole('link').click();
    await page.getByRole('heading', { level: 1, name: /^Événement n° \d+$/ }).waitFor();
    expect(await page.locator('dl.fiche').textContent()).toContain(box.bzhOrg);
    const refusals = async () => (await op.platform.journal.list({ type: 'policy.refused', actor: `admin:${admins.bzh}`, limit: 100 })).length;
    // An event about its own account (its creation) is in its list, and opens too.
    const own = (await op.platform.journal.list({ type: 'admin.account.created', subject: `admin:${admins.bzh}`, limit: 1 }))[0];
    expect(await page.evaluate(`fetch('/api/v1/journal/${own.seq}').then((r) => r.status)`)).toBe(200);
    const before = await refusals();
    await page.goto(`${base}/ui/console/#/journal/${idfEvent.seq}`);
    await page.getByRole('heading', { level: 1, name: 'Erreur' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('Cette opération sort du périmètre de votre compte.');
    expect(await page.locator('main').textContent()).not.toContain(box.idfOrg);
    expect(await refusals()).toBe(before + 1);
    // A number no event has: the same refusal.
    const none = (await page.evaluate(`fetch('/api/v1/journal/99999999').then(async (r) => [r.status, (await r.json()).title])`)) as [number, string];
    expect(none).toEqual([403, 'ADMIN_OUT_OF_SCOPE']);
    const proof = (await page.evaluate(`fetch('/api/v1/journal/${idfEvent.seq}/proof').then((r) => r.status)`)) as number;
    expect(proof).toBe(403);
    expect(await refusals()).toBe(before + 3);
    await context.close();
  });

  it('a technical box: an application certificate uploaded as a file, a wrong one refused with the reason, then revoked; the liste rouge set', async () => {
    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(box.bzhApp)}`);
    await page.getByRole('heading', { level: 1, name: box.bzhApp }).waitFor();
    const certs = page.getByRole('region', { name: 'Certificats applicatifs' });
    expect(await certs.getByRole('row').count()).toBe(2);
    // The platform's own server certificate is no application's: refused, with the API's reason.
    await certs.getByLabel('Fichier du certificat (PEM)').setInputFiles({ name: 'serveur.pem', mimeType: 'application/x-pem-file', buffer: Buffer.from(pki.read('server.pem')) });
    await certs.getByRole('button', { name: 'Enregistrer le certificat' }).click();
    await poll(() => certs.getByRole('alert').textContent()).toMatch(/La plateforme a refusé la demande : .+/);
    // A new one for the laboratory's software.
    const fresh = await issueCertificate(devIssuer(pki.dir), { type: 'application', name: 'logiciel-labo-2', organisation: 'Labo breton', organisationId: FINESS.bzh }, { keyPem: await newRsaKey(2048), validityDays: 365 });
    await certs.getByLabel('Fichier du certificat (PEM)').setInputFiles({ name: 'labo.pem', mimeType: 'application/x-pem-file', buffer: Buffer.from(fresh.certPem) });
    await certs.getByRole('button', { name: 'Enregistrer le certificat' }).click();
    await page.getByRole('status').filter({ hasText: 'Certificat enregistré.' }).waitFor();
    const row = page.getByRole('region', { name: 'Certificats applicatifs' }).getByRole('row').filter({ hasText: 'logiciel-labo-2' });
    expect(await row.textContent()).toContain('en vigueur');
    await expectAccessible(page, 'a technical box with its certificates');
    await row.getByRole('button', { name: /^Révoquer le certificat/ }).click();
    await page.getByRole('status').filter({ hasText: 'Certificat révoqué.' }).waitFor();
    expect(await page.getByRole('region', { name: 'Certificats applicatifs' }).getByRole('row').filter({ hasText: 'logiciel-labo-2' }).textContent()).toContain('révoqué le');
    const types = (await op.platform.journal.list({ subject: box.bzhApp, limit: 20 })).filter((e) => e.actor === `admin:${admins.national}`).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['bal.cert.refused', 'bal.cert.registered', 'bal.cert.revoked']));

    // Liste rouge: the box leaves the public directory.
    await page.getByLabel("Liste rouge (la boîte n'est pas publiée dans l'annuaire)").check();
    await page.getByRole('button', { name: 'Enregistrer les modifications' }).click();
    await page.getByRole('status').filter({ hasText: 'Modifications enregistrées.' }).waitFor();
    expect(await page.locator('dl.fiche').textContent()).toContain("Liste rougeoui (non publiée dans l'annuaire)");
    const updated = (await op.platform.journal.list({ type: 'bal.updated', subject: box.bzhApp, limit: 1 }))[0];
    expect(JSON.stringify(updated.details)).toContain('listeRouge');
    // Nothing changed: said by the page, nothing sent.
    await page.getByRole('button', { name: 'Enregistrer les modifications' }).click();
    await poll(() => page.getByRole('form', { name: 'Modifier la boîte' }).getByRole('alert').textContent()).toBe("Rien n'a changé.");
    await context.close();
  });

  it('persons: search, a new account tied to a box (its password shown once), a password reset; a regional admin sees only those of its scope', async () => {
    const { context, page } = await newPage();
    await logIn(page, admins.bzh);
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Personnes' }).click();
    await page.getByRole('heading', { level: 1, name: 'Personnes' }).waitFor();
    await page.getByRole('row').filter({ hasText: who.bzh.login }).waitFor();
    expect(await page.getByRole('table').textContent()).not.toContain('dr.francilien');
    await expectAccessible(page, 'persons');
    await shot(page, 'console-personnes');

    await page.getByLabel('Identifiant', { exact: true }).fill('secretaire.rennes');
    await page.getByLabel('Nom (facultatif)', { exact: true }).fill('ROUX');
    await page.getByLabel('Membre de la boîte').fill(box.bzhOrg);
    await page.getByRole('button', { name: 'Créer le compte' }).click();
    await page.getByText(`Compte secretaire.rennes créé et ajouté à ${box.bzhOrg}.`).waitFor();
    const password = (await page.locator('code.secret').textContent())!;
    expect(password.length).toBeGreaterThanOrEqual(12);
    // The password works (the platform's one password check, as IMAP and the webmail use it).
    expect(await checkCredentials(op.platform.db, 'secretaire.rennes', password)).toMatchObject({ ok: true });

    // Out of scope: tying a new account to the other region's box.
    await page.getByLabel('Identifiant', { exact: true }).fill('intrus.idf');
    await page.getByLabel('Membre de la boîte').fill(box.idfOrg);
    await page.getByRole('button', { name: 'Créer le compte' }).click();
    await poll(() => page.getByRole('form', { name: 'Créer un compte' }).getByRole('alert').textContent()).toContain('Cette opération sort du périmètre de votre compte.');

    // A reset: a new password, shown once.
    await page.getByRole('searchbox', { name: 'Rechercher' }).fill('breton');
    await page.getByRole('button', { name: 'Afficher' }).click();
    await poll(() => page.getByRole('row').count()).toBe(2);
    await page.getByRole('button', { name: `Nouveau mot de passe pour ${who.bzh.login}` }).click();
    await page.getByText(`Mot de passe de ${who.bzh.login}, affiché une seule fois`).waitFor();
    const reset = (await page.locator('code.secret').textContent())!;
    expect(await checkCredentials(op.platform.db, who.bzh.login, reset)).toMatchObject({ ok: true });
    who.bzh.password = reset;
    await context.close();
  });

  it('storage of a shared store: a national admin sees which back end holds a box and moves it — within its pair at once; to a back end whose doveadm does not answer, the page follows the move and says the step that failed, the box where it was; a regional admin sees no storage', async () => {
    const { db } = op.platform;
    // Rows only: a pair store-a/store-b and a lone store-y, none with a doveadm server listening.
    const dead = async () => (await freePorts()).mx;
    await registerBackend(db, { name: 'store-a', host: '127.0.0.1', imapPort: 1, lmtpPort: 1, doveadmPort: await dead(), partner: 'store-b' });
    await registerBackend(db, { name: 'store-b', host: '127.0.0.1', imapPort: 1, lmtpPort: 1, doveadmPort: await dead(), partner: 'store-a' });
    await registerBackend(db, { name: 'store-y', host: '127.0.0.1', imapPort: 1, lmtpPort: 1, doveadmPort: await dead() });
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [box.bzhOrg]);
    try {
      const { context, page } = await newPage();
      await logIn(page, admins.national);
      await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
      await page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(box.bzhOrg)}`);
      const storage = page.getByRole('region', { name: 'Stockage' });
      await poll(() => storage.textContent()).toContain('Stockée sur store-a (réplique sur store-b)');
      await expectAccessible(page, 'a box with its storage');
      const to = storage.getByLabel('Vers le serveur');
      expect(await to.locator('option').allTextContents()).toEqual(['store-b — même paire : seule la carte change (0 boîte)', 'store-y — autre paire : le courrier est copié (0 boîte)']);

      await to.selectOption('store-b');
      await storage.getByRole('button', { name: 'Déplacer' }).click();
      await page.getByRole('status').filter({ hasText: 'Boîte déplacée de store-a vers store-b.' }).waitFor();
      await poll(() => page.getByRole('region', { name: 'Stockage' }).textContent()).toContain('Stockée sur store-b (réplique sur store-a)');
      expect((await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [box.bzhOrg])).rows[0].backend).toBe('store-b');

      await page.getByRole('region', { name: 'Stockage' }).getByLabel('Vers le serveur').selectOption('store-y');
      await page.getByRole('region', { name: 'Stockage' }).getByRole('button', { name: 'Déplacer' }).click();
      await poll(() => page.getByRole('region', { name: 'Stockage' }).getByRole('alert').textContent()).toMatch(/^Le déplacement a échoué à l'étape « copy » ; la boîte reste sur store-b, utilisable\. \(the move of .+ to store-y failed at copy: .+\)$/);
      expect(await page.getByRole('log', { name: 'Étapes du déplacement' }).textContent()).toMatch(/^copy: /);
      expect((await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [box.bzhOrg])).rows[0].backend).toBe('store-b');
      const types = (await op.platform.journal.list({ subject: box.bzhOrg, typePrefix: 'mailstore.', limit: 10 })).map((e) => e.type).reverse();
      expect(types).toEqual(['mailstore.box.moved', 'mailstore.box.move_failed']);
      await context.close();

      // A regional admin: the box's page, without the storage section.
      const regional = await newPage();
      await logIn(regional.page, admins.bzh);
      await regional.page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
      await regional.page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(box.bzhOrg)}`);
      await regional.page.getByRole('heading', { level: 2, name: /^Membres/ }).waitFor();
      expect(await regional.page.getByRole('region', { name: 'Stockage' }).count()).toBe(0);
      await regional.context.close();
    } finally {
      await db.query("DELETE FROM mailstore_placement WHERE backend IN ('store-a', 'store-b', 'store-y')");
      await db.query("DELETE FROM mailstore_backends WHERE name IN ('store-a', 'store-b', 'store-y')");
    }
  });
});
