import type { Browser } from 'playwright-core';
import { generateKey, readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import { expectAccessible, launch, newPage, poll } from '../helpers/browser.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';

// The console's box page: its OpenPGP key (issue 16 §4) shown, registered, refused with the
// API's reason, removed — in a real browser against the admin API.

const D = 'mssante.localhost';
const PASSWORD = 'console-openpgp-mot-de-passe-2026';
let pki: TestPki;
let op: TestOperator;
let browser: Browser;
let base = '';
let box = '';

beforeAll(async () => {
  pki = await testPki();
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [], overrides: { admin: { enabled: true, port: 0 } } });
  base = op.platform.admin!.url;
  box = (await op.person('dr.cle', '810000000301')).address;
  await createAdmin(op.platform.db, op.platform.journal, { login: 'nat.pgp', role: 'national', password: PASSWORD }, 'test');
  browser = await launch(pki.read('server.pem'));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await op?.stop();
});

describe('operator console: a box OpenPGP key', () => {
  it('registers a key from a file, refuses a private one with the reason, removes it; journalled', async () => {
    const pair = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Dr Clé', email: box }], format: 'armored' });
    const fingerprint = (await readKey({ armoredKey: pair.publicKey })).getFingerprint().toUpperCase();
    const { context, page } = await newPage(browser);
    await page.goto(`${base}/`);
    await page.getByLabel('Identifiant').fill('nat.pgp');
    await page.getByLabel('Mot de passe').fill(PASSWORD);
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tableau de bord' }).waitFor();
    await page.goto(`${base}/ui/console/#/boite/${encodeURIComponent(box)}`);
    await page.getByRole('heading', { level: 1, name: box }).waitFor();
    const section = page.getByRole('region', { name: 'Chiffrement OpenPGP' });
    await poll(() => section.textContent()).toContain('Aucune clé');

    // The private key, pasted: refused, the API's sentence shown.
    await section.getByLabel('Ou la clé collée').fill(pair.privateKey);
    await section.getByRole('button', { name: 'Enregistrer la clé' }).click();
    await poll(() => section.getByRole('alert').textContent()).toMatch(/private \(secret\) OpenPGP key|clé privée/i);

    // The public key, as a file.
    await section.getByLabel('Ou la clé collée').fill('');
    await section.getByLabel('Fichier de la clé publique (.asc)').setInputFiles({ name: 'dr.cle.asc', mimeType: 'application/pgp-keys', buffer: Buffer.from(pair.publicKey) });
    await section.getByRole('button', { name: 'Enregistrer la clé' }).click();
    await page.getByRole('status').filter({ hasText: 'Clé OpenPGP enregistrée' }).waitFor();
    const shown = page.getByRole('region', { name: 'Chiffrement OpenPGP' });
    await poll(() => shown.textContent()).toContain(fingerprint);
    await expectAccessible(page, 'a box with its OpenPGP key');

    await shown.getByRole('button', { name: 'Retirer la clé' }).click();
    await page.getByRole('status').filter({ hasText: 'Clé OpenPGP retirée' }).waitFor();
    await poll(() => page.getByRole('region', { name: 'Chiffrement OpenPGP' }).textContent()).toContain('Aucune clé');
    const types = (await op.platform.journal.list({ subject: box, limit: 20 })).filter((e) => e.actor === 'admin:nat.pgp').map((e) => e.type);
    expect(types).toEqual(['bal.openpgp.removed', 'bal.openpgp.registered', 'bal.openpgp.refused']);
    await context.close();
  });
});
