import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainToASCII } from 'node:url';
import nodemailer from 'nodemailer';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { currentWhitelist } from '../../annuaire/whitelist/index.js';
import { DEV_RPPS } from '../../certs/pki.js';
import { demoResultMessage } from '../../dmp/demo.js';
import { expectAccessible, launch, newPage as pageIn, poll, shot } from '../helpers/browser.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { encodeFile, mssanteLines } from '../helpers/rpps-generator.js';
import { generatedName, makeWhitelistXml } from '../helpers/whitelist.js';
import { call } from '../webmail/stack.js';

// The operator console's national imports (#/imports) in Debian's Chromium against a real
// operator on PGlite (as `npm start` runs it): a liste blanche previewed then applied exactly
// as previewed; an extraction of tens of MB uploaded, its progress watched, its report read
// and downloaded; and the dashboard's alert for a DMP hand-off the stand-in DMP refused.
// Every wait is for something the page shows or a reply, never for a duration.

const D = 'mssante.localhost';
const PASSWORD = 'console-imports-2026';
const admins = { national: 'nat.imports', regional: 'ars-imports' };
let pki: TestPki;
let op: TestOperator;
let browser: Browser;
let ca: string;
let base = '';
let files = '';

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [], overrides: { admin: { enabled: true, port: 0 } } });
  base = op.platform.admin!.url;
  await createAdmin(op.platform.db, op.platform.journal, { login: admins.national, role: 'national', password: PASSWORD }, 'test');
  await createAdmin(op.platform.db, op.platform.journal, { login: admins.regional, role: 'regional', domains: [D], password: PASSWORD }, 'test');
  files = mkdtempSync(join(tmpdir(), 'mss-console-imports-'));
  browser = await launch(pki.read('server.pem'));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await op?.stop();
});

const newPage = (viewport?: { width: number; height: number }) => pageIn(browser, viewport);

async function logIn(page: Page, login: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('Identifiant').fill(login);
  await page.getByLabel('Mot de passe').fill(PASSWORD);
  await page.getByRole('button', { name: 'Se connecter' }).click();
  await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
}

async function toImports(page: Page): Promise<void> {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Imports nationaux' }).click();
  await page.getByRole('heading', { level: 1, name: 'Imports nationaux' }).waitFor();
}

const listFile = (name: string, spec: Parameters<typeof makeWhitelistXml>[0]) => ({ name, mimeType: 'application/xml', buffer: Buffer.from(makeWhitelistXml(spec)) });
const bearer = async () => (await call(base, ca, 'POST', '/api/v1/login', { json: { login: admins.national, password: PASSWORD } })).json().token as string;

describe('operator console: national imports', () => {
  it('liste blanche: the admin previews what a file changes, applies exactly that, and a stale preview is refused in French', async () => {
    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await toImports(page);
    await expectAccessible(page, 'imports page');
    const form = page.getByRole('form', { name: 'Liste blanche' });
    const before = (await currentWhitelist(op.platform.db))!;

    // A list with two new domains and one changed (the operator's test list has 3: etab-0…2).
    await form.getByLabel('Fichier de la liste blanche').setInputFiles(listFile('listeblanchemssante.xml', { count: 3, change: [1], generatedAt: '2026-03-01T00:00:00', extra: [{ nom: 'clinique-nouvelle.op7.mssante.fr' }, { nom: 'hôpital-neuf.op8.mssante.fr' }] }));
    await form.getByRole('button', { name: 'Prévisualiser les changements' }).click();
    const preview = page.getByRole('region', { name: 'Ce que cette liste changerait' });
    await preview.waitFor();
    await poll(() => preview.textContent()).toMatch(/Ajoutés\s*2\s*Retirés\s*0\s*Modifiés\s*1/);
    // Nothing was applied by the preview.
    expect((await currentWhitelist(op.platform.db))!.domains).toBe(before.domains);
    await preview.getByText('Domaines ajoutés (2)').click();
    expect(await preview.getByRole('listitem').allTextContents()).toEqual(['clinique-nouvelle.op7.mssante.fr', domainToASCII('hôpital-neuf.op8.mssante.fr')]);
    await preview.getByText('Domaines modifiés (1)').click();
    expect(await preview.getByRole('row', { name: new RegExp(generatedName(1)) }).textContent()).toContain('Description');
    expect(await preview.getByRole('row', { name: new RegExp(generatedName(1)) }).textContent()).toContain('(modifié)');
    await expectAccessible(page, 'liste blanche preview');
    await shot(page, 'console-liste-blanche-apercu');

    await page.getByRole('button', { name: 'Appliquer ces changements' }).click();
    await page.getByRole('status').filter({ hasText: 'Liste blanche appliquée : 2 domaine(s) ajouté(s), 0 retiré(s), 1 modifié(s).' }).waitFor();
    expect((await currentWhitelist(op.platform.db))!.domains).toBe(before.domains + 2);
    const imported = (await op.platform.journal.list({ type: 'whitelist.imported', limit: 1 }))[0];
    expect(imported).toMatchObject({ actor: `admin:${admins.national}`, details: { added: 2, changed: 1, removed: 0 } });
    expect((await op.platform.journal.list({ type: 'whitelist.domain.added', subject: 'clinique-nouvelle.op7.mssante.fr' })).length).toBe(1);
    await expectAccessible(page, 'liste blanche applied');

    // A preview, then another import before the confirmation: the confirmation is refused, nothing applied, journalled.
    await form.getByLabel('Fichier de la liste blanche').setInputFiles(listFile('listeblanchemssante.xml', { count: 3, generatedAt: '2026-04-01T00:00:00' }));
    await form.getByRole('button', { name: 'Prévisualiser les changements' }).click();
    await poll(() => page.getByRole('region', { name: 'Ce que cette liste changerait' }).textContent()).toMatch(/Retirés\s*2/);
    const other = await call(base, ca, 'POST', '/api/v1/imports/whitelist', { token: await bearer(), body: Buffer.from(makeWhitelistXml({ count: 4, generatedAt: '2026-03-15T00:00:00' })), contentType: 'application/xml' });
    expect(other.status).toBe(200);
    const domains = (await currentWhitelist(op.platform.db))!.domains;
    await page.getByRole('button', { name: 'Appliquer ces changements' }).click();
    await poll(() => page.getByRole('alert').filter({ hasText: 'Prévisualisez-la de nouveau' }).count()).toBe(1);
    expect(await page.getByRole('alert').filter({ hasText: 'Prévisualisez-la de nouveau' }).textContent()).toContain("La liste n'a pas été appliquée : elle n'est plus celle que vous avez prévisualisée");
    expect((await currentWhitelist(op.platform.db))!.domains).toBe(domains);
    expect((await op.platform.journal.list({ type: 'admin.import.refused', limit: 1 }))[0]).toMatchObject({ actor: `admin:${admins.national}`, details: { code: 'WHITELIST_PREVIEW_MISMATCH', status: 409 } });
    await expectAccessible(page, 'liste blanche stale preview refused');

    // Not a liste blanche at all.
    await form.getByLabel('Fichier de la liste blanche').setInputFiles({ name: 'liste.xml', mimeType: 'application/xml', buffer: Buffer.from('<html><body>pas une liste</body></html>') });
    await form.getByRole('button', { name: 'Prévisualiser les changements' }).click();
    await poll(() => form.getByRole('alert').textContent()).toContain("Ce fichier n'est pas une liste blanche utilisable ; rien n'a changé.");
    await context.close();
  });

  it('an extraction of tens of MB: uploaded, its progress watched as it is read and applied, then its report with the rejected lines, downloadable', async () => {
    const name = 'Extraction_Correspondance_MSSante_202603010000.txt';
    const bad: number[] = [];
    const path = join(files, name);
    writeFileSync(path, encodeFile(mssanteLines({ lines: 160_000, seed: 21, malformed: 5, onBad: (n) => bad.push(n) })));
    const bytes = statSync(path).size;
    expect(bytes).toBeGreaterThan(30_000_000);

    const { context, page } = await newPage();
    await logIn(page, admins.national);
    await toImports(page);
    const form = page.getByRole('form', { name: "Extraction de l'annuaire national" });
    await form.getByLabel("Fichier d'extraction").setInputFiles(path);
    // Every text the progress line shows, as the page sets it.
    await page.evaluate(`(() => {
      window.steps = [];
      new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) window.steps.push(n.textContent); }).observe(document.getElementById('ex-etape'), { childList: true });
    })()`);
    const [answer] = await Promise.all([page.waitForResponse((r: Response) => r.url().includes('/api/v1/imports/extractions/jobs?')), form.getByRole('button', { name: 'Envoyer et importer' }).click()]);
    expect(answer.status()).toBe(202);
    const report = page.getByRole('region', { name: "Rapport de l'import" });
    await report.waitFor();
    const steps = (await page.evaluate('window.steps')) as string[];
    expect(steps[0]).toBe(`Envoi du fichier ${name}`);
    const reading = steps.map((s) => /^Lecture de l'extraction : (\d+) %$/.exec(s)?.[1]).filter(Boolean).map(Number);
    expect(reading.some((p) => p > 0 && p < 100), steps.join(' | ')).toBe(true);
    expect(reading).toEqual([...reading].sort((a, b) => a - b));
    expect(steps.indexOf('Application des changements…')).toBeGreaterThan(steps.findIndex((s) => s.startsWith('Lecture')));
    expect(steps.at(-1)).toBe('Import terminé');
    expect(await page.locator('#ex-progression').getAttribute('value')).toBe('100');

    const text = await report.textContent();
    expect(text).toContain(`Fichier${name}`);
    expect(text).toMatch(/Lignes lues\s*160\u202f005/);
    expect(text).toMatch(/Lignes rejetées\s*5/);
    expect(text).toMatch(/Appliquéoui/);
    const rejected = report.getByRole('table', { name: 'Lignes rejetées (5)' });
    expect(await rejected.getByRole('row').count()).toBe(6);
    expect(await rejected.getByRole('row').nth(1).getByRole('cell').first().textContent()).toBe(new Intl.NumberFormat('fr-FR').format(bad[0]));
    expect(await report.getByRole('table', { name: 'Changements par table' }).getByRole('row', { name: /Adresses MSSanté/ }).textContent()).toMatch(/Adresses MSSanté\s*\d/);
    await expectAccessible(page, 'extraction report');
    await shot(page, 'console-extraction-rapport');

    const [download] = await Promise.all([page.waitForEvent('download'), report.getByRole('button', { name: 'Télécharger le rapport des rejets (TSV)' }).click()]);
    expect(download.suggestedFilename()).toBe('rejets-Extraction_Correspondance_MSSante_202603010000.tsv');
    const tsv = join(files, 'rejets.tsv');
    await download.saveAs(tsv);
    const rows = readFileSync(tsv, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(rows.map((l) => l.split('\t')[0])).toEqual(bad.map((n) => `${name}:${n}`));
    // The import is journalled as any other, and the dashboard shows it.
    expect((await op.platform.journal.list({ type: 'annuaire.import', limit: 1 }))[0]).toMatchObject({ actor: `admin:${admins.national}`, subject: name });
    await context.close();
  });

  it('an extraction refused: a file name without its date is told before anything is sent; a regional admin sees the page reserved to national admins', async () => {
    const { context, page } = await newPage({ width: 820, height: 1180 });
    await logIn(page, admins.national);
    await toImports(page);
    const form = page.getByRole('form', { name: "Extraction de l'annuaire national" });
    await form.getByLabel("Fichier d'extraction").setInputFiles({ name: 'mon fichier.csv', mimeType: 'text/plain', buffer: Buffer.from('a|b\n') });
    await form.getByRole('button', { name: 'Envoyer et importer' }).click();
    await poll(() => form.getByRole('alert').textContent()).toContain("n'est pas celui d'une extraction publiée");
    // Tablet width: nothing wider than the screen.
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await expectAccessible(page, 'imports page at tablet width, with an error');
    await context.close();

    const regional = await newPage();
    await logIn(regional.page, admins.regional);
    await toImports(regional.page);
    await poll(() => regional.page.locator('main').textContent()).toContain('réservés aux administrateurs nationaux');
    expect(await regional.page.getByRole('form').count()).toBe(0);
    await expectAccessible(regional.page, 'imports page (regional)');
    await regional.context.close();
  });

  it('a DMP hand-off the stand-in DMP refuses: the dashboard API counts it and the console shows the alert', async () => {
    const doctor = await op.person('jeanne.martin', `8${DEV_RPPS}`);
    const webmail = (method: string, path: string, o: Parameters<typeof call>[4] = {}) => call(op.platform.webmail!.url, ca, method, path, o);
    // A lab result (CDA in IHE_XDM) reaches the doctor's box through submission.
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: { ca, servername: 'localhost' }, auth: { user: doctor.login, pass: doctor.password } });
    await smtp.sendMail(await demoResultMessage({ from: doctor.address, to: [doctor.address], rpps: DEV_RPPS }));
    const token = (await webmail('POST', '/api/v1/login', { json: { login: doctor.login, password: doctor.password } })).json().token as string;
    const inbox = async () => (await webmail('GET', `/api/v1/bals/${encodeURIComponent(doctor.address)}/folders/INBOX/messages`, { token })).json().messages as Array<{ uid: number }>;
    await until(async () => (await inbox()).length === 1);
    const uid = (await inbox())[0].uid;
    const handoff = () => webmail('POST', `/api/v1/bals/${encodeURIComponent(doctor.address)}/messages/INBOX/${uid}/dmp`, { token, json: { masking: 'normal' } });

    const national = await bearer();
    const dashboard = async () => (await call(base, ca, 'GET', '/api/v1/dashboard', { token: national })).json().alerts.dmp;
    expect(await dashboard()).toBeNull();
    expect((await handoff()).json()).toMatchObject({ outcome: 'success' });
    // The same documents again: the stand-in DMP's registry refuses them (ITI-41 Failure, duplicate uniqueId).
    const refused = (await handoff()).json();
    expect(refused).toMatchObject({ outcome: 'failure', submissions: [{ status: 'failure' }] });
    expect(refused.submissions[0].errors.map((e: { code: string }) => e.code)).toContain('XDSDuplicateUniqueIdInRegistry');
    expect(op.platform.dmp!.standin!.submissions()).toHaveLength(1);

    const alert = await dashboard();
    expect(alert).toMatchObject({ count: 1, latest: { bal: doctor.address, error: expect.stringMatching(/^XDSDuplicateUniqueIdInRegistry/) } });

    const { context, page } = await newPage();
    await logIn(page, admins.national);
    const alerts = page.getByRole('region', { name: /^Alertes/ });
    await poll(() => alerts.textContent()).toContain('1 envoi au DMP a échoué depuis le');
    expect(await alerts.textContent()).toContain(`le dernier pour ${doctor.address}`);
    expect(await alerts.textContent()).toContain('XDSDuplicateUniqueIdInRegistry');
    expect(await alerts.getByRole('link', { name: doctor.address }).getAttribute('href')).toBe(`#/boite/${encodeURIComponent(doctor.address)}`);
    await expectAccessible(page, 'dashboard with a failed DMP hand-off');
    await shot(page, 'console-alerte-dmp');
    await context.close();

    // A regional admin of another domain does not see it.
    await createAdmin(op.platform.db, op.platform.journal, { login: 'ars-ailleurs', role: 'regional', domains: ['ailleurs.mssante.localhost'], password: PASSWORD }, 'test');
    const away = (await call(base, ca, 'POST', '/api/v1/login', { json: { login: 'ars-ailleurs', password: PASSWORD } })).json().token as string;
    expect((await call(base, ca, 'GET', '/api/v1/dashboard', { token: away })).json().alerts.dmp).toBeNull();
  });
});
