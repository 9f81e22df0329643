import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableTotp, totpCode } from '../../annuaire/bal/index.js';
import { UI_CSP } from '../../core/web-ui.js';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call, startTestWebmail, mime } from '../webmail/stack.js';
import { expectAccessible, launch, logIn as logInAt, newPage as pageIn, poll, postWith as postTo, shot } from '../helpers/browser.js';

// The browser webmail (webui/webmail/) in Debian's Chromium against a real operator (PGlite,
// slapd, Dovecot, SMTP, IMAP proxy) and the webmail API in its worker process, as
// `npm start` runs it. Every wait below is for something the page shows or a reply, never
// for a duration.

const D = 'mssante.localhost';
let pki: TestPki;
let op: TestOperator;
let web: WebmailService;
let browser: Browser;
let ca: string;
const who: Record<'jeanne' | 'paul' | 'totp', { login: string; address: string; password: string }> = {} as never;
let totpSecret = '';
let secretariat = '';
const PWNED_HOST = 'pwned.invalid';

async function seed(address: string, messages: Array<{ raw: Buffer; date?: Date; flags?: string[] }>) {
  const c = await op.imap(address);
  try {
    for (const m of messages) await c.append('INBOX', m.raw, m.flags ?? [], m.date);
  } finally {
    await c.logout();
  }
}

/** Flags of a message of a box, as Dovecot has them. */
async function flagsOf(address: string, subject: string): Promise<string[]> {
  const c = await op.imap(address);
  try {
    await c.mailboxOpen('INBOX');
    for await (const m of c.fetch('1:*', { envelope: true, flags: true })) if (m.envelope?.subject === subject) return [...(m.flags ?? [])];
    return [];
  } finally {
    await c.logout();
  }
}

/** A message whose HTML tries everything that must stay inert. */
const HOSTILE_HTML = [
  '<p>Bonjour, <b>voici</b> le compte rendu.</p>',
  `<script>parent.__pwned = 'script'; fetch('https://${PWNED_HOST}/script')</script>`,
  `<img src="x" onerror="parent.__pwned='onerror'">`,
  `<img src="https://${PWNED_HOST}/pixel.gif" alt="pixel">`,
  `<svg onload="parent.__pwned='svg'"><circle r="4"></circle></svg>`,
  `<a href="javascript:parent.__pwned='href'">lien piégé</a>`,
  `<iframe srcdoc="<script>parent.parent.__pwned='frame'</script>"></iframe>`,
  `<style>body{background:url(https://${PWNED_HOST}/css)}</style>`,
  `<div style="position:fixed;top:0;left:0;width:100%;height:100%;background:url(https://${PWNED_HOST}/style)">recouvrement</div>`,
  `<form action="https://${PWNED_HOST}/form"><input name="mdp"><button>Valider</button></form>`,
  `<meta http-equiv="refresh" content="0;url=https://${PWNED_HOST}/refresh">`,
].join('\n');

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  who.jeanne = await op.person('jeanne.martin', '810000000001');
  who.paul = await op.person('paul.durand', '810000000002');
  who.totp = await op.person('claire.totp', '810000000003');
  totpSecret = (await enableTotp(op.ctx, { login: 'claire.totp' }, 'test')).secret;
  secretariat = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie', description: 'Secrétariat de cardiologie' });
  await op.member(secretariat, 'jeanne.martin');
  await op.synced();

  // Jeanne's INBOX: 30 letters (two pages of 25), then one with hostile HTML and a PDF.
  const base = Date.UTC(2026, 0, 5, 8, 0, 0);
  const letters = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => ({
      raw: await mime({ from: `Laboratoire ${i} <labo${i}@${D}>`, to: who.jeanne.address, subject: `Résultat n° ${i + 1}`, text: `Résultat ${i + 1}.`, date: new Date(base + i * 60_000) }),
      date: new Date(base + i * 60_000),
      flags: i % 2 ? ['\\Seen'] : [],
    })),
  );
  await seed(who.jeanne.address, letters);
  await seed(who.jeanne.address, [
    {
      raw: await mime({
        from: `Paul Durand <${who.paul.address}>`,
        to: who.jeanne.address,
        subject: 'Compte rendu piégé',
        html: HOSTILE_HTML,
        text: 'Bonjour, voici le compte rendu.',
        attachments: [{ filename: 'compte-rendu.pdf', content: Buffer.from('%PDF-1.4\n% compte rendu\n%%EOF\n'), contentType: 'application/pdf' }],
      }),
      date: new Date(base + 3_600_000),
    },
  ]);
  await seed(secretariat, [
    { raw: await mime({ from: who.paul.address, to: secretariat, subject: 'Demande de rendez-vous', text: 'Bonjour, un rendez-vous svp.' }) },
    { raw: await mime({ from: who.paul.address, to: secretariat, subject: 'Seconde demande', text: 'Relance.' }) },
  ]);

  // The webmail API in its worker process (webmail.workers 1: the default), as npm start runs it.
  web = await startTestWebmail(op, {}, { workers: 1 });
  browser = await launch(pki.read('server.pem'));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await op?.stop();
});

const home = () => `${web.url}/`;

/** A POST with exactly these headers (what another site's page, or a forger, could send). */
const postWith = (headers: Record<string, string>, path = '/api/v1/logout', body?: unknown) => postTo(web.url, ca, headers, path, body);
const newPage = (viewport?: { width: number; height: number }) => pageIn(browser, viewport);
const logIn = (page: Page, u: { login: string; password: string }, otp?: () => string) => logInAt(page, home(), u, otp);

describe('the browser webmail', () => {
  it('serves its pages with a strict CSP, no framing, no sniffing, no referrer — from the real responses', async () => {
    const { context, page } = await newPage();
    const seen: Response[] = [];
    page.on('response', (r) => void seen.push(r));
    const first = await page.goto(home());
    expect(first!.url()).toMatch(/\/ui\/webmail\/$/);
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    const ui = seen.filter((r) => new URL(r.url()).pathname.startsWith('/ui/'));
    expect(ui.map((r) => new URL(r.url()).pathname)).toEqual(expect.arrayContaining(['/ui/webmail/', '/ui/webmail/main.js', '/ui/common/style.css', '/ui/common/api.js']));
    for (const r of ui) {
      const h = await r.allHeaders();
      expect(h['content-security-policy'], r.url()).toBe(UI_CSP);
      expect(h['x-frame-options']).toBe('DENY');
      expect(h['x-content-type-options']).toBe('nosniff');
      expect(h['referrer-policy']).toBe('no-referrer');
      expect(h['strict-transport-security']).toMatch(/max-age=\d+/);
    }
    expect(UI_CSP).toContain("default-src 'self'");
    expect(UI_CSP).toContain("frame-ancestors 'none'");
    expect(UI_CSP).not.toContain('unsafe-inline');
    expect(UI_CSP).not.toContain('unsafe-eval');
    // Nothing from another origin.
    expect(seen.every((r) => new URL(r.url()).origin === new URL(home()).origin)).toBe(true);
    // The browser enforces it: an inline script put into the page does not run.
    await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s); })()`);
    expect(await page.evaluate('window.__inline')).toBeUndefined();
    await expectAccessible(page, 'login page');
    await shot(page, 'connexion');
    await context.close();
  });

  it('Jeanne logs in: the session is in an HttpOnly, Secure, SameSite=Strict cookie no script can read; a wrong password is told in French', async () => {
    const { context, page } = await newPage();
    const bad = await logIn(page, { login: who.jeanne.login, password: 'pas-le-bon' });
    expect(bad.status()).toBe(401);
    await poll(() => page.getByRole('alert').textContent()).toContain('Identifiant, mot de passe ou code de vérification incorrect');
    await expectAccessible(page, 'login page with an error');

    const ok = await logIn(page, who.jeanne);
    expect(ok.status()).toBe(200);
    const setCookies = (await ok.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
    const session = setCookies.find((c) => c.startsWith('__Host-mss-webmail-session='))!;
    const csrf = setCookies.find((c) => c.startsWith('__Host-mss-webmail-csrf='))!;
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; Secure/);
    expect(session).toMatch(/; SameSite=Strict/);
    expect(session).toMatch(/; Path=\//);
    expect(csrf).not.toMatch(/HttpOnly/);
    expect(csrf).toMatch(/; Secure/);
    expect(csrf).toMatch(/; SameSite=Strict/);
    // The token is not in the answer's body, nor readable by the page.
    expect(JSON.stringify(await ok.json())).not.toContain('mss_wt_');
    const cookies = await context.cookies();
    const token = cookies.find((c) => c.name === '__Host-mss-webmail-session')!;
    expect(token).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(await page.evaluate('document.cookie')).not.toContain(token.value);

    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    expect(await page.getByText('31 messages').count()).toBe(1);
    await context.close();
  });

  it('box switcher with unread counts, folders, two pages, a message read with its marks; keyboard only', async () => {
    const { context, page } = await newPage();
    await logIn(page, who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception — jeanne/ }).waitFor();
    const boxes = page.getByRole('navigation', { name: 'Boîtes aux lettres' });
    // Jeanne: 15 unread of her 30 letters + the hostile one; the secretariat: 2.
    await poll(() => boxes.getByRole('link').allTextContents()).toEqual([expect.stringContaining('16 non lus'), expect.stringContaining('2 non lus')]);
    expect(await boxes.getByRole('link', { name: /Secrétariat de cardiologie/ }).textContent()).toContain('organisationnelle');
    await poll(() => page.getByRole('navigation', { name: 'Dossiers' }).getByRole('link').first().textContent()).toContain('Boîte de réception');
    await expectAccessible(page, 'message list');
    await shot(page, 'liste');

    // Pages: 31 messages, 25 a page.
    await page.getByText('Page 1 sur 2', { exact: true }).waitFor();
    expect(await page.getByRole('row').count()).toBe(26);
    await page.getByRole('link', { name: 'Page suivante' }).click();
    await page.getByText('Page 2 sur 2', { exact: true }).waitFor();
    expect(await page.getByRole('row').count()).toBe(7);
    expect(await page.getByRole('row').filter({ hasText: 'Non lu' }).count()).toBeGreaterThan(0);
    await page.getByRole('link', { name: 'Page précédente' }).click();
    await page.getByText('Page 1 sur 2', { exact: true }).waitFor();

    // Keyboard: each view puts the focus on its heading; the skip link is the first stop of
    // the page and leads there; from the heading, Tab goes through the search, then the messages; Enter opens one.
    expect(await page.evaluate(`document.querySelector('a[href], button, input, [tabindex]:not([tabindex="-1"])').textContent`)).toBe('Aller au contenu');
    await page.locator('#evitement').focus();
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.tagName + " " + document.activeElement.textContent')).toMatch(/^H1 Boîte de réception/);
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.id')).toBe('recherche');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.id')).toBe('tri');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Afficher');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Compte rendu piégé');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Résultat n° 30');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Résultat n° 30' }).waitFor();
    expect(await page.locator('pre.corps-texte').textContent()).toContain('Résultat 30.');
    await expectAccessible(page, 'a message (text)');
    await shot(page, 'message');

    // Marks: follow (a PATCH with the CSRF header), seen in Dovecot.
    await page.getByRole('button', { name: 'Suivi' }).click();
    await poll(() => page.getByRole('button', { name: 'Suivi' }).getAttribute('aria-pressed')).toBe('true');
    expect(await flagsOf(who.jeanne.address, 'Résultat n° 30')).toEqual(expect.arrayContaining(['\\Flagged', '\\Seen']));
    // Mark unread: back to the list, where it shows so (and Dovecot agrees).
    await page.getByRole('button', { name: 'Marquer comme non lu' }).click();
    await page.getByRole('row').filter({ hasText: 'Résultat n° 30' }).filter({ hasText: 'Suivi' }).filter({ hasText: 'Non lu' }).waitFor();
    expect(await flagsOf(who.jeanne.address, 'Résultat n° 30')).not.toContain('\\Seen');

    // Switch to the secretariat.
    await boxes.getByRole('link', { name: /Secrétariat de cardiologie/ }).click();
    await page.getByRole('heading', { level: 1, name: `Boîte de réception — ${secretariat}` }).waitFor();
    await page.getByRole('link', { name: 'Demande de rendez-vous' }).click();
    await page.getByRole('heading', { level: 1, name: 'Demande de rendez-vous' }).waitFor();
    await page.getByRole('link', { name: 'Retour à la liste' }).click();
    await poll(() => boxes.getByRole('link', { name: /Secrétariat/ }).textContent()).toContain('1 non lu');
    await context.close();
  });

  it('search and sort a folder; back from a message to the same search', async () => {
    const { context, page } = await newPage();
    await logIn(page, who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    const search = page.getByRole('search', { name: 'Rechercher et trier' });
    await search.getByLabel('Rechercher dans ce dossier').fill('labo12');
    await search.getByRole('button', { name: 'Afficher' }).click();
    await page.getByText('1 message correspondant à « labo12 »').waitFor();
    expect(await page.getByRole('row').count()).toBe(2);
    await page.getByRole('link', { name: 'Résultat n° 13', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Résultat n° 13' }).waitFor();
    await page.getByRole('link', { name: 'Retour à la liste' }).click();
    await page.getByText('1 message correspondant à « labo12 »').waitFor();
    await expectAccessible(page, 'a search');
    await page.getByRole('link', { name: 'Effacer la recherche' }).click();
    await page.getByText('31 messages', { exact: true }).waitFor();

    // Each order puts another message first, so the first row tells that the list was drawn
    // again before the next form is used (a form used while the previous list loads is replaced).
    const firstRow = () => page.getByRole('row').nth(1).getByRole('link').textContent();
    expect(await firstRow()).toBe('Compte rendu piégé');
    await search.getByLabel('Trier par').selectOption('date-asc');
    await search.getByRole('button', { name: 'Afficher' }).click();
    await poll(firstRow).toBe('Résultat n° 1');
    await search.getByLabel('Trier par').selectOption('subject-asc');
    await search.getByRole('button', { name: 'Afficher' }).click();
    await poll(firstRow).toBe('Compte rendu piégé');
    await context.close();
  });

  it('a hostile message: no script, handler, remote image, style or form of it is active; its attachment downloads', async () => {
    const { context, page, requests } = await newPage();
    await logIn(page, who.jeanne);
    await page.getByRole('link', { name: 'Compte rendu piégé' }).click();
    await page.getByRole('heading', { level: 1, name: 'Compte rendu piégé' }).waitFor();
    const frame = page.locator('iframe.corps-html');
    expect(await frame.getAttribute('sandbox')).toBe('allow-popups allow-popups-to-escape-sandbox');
    const body = page.frameLocator('iframe.corps-html').locator('body');
    await body.getByText('voici').waitFor();
    expect(await body.locator('script, style, form, iframe, meta, svg').count()).toBe(0);
    expect(await body.locator('[onerror], [onload], [style]').count()).toBe(0);
    expect(await body.locator('a', { hasText: 'lien piégé' }).getAttribute('href')).toBeNull();
    // Everything the message could have run has had its chance once the frame has loaded.
    const child = page.frames().find((f) => f !== page.mainFrame())!;
    await child.waitForLoadState('load');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(requests.filter((u) => u.includes(PWNED_HOST))).toEqual([]);
    await expectAccessible(page, 'a message (HTML)');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'compte-rendu.pdf', exact: true }).click()]);
    expect(download.suggestedFilename()).toBe('compte-rendu.pdf');
    await context.close();
  });

  it('Paul sees only his own box; the secretariat is refused to him with the reason', async () => {
    const { context, page } = await newPage();
    await logIn(page, who.paul);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception — paul/ }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Boîtes aux lettres' }).getByRole('link').count()).toBe(1);
    await page.goto(`${home()}ui/webmail/#/b/${encodeURIComponent(secretariat)}/INBOX`);
    await page.getByRole('heading', { level: 1, name: 'Boîte inaccessible' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain("Vous n'avez pas accès à cette boîte aux lettres");
    await expectAccessible(page, 'a refused box');
    await context.close();
  });

  it('a person with a second factor logs in with the code; without it, refused', async () => {
    const { context, page } = await newPage();
    expect((await logIn(page, who.totp)).status()).toBe(401);
    // The code is made at the moment it is typed; the platform takes it for one step either side.
    expect((await logIn(page, who.totp, () => totpCode(totpSecret))).status()).toBe(200);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception — claire/ }).waitFor();
    await context.close();
  });

  it('CSRF: a cookie request that changes something needs the header and this origin; bearer clients work unchanged', async () => {
    const { context, page } = await newPage();
    await logIn(page, who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    const path = `/api/v1/bals/${encodeURIComponent(who.jeanne.address)}/folders`;
    // Reading needs no header; a logout without it is refused, and the session lives on.
    expect(await page.evaluate(`fetch(${JSON.stringify(path)}).then((r) => r.status)`)).toBe(200);
    const forged = (await page.evaluate(`fetch('/api/v1/logout', { method: 'POST' }).then(async (r) => [r.status, (await r.json()).title])`)) as [number, string];
    expect(forged).toEqual([403, 'WEBMAIL_CSRF_INVALID']);
    const wrong = (await page.evaluate(`fetch('/api/v1/logout', { method: 'POST', headers: { 'x-csrf-token': 'AAAA' } }).then((r) => r.status)`)) as number;
    expect(wrong).toBe(403);
    expect(await page.evaluate(`fetch(${JSON.stringify(path)}).then((r) => r.status)`)).toBe(200);
    expect((await op.platform.journal.list({ type: 'webmail.csrf.refused', limit: 10 })).length).toBeGreaterThanOrEqual(2);

    // A request from another origin carrying the cookie (as a cross-site page would) is refused, header or not.
    const token = (await context.cookies()).find((c) => c.name === '__Host-mss-webmail-session')!.value;
    const csrf = (await context.cookies()).find((c) => c.name === '__Host-mss-webmail-csrf')!.value;
    expect(await postWith({ cookie: `__Host-mss-webmail-session=${token}`, 'x-csrf-token': csrf, origin: 'https://evil.example' })).toBe(403);
    expect(await postWith({ cookie: `__Host-mss-webmail-session=${token}`, 'x-csrf-token': csrf, origin: new URL(web.url).origin })).toBe(204);
    // The login too: another site cannot log a browser into an account of its choosing.
    const credential = { login: who.jeanne.login, password: who.jeanne.password };
    expect(await postWith({ origin: 'https://evil.example' }, '/api/v1/web/login', credential)).toBe(403);
    expect(await postWith({ origin: new URL(web.url).origin }, '/api/v1/web/login', credential)).toBe(200);

    // A bearer client: the same token as ever, no cookie, no CSRF header.
    const r = await call(web.url, ca, 'POST', '/api/v1/login', { json: { login: who.jeanne.login, password: who.jeanne.password } });
    expect(r.status).toBe(200);
    const bearer = r.json().token as string;
    expect((await call(web.url, ca, 'GET', '/api/v1/me', { token: bearer })).json().login).toBe(who.jeanne.login);
    expect((await call(web.url, ca, 'POST', '/api/v1/logout', { token: bearer })).status).toBe(204);
    expect((await call(web.url, ca, 'GET', '/api/v1/me', { token: bearer })).status).toBe(401);
    await context.close();
  });

  it('an expired session leads back to the login with a message; logout clears the cookies', async () => {
    const { context, page } = await newPage();
    await logIn(page, who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    // The session ends behind the page's back (as at its maximum age, or a password reset).
    const token = (await context.cookies()).find((c) => c.name === '__Host-mss-webmail-session')!.value;
    expect((await call(web.url, ca, 'POST', '/api/v1/logout', { token })).status).toBe(204);
    await page.getByRole('link', { name: 'Résultat n° 29', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Votre session a expiré. Reconnectez-vous pour continuer.' }).waitFor();
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    await expectAccessible(page, 'login after expiry');

    // Logging in again, then out.
    await page.getByLabel('Identifiant').fill(who.jeanne.login);
    await page.getByLabel('Mot de passe').fill(who.jeanne.password);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.getByRole('heading', { level: 1 }).filter({ hasText: 'Boîte de réception' }).or(page.getByRole('heading', { level: 1, name: 'Résultat n° 29' })).waitFor();
    await page.getByRole('button', { name: 'Se déconnecter' }).click();
    await page.getByRole('status').filter({ hasText: 'Vous êtes déconnecté.' }).waitFor();
    await until(async () => !(await context.cookies()).some((c) => c.name.startsWith('__Host-mss-webmail-')));
    await page.reload();
    await page.getByRole('button', { name: 'Se connecter' }).waitFor();
    expect(await page.getByText('Votre session a expiré').count()).toBe(0);
    await context.close();
  });

  it('compose: recipients from the annuaire by keyboard, sent as Jeanne and as the secretariat; an address outside the trust space refused with the reason', async () => {
    const { context, page } = await newPage();
    await logIn(page, who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    const write = async (from: string, search: string, pick: RegExp, subject: string) => {
      await page.getByRole('link', { name: 'Nouveau message' }).click();
      await page.getByRole('heading', { level: 1, name: 'Nouveau message' }).waitFor();
      await page.getByLabel('De', { exact: true }).selectOption(from);
      const to = page.getByRole('combobox', { name: 'À', exact: true });
      await to.fill(search);
      await page.getByRole('option', { name: pick }).waitFor();
      await expectAccessible(page, 'compose, suggestions open');
      await shot(page, 'redaction');
      await to.press('ArrowDown');
      await to.press('Enter');
      await page.getByRole('list', { name: 'Destinataires (À)' }).getByText(who.paul.address).waitFor();
      await page.getByLabel('Objet', { exact: true }).fill(subject);
      await page.getByLabel('Message', { exact: true }).fill('Bonjour Paul,\nvoici le compte rendu.');
      await page.getByRole('button', { name: 'Envoyer' }).click();
      await page.getByRole('status').filter({ hasText: `Message envoyé à ${who.paul.address}.` }).waitFor();
    };
    await write(who.jeanne.address, 'durand', new RegExp(who.paul.address.replace(/\./g, '\\.')), 'Compte rendu pour Paul');
    await write(secretariat, 'paul.dur', new RegExp(who.paul.address.replace(/\./g, '\\.')), 'Rendez-vous confirmé');
    const arrived = async () => {
      const c = await op.imap(who.paul.address);
      try {
        await c.mailboxOpen('INBOX');
        const out: Array<{ subject: string; from: string }> = [];
        for await (const m of c.fetch('1:*', { envelope: true })) out.push({ subject: m.envelope?.subject ?? '', from: m.envelope?.from?.[0]?.address ?? '' });
        return out;
      } finally {
        await c.logout();
      }
    };
    await until(async () => (await arrived()).length >= 2);
    expect(await arrived()).toEqual(
      expect.arrayContaining([
        { subject: 'Compte rendu pour Paul', from: who.jeanne.address },
        { subject: 'Rendez-vous confirmé', from: secretariat },
      ]),
    );

    // Outside the espace de confiance: typed whole, refused by the platform with its reason.
    await page.getByRole('link', { name: 'Nouveau message' }).click();
    await page.getByRole('heading', { level: 1, name: 'Nouveau message' }).waitFor();
    const to = page.getByRole('combobox', { name: 'À', exact: true });
    await to.fill('quelquun@gmail.example');
    await to.press('Enter');
    await page.getByLabel('Objet', { exact: true }).fill('Hors espace de confiance');
    await page.getByRole('button', { name: 'Envoyer' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: 'Envoi refusé' }).textContent()).toMatch(/gmail\.example.*trust space/);
    await expectAccessible(page, 'compose with a refusal');
    await context.close();
  });

  it('at tablet width: one column, nothing wider than the screen, still accessible', async () => {
    const { context, page } = await newPage({ width: 768, height: 1024 });
    await logIn(page, who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(true);
    await expectAccessible(page, 'message list, tablet');
    await shot(page, 'tablette');
    await page.getByRole('link', { name: 'Compte rendu piégé' }).click();
    await page.getByRole('heading', { level: 1, name: 'Compte rendu piégé' }).waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth')).toBe(true);
    await expectAccessible(page, 'a message, tablet');
    await context.close();
  });
});

