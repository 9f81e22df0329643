// Debian's Chromium driven by playwright-core (nothing downloaded), and axe-core run in the
// page. The platform's certificate is trusted by its public key (Chromium's SPKI pin list),
// so the pages run in a secure context exactly as over a trusted certificate: Secure and
// __Host- cookies, no certificate interstitial — without turning certificate checks off.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { expect } from 'vitest';

export const CHROMIUM = process.env.MSS_CHROMIUM ?? '/usr/bin/chromium';

/** The SPKI SHA-256 (base64) of a certificate: what --ignore-certificate-errors-spki-list takes. */
export const spkiHash = (pem: string) => createHash('sha256').update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');

export function launch(serverCertPem: string): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // No clock on the start: vitest's hook timeout is the net (CI runs beside CPU hogs).
    timeout: 0,
    args: [`--ignore-certificate-errors-spki-list=${spkiHash(serverCertPem)}`, '--disable-gpu', '--no-first-run'],
  });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * axe-core on the page as it stands (WCAG 2.0/2.1 A and AA rules). The script goes in through
 * the DevTools protocol (page.evaluate), which the page's CSP does not govern; the page itself
 * still cannot run an inline script. Returns every violation; the caller asserts on them.
 */
export async function axe(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
    .then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })))`);
}

/** Zero serious or critical violations on the page (the others are printed). */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const all = await axe(page);
  const minor = all.filter((v) => v.impact !== 'serious' && v.impact !== 'critical');
  if (minor.length) console.log(`axe on ${what}: minor findings`, JSON.stringify(minor));
  expect(
    all.filter((v) => v.impact === 'serious' || v.impact === 'critical'),
    what,
  ).toEqual([]);
}

/** Playwright's and vitest's own waits have short default timeouts (30 s, 1 s): the tests wait for the condition, vitest's test timeout being the only net. */
export const NET = 550_000;
export const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: NET, interval: 100 });

/** With MSS_WEBUI_SCREENSHOTS=DIR, the README's screenshots are taken from the browser tests. */
export async function shot(page: Page, name: string): Promise<void> {
  const dir = process.env.MSS_WEBUI_SCREENSHOTS;
  if (dir) await page.screenshot({ path: join(dir, `${name}.png`) });
}

/** A fresh browser context (no cookie) in French at this size, waiting only on conditions; `requests` lists every URL it asked for. */
export async function newPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page; requests: string[] }> {
  const context = await browser.newContext({ viewport, locale: 'fr-FR', acceptDownloads: true });
  context.setDefaultTimeout(NET);
  context.setDefaultNavigationTimeout(NET);
  const page = await context.newPage();
  const requests: string[] = [];
  context.on('request', (r) => void requests.push(r.url()));
  return { context, page, requests };
}

/** A POST to `base` with exactly these headers (what another site's page, or a forger, could send); the status. */
export function postWith(base: string, ca: string, headers: Record<string, string>, path: string, body?: unknown): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const u = new URL(path, base);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const all = data ? { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : headers;
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: all, ca, servername: 'localhost' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** The Set-Cookie values of a response. */
export async function setCookiesOf(r: { headersArray(): Promise<Array<{ name: string; value: string }>> }): Promise<string[]> {
  return (await r.headersArray()).filter((x) => x.name.toLowerCase() === 'set-cookie').map((x) => x.value);
}

/** The webmail's login form filled and sent; the login's answer. */
export async function logIn(page: Page, home: string, u: { login: string; password: string }, otp?: () => string): Promise<Response> {
  await page.goto(home);
  await page.getByLabel('Identifiant').fill(u.login);
  await page.getByLabel('Mot de passe').fill(u.password);
  if (otp) await page.getByLabel('Code de vérification').fill(otp());
  const [answer] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/v1/web/login')), page.getByRole('button', { name: 'Se connecter' }).click()]);
  return answer;
}
