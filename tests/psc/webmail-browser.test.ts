// The Pro Santé Connect login as a person does it, in Chromium: the webmail's login page, its
// "Se connecter avec Pro Santé Connect" button, the stand-in PSC's page (a professional, the
// CPS card), and back in the webmail, logged in. A refusal at PSC comes back as a French
// sentence on the login page.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launch, newPage, NET, shot } from '../helpers/browser.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki } from '../helpers/pki.js';

const D = 'mssante.localhost';
let op: TestOperator;
let browser: Browser;
let jeanne: { login: string; address: string };
const home = () => `${op.platform.webmail!.url}/ui/webmail/`;

beforeAll(async () => {
  const pki = await testPki();
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  jeanne = await op.person('jeanne.martin', '810000000301');
  await op.synced();
  browser = await launch(pki.read('server.pem'));
});
afterAll(async () => {
  await browser?.close();
  await op?.stop();
});

describe('webmail in Chromium: "Se connecter avec Pro Santé Connect"', () => {
  it('goes to PSC, comes back logged in as the professional PSC named', async () => {
    const { context, page } = await newPage(browser);
    await page.goto(home());
    const button = page.getByRole('link', { name: 'Se connecter avec Pro Santé Connect' });
    await button.waitFor();
    await expectAccessible(page, 'login page with the PSC button');
    await shot(page, 'webmail-login-psc');
    await button.click();
    await page.getByRole('heading', { name: /Pro Santé Connect/ }).waitFor();
    expect(page.url()).toContain(op.platform.psc!.issuer);
    await page.getByLabel('Carte CPS').check();
    await page.getByRole('button', { name: 'Se connecter', exact: true }).click();
    await page.getByText(jeanne.address).first().waitFor();
    expect(new URL(page.url()).pathname).toBe('/ui/webmail/');
    const me = await page.evaluate(() => fetch('/api/v1/me').then((r) => r.json()));
    expect(me).toMatchObject({ login: 'jeanne.martin', auth: 'psc', acr: 'eidas1' });
    await context.close();
  });

  it('a refusal at PSC is said in French on the login page', async () => {
    const { context, page } = await newPage(browser);
    await page.goto(home());
    await page.getByRole('link', { name: 'Se connecter avec Pro Santé Connect' }).click();
    await page.getByRole('button', { name: 'Refuser' }).click();
    await expect.poll(async () => (await page.locator('#login-erreur').textContent())?.trim(), { timeout: NET }).toBe('La connexion a été refusée ou annulée sur Pro Santé Connect.');
    expect(new URL(page.url()).hash).toBe('');
    await context.close();
  });
});
