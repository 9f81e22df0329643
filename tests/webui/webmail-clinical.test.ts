import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPerson } from '../../annuaire/bal/index.js';
import { buildCdaDocument, INS_OIDS } from '../../dmp/cda.js';
import { demoResultMessage } from '../../dmp/demo.js';
import { composeXdmMessage, submissionFromCda } from '../../dmp/documents.js';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { hostileCda } from '../helpers/cda.js';
import { dmpDepsOf, startTestWebmail, folderMessages, mime } from '../webmail/stack.js';
import { expectAccessible, launch, logIn as logInAt, NET, newPage as openPage } from '../helpers/browser.js';

// Clinical documents in Debian's Chromium against a real operator, its stand-in DMP and the
// webmail API in its worker process: Jeanne opens the lab's result in the XDM viewer,
// hands it to the DMP with a masking choice, sees the outcome and forwards it to Paul;
// sends a CDA as IHE_XDM to Paul, who sees it as a clinical document; a hostile narrative
// stays inert; the per-box DMP rule; attachment previews and the read receipt.

const D = 'mssante.localhost';
let pki: TestPki;
let op: TestOperator;
let web: WebmailService;
let browser: Browser;
const who: Record<'jeanne' | 'paul' | 'marie', { login: string; address: string; password: string }> = {} as never;
let secretariat = '';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const PWNED_HOST = 'pwned.invalid';

const box = (address: string, folder = 'INBOX') => folderMessages(op, address, folder);

beforeAll(async () => {
  pki = await testPki();
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  who.jeanne = await op.person('jeanne.martin', '899999999901');
  who.paul = await op.person('paul.durand', '810000000042');
  who.marie = { login: 'marie.secretaire', address: '', password: 'mot-de-passe-marie-2026' };
  await createPerson(op.ctx, { login: who.marie.login, nom: 'DURAND', prenom: 'Marie', password: who.marie.password }, 'test');
  secretariat = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie', description: 'Secrétariat de cardiologie' });
  await op.member(secretariat, 'marie.secretaire');
  await op.member(secretariat, 'jeanne.martin');
  await op.synced();
  const lab = await demoResultMessage({ from: `labo-resultats@${D}`, to: [who.jeanne.address], rpps: '99999999901' });
  const hostile = await composeXdmMessage({ from: `labo-resultats@${D}`, to: [who.jeanne.address], text: 'Résultats.', submission: submissionFromCda(hostileCda(), { sourceId: '1.2.250.1.999.2.1' }), nil: 'labo', subject: 'Résultat piégé' });
  const c = await op.imap(who.jeanne.address);
  try {
    await c.append('INBOX', await mime({ ...lab, messageId: `<labo1@${D}>` } as never));
    await c.append('INBOX', await mime({ ...hostile, messageId: `<labo2@${D}>` } as never));
    await c.append(
      'INBOX',
      await mime({
        from: who.paul.address,
        to: who.jeanne.address,
        subject: 'Photo et accusé',
        text: 'Une photo.',
        headers: { 'Disposition-Notification-To': who.paul.address },
        attachments: [{ filename: 'photo.png', content: PNG, contentType: 'image/png' }],
      }),
    );
  } finally {
    await c.logout();
  }
  web = await startTestWebmail(op, dmpDepsOf(op), { workers: 1 });
  browser = await launch(pki.read('server.pem'));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await op?.stop();
});

const home = () => `${web.url}/`;
const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: NET, interval: 100 });

async function open(page: Page, u: { login: string; password: string }, subject: RegExp) {
  await logInAt(page, home(), u);
  await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
  await page.getByRole('link', { name: subject }).first().click();
  await page.getByRole('heading', { level: 1, name: subject }).waitFor();
}

describe('clinical documents in the browser', () => {
  it("Jeanne opens the lab's result in the XDM viewer, hands it to the DMP with a masking choice, sees the outcome, and forwards it to Paul", async () => {
    const { context, page } = await openPage(browser);
    await open(page, who.jeanne, /^XDM\/1\.0\/DDM\+CR d'examens biologiques/);
    const docs = page.getByRole('region', { name: 'Documents cliniques' });
    await docs.getByRole('heading', { name: 'Archive IHE_XDM : IHE_XDM.zip' }).waitFor();
    const shown = await docs.locator('dl').first().textContent();
    for (const x of ['DUPONT Jeanne', '12/03/1979', '279035121518989 (INS-NIR de test)', "CR d'examens biologiques (11502-2)", 'Jeanne MARTIN', 'Visible (pas de masquage)']) expect(shown).toContain(x);
    const narrative = page.frameLocator('iframe.document-clinique').first().locator('body');
    await narrative.getByText('Glycémie à jeun').waitFor();
    expect(await page.locator('iframe.document-clinique').first().getAttribute('sandbox')).toBe('');
    await expectAccessible(page, 'a message with a clinical document');

    await docs.getByLabel('Invisible pour le patient').check();
    await docs.getByRole('button', { name: 'Envoyer au DMP' }).click();
    await docs.getByRole('status').filter({ hasText: 'Documents envoyés au DMP (Invisible pour le patient).' }).waitFor();
    await docs.getByRole('region', { name: 'Envois au DMP de ce message' }).getByText('Réussi').waitFor();
    const got = op.platform.dmp!.standin!.submissions().at(-1)!;
    expect(got.documents[0]!.patientId.id).toBe('279035121518989');
    expect(got.documents[0]!.confidentialityCodes.map((x) => x.code)).toContain('INVISIBLE_PATIENT');
    await expectAccessible(page, 'a clinical document after its hand-off');

    await page.getByRole('link', { name: 'Transférer' }).click();
    await page.getByRole('heading', { level: 1, name: 'Transférer' }).waitFor();
    await page.getByRole('combobox', { name: 'À', exact: true }).fill(who.paul.address);
    await page.getByRole('combobox', { name: 'À', exact: true }).press('Enter');
    await page.getByRole('button', { name: 'Envoyer' }).click();
    await page.getByRole('status').filter({ hasText: 'Message envoyé' }).waitFor();
    await until(async () => (await box(who.paul.address)).some((m) => /^TR: XDM/.test(m.mail.subject ?? '')));
    const fwd = (await box(who.paul.address)).find((m) => /^TR: XDM/.test(m.mail.subject ?? ''))!.mail;
    expect(fwd.attachments.map((a) => a.filename)).toEqual(['IHE_XDM.zip']);
    // The archive keeps the headers that describe it (Ref #2).
    expect([fwd.headers.get('x-mss-ins'), fwd.headers.get('x-mss-codecda')]).toEqual(['O', '11502-2']);
    await context.close();
  });

  it('a CDA whose narrative carries script, handlers, links and images renders with none of it active', async () => {
    const { context, page, requests } = await openPage(browser);
    await open(page, who.jeanne, /^Résultat piégé$/);
    const body = page.frameLocator('iframe.document-clinique').locator('body');
    await body.getByText('Hémoglobine').waitFor();
    expect(await body.locator('script, img, a, iframe, style, svg').count()).toBe(0);
    expect(await body.locator('[onclick], [onmouseover], [onerror], [style]').count()).toBe(0);
    const frame = page.frames().find((f) => f !== page.mainFrame())!;
    await frame.waitForLoadState('load');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(requests.filter((u) => u.includes(PWNED_HOST))).toEqual([]);
    await expectAccessible(page, 'a hostile clinical document');
    await context.close();
  });

  it('Jeanne sends a CDA as IHE_XDM to Paul — one file by the picker, one dropped — and Paul sees it as a clinical document', async () => {
    const cda = buildCdaDocument({
      patient: { ins: '279035121518989', oid: INS_OIDS[2], family: 'DUPONT', given: 'Jeanne', birthDate: '19790312' },
      author: { rpps: '99999999901', family: 'MARTIN', given: 'Jeanne' },
      code: { code: '11488-4', scheme: '2.16.840.1.113883.6.1', display: 'Note de consultation' },
      title: 'Consultation de suivi',
      text: 'Patiente vue ce jour, examen normal.',
    });
    const { context, page } = await openPage(browser);
    await logInAt(page, home(), who.jeanne);
    await page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    await page.getByRole('link', { name: 'Nouveau message' }).click();
    await page.getByRole('heading', { level: 1, name: 'Nouveau message' }).waitFor();
    await page.getByRole('combobox', { name: 'À', exact: true }).fill(who.paul.address);
    await page.getByRole('combobox', { name: 'À', exact: true }).press('Enter');
    await page.getByLabel('Joindre des fichiers').setInputFiles({ name: 'consultation.xml', mimeType: 'text/xml', buffer: cda });
    // A file dropped on the zone, as the browser hands it over (a DataTransfer with a File).
    const drop = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['Ordonnance jointe.'], 'ordonnance.txt', { type: 'text/plain' }));
      return dt;
    })()`);
    await page.locator('#depot').dispatchEvent('drop', { dataTransfer: drop });
    await poll(() => page.getByRole('list', { name: 'Fichiers joints' }).getByRole('listitem').allTextContents()).toEqual([expect.stringContaining('consultation.xml'), expect.stringContaining('ordonnance.txt')]);
    await page.getByLabel('Envoyer les documents CDA joints (.xml) en IHE_XDM.zip').check();
    await expectAccessible(page, 'compose with attachments and XDM');
    await page.getByRole('button', { name: 'Envoyer' }).click();
    await page.getByRole('status').filter({ hasText: 'Message envoyé' }).waitFor();
    await until(async () => (await box(who.paul.address)).some((m) => /Note de consultation/.test(m.mail.subject ?? '')));
    const got = (await box(who.paul.address)).find((m) => /Note de consultation/.test(m.mail.subject ?? ''))!.mail;
    expect(got.subject).toBe('XDM/1.0/DDM+Note de consultation DUPONT Jeanne 12/03/1979');
    expect([got.headers.get('x-mss-ins'), got.headers.get('x-mss-codecda')]).toEqual(['O', '11488-4']);
    expect(got.attachments.map((a) => a.filename).sort()).toEqual(['IHE_XDM.zip', 'ordonnance.txt']);
    await context.close();

    const paul = await openPage(browser);
    await open(paul.page, who.paul, /^XDM\/1\.0\/DDM\+Note de consultation/);
    const docs = paul.page.getByRole('region', { name: 'Documents cliniques' });
    expect(await docs.locator('dl').first().textContent()).toContain('Note de consultation (11488-4)');
    await paul.page.frameLocator('iframe.document-clinique').locator('body').getByText('Patiente vue ce jour').waitFor();
    await paul.context.close();
  });

  it('the DMP rule of the secretariat: Jeanne (a professional member) sets it; Marie (a secretary) sees it, without the form and with the reason', async () => {
    const { context, page } = await openPage(browser);
    await logInAt(page, home(), who.jeanne);
    await page.getByRole('navigation', { name: 'Boîtes aux lettres' }).getByRole('link', { name: /Secrétariat de cardiologie/ }).click();
    await page.getByRole('link', { name: 'Règle DMP de la boîte' }).click();
    await page.getByRole('heading', { level: 1, name: `Règle DMP — ${secretariat}` }).waitFor();
    await page.getByLabel('Visibilité des documents envoyés').selectOption('masque-ps');
    await page.getByRole('button', { name: 'Enregistrer la règle' }).click();
    await page.getByRole('status').filter({ hasText: 'Règle enregistrée.' }).waitFor();
    expect(await page.getByText(/^Active : chaque document/).textContent()).toContain('Masqué aux professionnels de santé');
    await expectAccessible(page, 'the DMP rule page (may set)');
    expect((await op.platform.journal.list({ type: 'dmp.rule.set', limit: 5 })).some((e) => e.subject === secretariat)).toBe(true);
    await context.close();

    const marie = await openPage(browser);
    await logInAt(marie.page, home(), who.marie);
    await marie.page.getByRole('heading', { level: 1, name: /Boîte de réception/ }).waitFor();
    await marie.page.getByRole('link', { name: 'Règle DMP de la boîte' }).click();
    await marie.page.getByText(/^Active : chaque document/).waitFor();
    expect(await marie.page.getByRole('button', { name: 'Enregistrer la règle' }).count()).toBe(0);
    expect(await marie.page.getByText('Vous ne pouvez pas modifier cette règle').textContent()).toContain('health professional');
    await expectAccessible(marie.page, 'the DMP rule page (read only)');
    await marie.context.close();
  });

  it('an image previewed in the page; the read receipt sent on the person’s choice', async () => {
    const { context, page } = await openPage(browser);
    await open(page, who.jeanne, /^Photo et accusé$/);
    await page.getByRole('button', { name: 'Aperçu de photo.png' }).click();
    const img = page.getByRole('img', { name: 'Aperçu de la pièce jointe photo.png' });
    await poll(() => img.evaluate((e) => (e as unknown as { naturalWidth: number }).naturalWidth)).toBe(1);
    await page.getByRole('region', { name: 'Accusé de lecture demandé' }).waitFor();
    await expectAccessible(page, 'a message asking for a read receipt, image previewed');
    await page.getByRole('button', { name: "Envoyer l'accusé de lecture" }).click();
    await page.getByRole('status').filter({ hasText: `Accusé de lecture envoyé à ${who.paul.address}.` }).waitFor();
    await until(async () => (await box(who.paul.address)).some((m) => /^Accusé de lecture/.test(m.mail.subject ?? '')));
    // Opened again, it does not ask twice.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Photo et accusé' }).waitFor();
    expect(await page.getByRole('region', { name: 'Accusé de lecture demandé' }).count()).toBe(0);
    await context.close();
  });
});
